"""Decorated methods keep their parameters and return type (checked by mypy --strict and pyright).

The lines marked to be ignored must be errors: both checkers report an ignore comment that
silences nothing, so a decorator that lost the types fails the check.
"""

from __future__ import annotations

from memollm import cached_llm


class Bot:
    def __init__(self, model: str) -> None:
        self.model = model

    @cached_llm
    def ask(self, prompt: str, temperature: float = 0.0) -> str:
        return prompt

    @cached_llm(ttl=60)
    async def aask(self, prompt: str) -> str:
        return prompt

    @cached_llm
    @classmethod
    def build(cls, prompt: str) -> str:
        return prompt

    @classmethod
    @cached_llm
    def make(cls, prompt: str) -> str:
        return prompt

    @cached_llm(namespace="bots")
    @staticmethod
    def shout(prompt: str) -> str:
        return prompt.upper()


@cached_llm
def plain(prompt: str, n: int = 1) -> str:
    return prompt * n


async def use(bot: Bot) -> None:
    text: str = bot.ask("hi", temperature=0.5)
    unbound: str = Bot.ask(bot, "hi")
    awaited: str = await bot.aask("hi")
    built: str = Bot.build("hi") + bot.build("hi") + Bot.make("hi") + bot.make("hi")
    # A static method through an instance (bot.shout) checks under pyright; mypy binds it.
    shouted: str = Bot.shout("hi")
    repeated: str = plain("hi", n=2)
    print(text, unbound, awaited, built, shouted, repeated, bot.ask.cache.stats().hit_rate)


def misuse(bot: Bot) -> None:
    bot.ask(1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    bot.ask()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    bot.ask("hi", temperatur=0.5)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    number: int = bot.ask("hi")  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    Bot.build(2)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    bot.make()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Bot.shout()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    plain("hi", "2")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    print(number)
