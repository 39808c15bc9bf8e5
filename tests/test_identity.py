"""What makes two calls the same: a function's code and closure, a method's instance, SDK sentinels."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memollm import Policy, cached_llm
from memollm.fingerprint import fingerprint
from memollm.identity import not_given
from memollm.keys import KeyBuilder
from memollm.testing import FakeLLM

from .upstream import Reply, Upstream, completion


def compile_function(source: str, name: str = "ask", module: str = "notebook") -> types.FunctionType:
    """Define a function from source, as a notebook cell (or a re-run of it) does."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(textwrap.dedent(source), f"<{module}>", "exec"), namespace)  # noqa: S102 - the test's own code
    func = namespace[name]
    assert isinstance(func, types.FunctionType)
    return func


def key(func: Any, *args: Any, **settings: Any) -> str:
    return KeyBuilder(func, Policy(**settings)).info(None, args, {}).key


class TestFunctionIdentity:
    def test_a_rerun_cell_with_a_new_template_does_not_get_old_answers(self) -> None:
        """Finding 1: the same name with a changed prompt template is another function."""
        llm = FakeLLM()
        first = compile_function('def ask(q):\n    return LLM(f"Answer briefly: {q}")\n')
        second = compile_function('def ask(q):\n    return LLM(f"Answer in French: {q}")\n')
        first.__globals__["LLM"] = second.__globals__["LLM"] = llm
        one, two = cached_llm(first), cached_llm(second)
        assert one("hi") == llm.answer("Answer briefly: hi")
        assert llm.calls == 1
        assert two("hi") == llm.answer("Answer in French: hi")  # its own answer, not the first's
        assert one("hi") != two("hi")
        assert llm.calls == 2

    def test_factory_functions_with_different_closures_do_not_share(self) -> None:
        """Finding 1: functions a factory makes differ by what they closed over."""
        llm = FakeLLM()

        def make(model: str) -> Any:
            @cached_llm
            def ask(q: str) -> str:
                return llm(q, model)

            return ask

        small, large = make("small"), make("large")
        assert small("q") != large("q")
        assert llm.calls == 2
        assert make("small")("q") == small("q")
        assert llm.calls == 2  # the same code and closure is the same function

    def test_docstrings_comments_and_lines_do_not_count(self) -> None:
        """Documenting or moving a function keeps its answers."""
        plain = compile_function("def ask(q):\n    return q + '!'\n")
        documented = compile_function('\n\n\ndef ask(q):\n    """Shout."""\n    # loud\n    return q + "!"\n')
        assert fingerprint(plain).digest == fingerprint(documented).digest
        assert key(plain, "x") == key(documented, "x")

    def test_nested_code_counts(self) -> None:
        """A change inside a nested function or lambda is a change to the function."""
        one = compile_function("def ask(q):\n    fmt = lambda s: s.upper()\n    return fmt(q)\n")
        two = compile_function("def ask(q):\n    fmt = lambda s: s.lower()\n    return fmt(q)\n")
        assert key(one, "x") != key(two, "x")

    def test_module_constants_and_helpers_count(self) -> None:
        """A global prompt, and a same-module helper's code, are part of what the function does."""
        source = (
            'SYSTEM = "{system}"\ndef fmt(q):\n    return {body}\ndef ask(q):\n    return SYSTEM + fmt(q)\n'
        )
        base = compile_function(source.format(system="Be terse.", body="q"))
        prompt = compile_function(source.format(system="Be verbose.", body="q"))
        helper = compile_function(source.format(system="Be terse.", body="q.strip()"))
        assert len({key(base, "x"), key(prompt, "x"), key(helper, "x")}) == 3

    def test_mutable_globals_are_left_out(self) -> None:
        """A module-level list's contents are not part of the identity (they may differ per process)."""
        one = compile_function("HISTORY = [1]\ndef ask(q):\n    return q + str(len(HISTORY))\n")
        two = compile_function("HISTORY = [1, 2, 3]\ndef ask(q):\n    return q + str(len(HISTORY))\n")
        assert key(one, "x") == key(two, "x")

    def test_version_replaces_the_code(self) -> None:
        """With version=, a refactor keeps the answers."""
        old = compile_function("def ask(q):\n    return q + '!'\n")
        new = compile_function("def ask(q):\n    text = q\n    return f'{text}!'\n")
        assert key(old, "x") != key(new, "x")
        assert key(old, "x", version="3") == key(new, "x", version="3")
        assert KeyBuilder(new, Policy(version="3")).explain(None, ("x",), {}).code is None

    def test_unkeyable_closure_values_are_left_out_and_named(self, caplog: pytest.LogCaptureFixture) -> None:
        """A client in the closure is left out of the identity, with one warning naming it."""

        def make(client: object, model: str) -> Any:
            def ask(q: str) -> str:
                return f"{client}{model}{q}"

            return ask

        with caplog.at_level(logging.WARNING, logger="memollm"):
            a = KeyBuilder(make(object(), "m"), Policy())
            b = KeyBuilder(make(object(), "m"), Policy())
        assert a.info(None, ("x",), {}).key == b.info(None, ("x",), {}).key
        assert a.left_out == ("client",)
        assert "client" in caplog.text and "left out" in caplog.text
        explained = a.explain(None, ("x",), {})
        assert explained.code == a.code and explained.left_out == ("client",)

    @settings(max_examples=50, deadline=None)
    @given(st.text(max_size=20), st.text(max_size=20))
    def test_one_string_constant_apart_never_shares(self, a: str, b: str) -> None:
        """Two functions that differ only in one string constant never share a key."""
        one = compile_function(f"def ask(q):\n    return {a!r} + q\n")
        two = compile_function(f"def ask(q):\n    return {b!r} + q\n")
        assert (key(one, "x") == key(two, "x")) == (a == b)

    @settings(max_examples=50, deadline=None)
    @given(st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False)), st.text(max_size=10))
    def test_one_closure_value_apart_never_shares(self, a: object, b: object) -> None:
        """Two functions that differ only in one closure value never share a key."""

        def make(value: object) -> Any:
            def ask(q: str) -> str:
                return f"{value}{q}"

            return ask

        same = type(a) is type(b) and a == b
        assert (key(make(a), "x") == key(make(b), "x")) == same


FRESH = """
import json, sys
from memollm import cached_llm

TEMPLATE = "Answer briefly: {}"

def make(model):
    @cached_llm
    def ask(q: str) -> str:
        return TEMPLATE.format(q) + model
    return ask

print(json.dumps(make("m").cache.key_for("hi")))
"""


def test_the_same_code_keys_the_same_in_fresh_processes(tmp_path: Path) -> None:
    """The fingerprint is deterministic: two fresh interpreters (other hash seeds) agree."""
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    keys = set()
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        keys.add(json.loads(out.stdout))
    assert len(keys) == 1


APP = """
import json, sys
from memollm import cached_llm

calls = []

@cached_llm(tiers=["memory", "redis"])
def ask(q: str) -> str:
    calls.append(q)
    return "ANSWER " + q

print(json.dumps({"answer": ask("hi"), "calls": len(calls)}))
"""


def test_edited_code_does_not_get_the_old_answers_through_redis(tmp_path: Path, redis_url: str) -> None:
    """Two processes running the same code share answers; a process running edited code does not."""
    env = {**os.environ, "MEMOLLM_REDIS_URL": redis_url, "MEMOLLM_NAMESPACE": "identity"}
    script = tmp_path / "app.py"

    def run(source: str) -> dict[str, Any]:
        script.write_text(source)
        out = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, check=True, env=env
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    assert run(APP) == {"answer": "ANSWER hi", "calls": 1}
    assert run(APP) == {"answer": "ANSWER hi", "calls": 0}
    assert run(APP.replace('"ANSWER "', '"Answer: "')) == {"answer": "Answer: hi", "calls": 1}
    assert run(APP.replace("\nprint(", "\n# a comment\nprint(")) == {"answer": "ANSWER hi", "calls": 0}


class TestMethods:
    def test_private_and_unkeyable_state_is_left_out(self, caplog: pytest.LogCaptureFixture) -> None:
        """Underscore attributes never count; a client is left out with one warning naming it."""
        llm = FakeLLM()

        class Bot:
            def __init__(self, system: str) -> None:
                self.system = system
                self.client = object()
                self._calls = 0

            @cached_llm
            def ask(self, prompt: str) -> str:
                self._calls += 1
                return llm(f"{self.system}|{prompt}")

        with caplog.at_level(logging.WARNING, logger="memollm"):
            bot = Bot("terse")
            for _ in range(3):
                bot.ask("q")
            Bot("terse").ask("q")
        assert llm.calls == 1
        warned = [r.getMessage() for r in caplog.records if "self.client" in r.getMessage()]
        assert len(warned) == 1 and "object" in warned[0]

    def test_state_that_moves_every_call_is_named(self, caplog: pytest.LogCaptureFixture) -> None:
        """A public counter that changes on every call makes them miss; one warning names it."""
        llm = FakeLLM()

        class Bot:
            def __init__(self) -> None:
                self.turns = 0

            @cached_llm
            def ask(self, prompt: str) -> str:
                self.turns += 1
                return llm(prompt)

        bot = Bot()
        with caplog.at_level(logging.WARNING, logger="memollm"):
            for _ in range(6):
                bot.ask("q")
        assert llm.calls == 6
        named = [r.getMessage() for r in caplog.records if "self.turns" in r.getMessage()]
        assert len(named) == 1 and "_turns" in named[0]

    @pytest.mark.parametrize("kind", ["dataclass", "attrs", "pydantic", "slots"])
    def test_field_classes_are_keyed_by_their_fields(self, kind: str) -> None:
        """Dataclasses, attrs classes, pydantic models and slotted classes key by their fields."""
        llm = FakeLLM()
        bot_class = _bot_class(kind, llm)
        assert bot_class("a").ask("q") == bot_class("a").ask("q")
        assert llm.calls == 1
        bot_class("b").ask("q")
        assert llm.calls == 2

    def test_memollm_key_and_ignore_self_still_decide(self) -> None:
        """Memollm key and ignore self still decide."""
        llm = FakeLLM()

        class Keyed:
            def __init__(self, model: str) -> None:
                self.model = model

            def __memollm_key__(self) -> str:
                return "same"

            @cached_llm
            def ask(self, prompt: str) -> str:
                return llm(prompt + self.model)

        class Ignored:
            def __init__(self, model: str) -> None:
                self.model = model

            @cached_llm(ignore=["self"])
            def ask(self, prompt: str) -> str:
                return llm(prompt + self.model)

        assert Keyed("a").ask("q") == Keyed("b").ask("q")
        assert Ignored("a").ask("q") == Ignored("b").ask("q")
        assert llm.calls == 2

    def test_class_and_static_methods_keep_working(self) -> None:
        """Class and static methods keep working."""
        llm = FakeLLM()

        class Bot:
            @cached_llm
            @classmethod
            def ask(cls, prompt: str) -> str:
                return llm(prompt)

            @cached_llm
            @staticmethod
            def tell(prompt: str) -> str:
                return llm(prompt)

        assert Bot.ask("q") == Bot().ask("q")
        assert Bot.tell("q") == Bot().tell("q")
        assert llm.calls == 2


def _bot_class(kind: str, llm: FakeLLM) -> Any:
    def ask(self: Any, prompt: str) -> str:
        return llm(f"{self.model}|{prompt}")

    if kind == "dataclass":
        cls: Any = dataclasses.make_dataclass(
            "Bot", [("model", str), ("_seen", int, dataclasses.field(default=0))]
        )
    elif kind == "attrs":
        attrs = pytest.importorskip("attrs")
        cls = attrs.define(type("Bot", (), {"__annotations__": {"model": str}}))
    elif kind == "pydantic":
        pydantic = pytest.importorskip("pydantic")
        cls = pydantic.create_model(
            "Bot", model=(str, ...), __config__=pydantic.ConfigDict(protected_namespaces=())
        )
    else:

        class Slotted:
            __slots__ = ("model",)

            def __init__(self, model: str) -> None:
                self.model = model

        cls = Slotted
    cls.ask = cached_llm(ask)
    return (lambda model: cls(model=model)) if kind == "pydantic" else cls


class TestSentinels:
    def test_known_markers(self) -> None:
        """The SDKs' not-given markers are recognised, and None or a look-alike string is not one."""
        openai = pytest.importorskip("openai")
        httpx = pytest.importorskip("httpx")
        assert not_given(openai.NOT_GIVEN)
        assert not_given(httpx.USE_CLIENT_DEFAULT)
        if hasattr(openai, "omit"):
            assert not_given(openai.omit)
        assert not not_given(None) and not not_given("NotGiven")

    def test_a_not_given_argument_is_an_argument_not_passed(self) -> None:
        """A not given argument is an argument not passed."""
        openai = pytest.importorskip("openai")

        def create(model: str, temperature: Any = openai.NOT_GIVEN) -> str:
            return model

        b = KeyBuilder(create, Policy())
        assert b.info(None, ("m",), {}).key == b.info(None, ("m",), {"temperature": openai.NOT_GIVEN}).key
        assert b.info(None, ("m",), {}).key != b.info(None, ("m",), {"temperature": 0.5}).key

    def test_an_sdk_method_is_cached(self, upstream: Upstream) -> None:
        """Finding 3: cached_llm(ignore=["self"])(client.chat.completions.create) caches."""
        openai = pytest.importorskip("openai")
        upstream.script.append(Reply(body=completion("cached answer", "gpt-4o-mini")))
        client = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-test", max_retries=0)
        create = cached_llm(ignore=["self"])(client.chat.completions.create)
        messages = [{"role": "user", "content": "hi"}]
        first = create(model="gpt-4o-mini", messages=messages)
        second = create(model="gpt-4o-mini", messages=messages)
        assert first.choices[0].message.content == second.choices[0].message.content == "cached answer"
        assert len(upstream.requests) == 1
        assert create.cache.stats().uncacheable == 0


def test_savings_read_a_default_model() -> None:
    """Finding 5: the README quickstart's default model is priced, so money saved is reported."""

    @cached_llm
    def ask(question: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
        return {
            "choices": [{"message": {"content": "42"}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500},
        }

    ask("q")
    ask("q")
    stats = ask.cache.stats()
    assert stats.cost_saved > 0
    assert stats.unpriced_hits == 0
