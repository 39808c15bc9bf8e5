from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import threading
from typing import Any

import pydantic
import pytest

import memollm
from memollm import (
    BackendError,
    CodecError,
    ConfigError,
    LLMCache,
    Policy,
    UncacheableArgumentError,
    cached_llm,
)
from memollm.backends import MemoryBackend
from memollm.testing import FakeClock, FakeLLM

from .faces import Face


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


class TestKinds:
    def test_sync_function(self, llm: FakeLLM) -> None:
        """A repeated call is answered from cache; the model is called once."""

        @cached_llm(ttl=600)
        def ask(prompt: str, model: str = "m") -> str:
            """Ask the model."""
            return llm(prompt, model)

        first = ask("hi")
        assert ask("hi") == first
        assert ask(prompt="hi") == first
        assert llm.calls == 1
        assert ask("other") != first
        assert llm.calls == 2

    def test_metadata_is_preserved(self) -> None:
        """Name, docstring, signature and coroutine/generator-ness survive decoration."""

        def plain(prompt: str, n: int = 1) -> str:
            """Doc."""
            return prompt

        async def coro(prompt: str) -> str:
            return prompt

        def gen(prompt: str) -> Any:
            yield prompt

        async def agen(prompt: str) -> Any:
            yield prompt

        for fn in (plain, coro, gen, agen):
            wrapped = cached_llm(fn)
            assert wrapped.__name__ == fn.__name__
            assert wrapped.__doc__ == fn.__doc__
            assert wrapped.__qualname__ == fn.__qualname__
            assert inspect.signature(wrapped) == inspect.signature(fn)
            assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(fn)
            assert inspect.isgeneratorfunction(wrapped) == inspect.isgeneratorfunction(fn)
            assert inspect.isasyncgenfunction(wrapped) == inspect.isasyncgenfunction(fn)
            assert wrapped.__wrapped__ is fn

    async def test_async_function(self, llm: FakeLLM) -> None:
        """Async functions are cached and stay awaitable."""

        @cached_llm
        async def ask(prompt: str) -> str:
            return await llm.acomplete(prompt)

        assert await ask("x") == await ask("x")
        assert llm.calls == 1
        assert ask.cache.stats().hits == {"memory": 1}

    def test_instance_method(self, llm: FakeLLM) -> None:
        """Methods key on their instance (through __memollm_key__), however they are called."""

        class Bot:
            def __init__(self, model: str) -> None:
                self.model = model

            def __memollm_key__(self) -> str:
                return self.model

            @cached_llm
            def ask(self, prompt: str) -> str:
                return llm(prompt, self.model)

        a, a2, b = Bot("a"), Bot("a"), Bot("b")
        assert a.ask("q") == a2.ask("q") == Bot.ask(a, "q")
        assert llm.calls == 1
        assert b.ask("q") != a.ask("q")
        assert llm.calls == 2
        assert a.ask.cache is Bot.ask.cache

    def test_a_dropped_cached_function_is_collected(self) -> None:
        """A cached function nobody holds any more is freed with its cache, as a plain function is."""
        import weakref

        import wrapt

        @cached_llm
        def ask(prompt: str) -> str:
            return prompt

        assert isinstance(ask, wrapt.FunctionWrapper)
        assert ask("x") == "x"
        gone = weakref.ref(ask)
        state = weakref.ref(ask.cache)
        del ask
        gc.collect()
        assert gone() is None and state() is None

    def test_method_with_plain_instance_is_cached(self, llm: FakeLLM) -> None:
        """A method of an ordinary class is cached, keyed by the instance's public state."""

        class Bot:
            def __init__(self, system: str) -> None:
                self.system = system

            @cached_llm
            def ask(self, prompt: str) -> str:
                return llm(f"{self.system}|{prompt}")

        bot = Bot("terse")
        assert bot.ask("q") == bot.ask("q") == Bot("terse").ask("q")
        assert llm.calls == 1
        assert Bot("chatty").ask("q") != bot.ask("q")
        assert llm.calls == 2
        assert Bot.ask.cache.stats().uncacheable == 0

    def test_method_ignoring_self(self, llm: FakeLLM) -> None:
        """ignore=["self"] shares entries between instances."""

        class Bot:
            @cached_llm(ignore=["self"])
            def ask(self, prompt: str) -> str:
                return llm(prompt)

        Bot().ask("q")
        Bot().ask("q")
        assert llm.calls == 1

    def test_bound_method(self) -> None:
        """Decorating a bound method (cached_llm(client.ask)) keys on its object like any method."""
        short, long = FakeLLM(answer_chars=10), FakeLLM(answer_chars=50)
        ask_short, ask_long = cached_llm(short.complete), cached_llm(long.complete)
        assert ask_short("q") == ask_short("q")
        assert len(ask_long("q")) == 50
        assert (short.calls, long.calls) == (1, 1)
        assert ask_short.cache.stats().hits == {"memory": 1}

    def test_class_and_static_methods(self, llm: FakeLLM) -> None:
        """Class and static methods work with cached_llm above or below them."""

        class Api:
            model = "m"

            @cached_llm
            @classmethod
            def outer_cls(cls, prompt: str) -> str:
                return llm(prompt, cls.model)

            @classmethod
            @cached_llm
            def inner_cls(cls, prompt: str) -> str:
                return llm(prompt, cls.model)

            @cached_llm
            @staticmethod
            def outer_static(prompt: str) -> str:
                return llm(prompt)

            @staticmethod
            @cached_llm
            def inner_static(prompt: str) -> str:
                return llm(prompt)

        for name in ("outer_cls", "inner_cls", "outer_static", "inner_static"):
            before = llm.calls
            method = getattr(Api, name)
            assert method("q") == getattr(Api(), name)("q") == method("q")
            assert llm.calls == before + 1, name

    def test_subclass_is_a_different_class_key(self, llm: FakeLLM) -> None:
        """A classmethod called on a subclass keys on the subclass."""

        class Api:
            @cached_llm
            @classmethod
            def ask(cls, prompt: str) -> str:
                return llm(prompt, cls.__name__)

        class Sub(Api):
            pass

        assert Api.ask("q") != Sub.ask("q")
        assert llm.calls == 2

    def test_decorator_forms(self, llm: FakeLLM) -> None:
        """@cached_llm, @cached_llm() and @cached_llm(policy=...) all work."""

        @cached_llm()
        def a(prompt: str) -> str:
            return llm(prompt)

        @cached_llm(policy=Policy(ttl=5), namespace="x")
        def b(prompt: str) -> str:
            return llm(prompt)

        a("q")
        a("q")
        assert llm.calls == 1
        assert b.cache.policy.ttl == 5.0 and b.cache.policy.namespace == "x"

    def test_bad_decorator_settings(self) -> None:
        """Unknown settings, bad values and non-callables are refused at decoration time."""
        with pytest.raises(ConfigError, match="tll"):
            cached_llm(tll=5)  # type: ignore[call-overload]
        with pytest.raises(ConfigError, match="-5"):
            cached_llm(ttl=-5)(lambda: 1)
        with pytest.raises(ConfigError, match="decorates functions"):
            cached_llm(42)  # type: ignore[call-overload]
        with pytest.raises(ConfigError, match=r"memollm\.Policy"):
            cached_llm(policy={"ttl": 5})(lambda: 1)  # type: ignore[arg-type]


class TestHelpers:
    def test_stats_clear_invalidate_uncached(self, llm: FakeLLM) -> None:
        """stats(), clear(), invalidate() and uncached act on this function only."""

        @cached_llm
        def ask(prompt: str) -> str:
            return llm(prompt)

        @cached_llm
        def other(prompt: str) -> str:
            return llm(prompt)

        ask("a")
        ask("b")
        other("a")
        ask("a")
        s = ask.cache.stats()
        assert (s.hits, s.misses, s.stores, s.hit_rate) == ({"memory": 1}, 2, 2, pytest.approx(1 / 3))

        ask.cache.invalidate("a")
        ask("a")
        assert llm.calls == 4
        ask("b")
        assert llm.calls == 4

        assert ask.cache.clear() == 2
        ask("a")
        ask("b")
        other("a")
        assert llm.calls == 6

        ask.cache.uncached("a")
        assert llm.calls == 7
        ask.cache.reset_stats()
        assert ask.cache.stats().lookups == 0

    def test_global_stats_sum_functions(self, llm: FakeLLM) -> None:
        """memollm.stats() adds up every cached function."""

        @cached_llm
        def f(prompt: str) -> str:
            return llm(prompt)

        @cached_llm
        def g(prompt: str) -> str:
            return llm(prompt)

        # stats() sums the caches alive: none may be collected between the two snapshots.
        gc.collect()
        gc.disable()
        try:
            before = memollm.stats()
            f("x")
            f("x")
            g("x")
            after = memollm.stats()
        finally:
            gc.enable()
        assert after.misses - before.misses == 2
        assert after.hit_count - before.hit_count == 1

    def test_explain_and_key_for(self) -> None:
        """explain_key() shows why two calls differ; key_for() gives the storage key."""

        @cached_llm(ignore=["client"])
        def ask(prompt: str, client: object = None, temperature: float = 0.0) -> str:
            return prompt

        e1 = ask.cache.explain_key("x", temperature=0.0)
        e2 = ask.cache.explain_key("x", temperature=0.5)
        assert e1.arguments != e2.arguments
        assert e1.arguments == {"prompt": "x", "temperature": 0.0}
        assert e1.key == ask.cache.key_for("x") != e2.key


def test_key_callable_is_asked_on_every_call() -> None:
    """A key= callable that reads a contextvar (a tenant) is honoured on every call, never memoised."""
    import contextvars

    tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")
    calls = []

    @cached_llm(key=lambda prompt: (tenant.get(), prompt))
    def ask(prompt: str) -> str:
        calls.append(tenant.get())
        return f"{tenant.get()}:{prompt}"

    tenant.set("a")
    assert ask("x") == "a:x"
    tenant.set("b")
    assert ask("x") == "b:x"
    assert ask("x") == "b:x"
    tenant.set("a")
    assert ask("x") == "a:x"
    assert calls == ["a", "b"]


class TestControls:
    def test_bypass_neither_reads_nor_writes(self, llm: FakeLLM, face: Face) -> None:
        """Inside bypass() calls go to the model and nothing is stored."""

        def answer(prompt: str) -> str:
            return llm(prompt)

        ask = cached_llm(face.shaped(answer))
        face.call(ask, "x")
        with memollm.bypass():
            face.call(ask, "x")
            face.call(ask, "y")
        assert llm.calls == 3
        face.call(ask, "y")
        assert llm.calls == 4
        assert ask.cache.stats().bypasses == 2

    def test_refresh_skips_the_read_and_writes(self, face: Face) -> None:
        """Inside refresh() the model is called and its new answer replaces the old."""
        answers = iter(["old", "new", "newer"])

        def answer(prompt: str) -> str:
            return next(answers)

        ask = cached_llm(face.shaped(answer))
        assert face.call(ask, "x") == "old"
        with memollm.refresh():
            assert face.call(ask, "x") == "new"
        assert face.call(ask, "x") == "new"

    def test_controls_are_per_thread(self, llm: FakeLLM) -> None:
        """bypass() in one thread does not affect another thread running at the same time."""

        @cached_llm
        def ask(prompt: str) -> str:
            return llm(prompt)

        ask("x")
        inside = threading.Event()
        done = threading.Event()
        seen: dict[str, int] = {}

        def bypassing() -> None:
            with memollm.bypass():
                inside.set()
                done.wait(5)
                ask("x")

        t = threading.Thread(target=bypassing)
        t.start()
        assert inside.wait(5)
        before = llm.calls
        ask("x")  # this thread is not in bypass: a hit
        seen["other_thread"] = llm.calls - before
        done.set()
        t.join()
        assert seen["other_thread"] == 0
        assert llm.calls == 2  # the bypassing thread called the model

    async def test_controls_are_per_task(self, llm: FakeLLM) -> None:
        """refresh() in one asyncio task does not leak into a concurrent task."""

        @cached_llm
        async def ask(prompt: str) -> str:
            return await llm.acomplete(prompt)

        await ask("x")
        entered = asyncio.Event()
        release = asyncio.Event()

        async def refreshing() -> None:
            with memollm.refresh():
                entered.set()
                await release.wait()
                await ask("x")

        task = asyncio.create_task(refreshing())
        await entered.wait()
        await ask("x")
        assert llm.calls == 1
        release.set()
        await task
        assert llm.calls == 2

    def test_disabled_by_policy(self, llm: FakeLLM) -> None:
        """enabled=False sends every call through."""

        @cached_llm(enabled=False)
        def ask(prompt: str) -> str:
            return llm(prompt)

        ask("x")
        ask("x")
        assert llm.calls == 2


class TestResults:
    def test_exceptions_propagate_and_are_not_cached(self, face: Face) -> None:
        """The function's own exception reaches the caller unchanged and the next call tries again."""
        calls = []

        class RateLimited(Exception):
            pass

        def answer(prompt: str) -> str:
            calls.append(prompt)
            if len(calls) == 1:
                raise RateLimited("429")
            return "ok"

        ask = cached_llm(face.shaped(answer))
        with pytest.raises(RateLimited, match="429"):
            face.call(ask, "x")
        assert face.call(ask, "x") == "ok"
        assert face.call(ask, "x") == "ok"
        assert len(calls) == 2

    def test_wrong_arguments_raise_the_functions_own_error(self) -> None:
        """Calling with arguments that do not fit raises the function's TypeError."""

        @cached_llm
        def ask(prompt: str) -> str:
            return prompt

        with pytest.raises(TypeError, match="prompt"):
            ask()  # type: ignore[call-arg]

    def test_cache_if_skips_bad_results(self, llm: FakeLLM, face: Face) -> None:
        """Results cache_if rejects are returned but not stored."""
        answers = iter(["", "", "good"])

        def answer(prompt: str) -> str:
            llm("x")
            return next(answers)

        ask = cached_llm(cache_if=bool)(face.shaped(answer))
        assert face.call(ask, "x") == ""
        assert face.call(ask, "x") == ""
        assert face.call(ask, "x") == "good"
        assert face.call(ask, "x") == "good"
        assert llm.calls == 3
        assert ask.cache.stats().skipped == 2

    def test_cache_if_that_raises_loses_nothing(self, warnings_log: pytest.LogCaptureFixture) -> None:
        """A cache_if that raises still returns the result; it is not stored and a warning is logged."""

        @cached_llm(cache_if=lambda r: r["missing"])
        def ask(prompt: str) -> dict[str, str]:
            return {"text": prompt}

        assert ask("x") == {"text": "x"}
        assert "cache_if raised" in warnings_log.text
        with pytest.raises(KeyError):
            cached_llm(cache_if=lambda r: r["missing"], strict=True)(lambda prompt: {})("x")

    def test_sampled_skip(self, llm: FakeLLM) -> None:
        """sampled="skip" calls the model for warm temperatures and caches temperature 0."""

        @cached_llm(sampled="skip")
        def ask(prompt: str, temperature: float = 1.0) -> str:
            return llm(prompt, temperature=temperature)

        ask("x")
        ask("x")
        ask("x", temperature=0)
        ask("x", temperature=0)
        assert llm.calls == 3
        assert ask.cache.stats().bypasses == 2

    def test_sampled_cached_by_default(self, llm: FakeLLM) -> None:
        """By default a warm call is cached too: a hit replays one sample."""

        @cached_llm
        def ask(prompt: str, temperature: float = 1.0) -> str:
            return llm(prompt, temperature=temperature)

        ask("x")
        ask("x")
        assert llm.calls == 1

    def test_uncacheable_argument_warns_once_and_calls_through(
        self, llm: FakeLLM, warnings_log: pytest.LogCaptureFixture
    ) -> None:
        """An argument that cannot be keyed: the call goes through, one warning names it."""

        @cached_llm
        def ask(prompt: str, client: object) -> str:
            return llm(prompt)

        assert ask("x", object()) == ask("x", object())
        assert llm.calls == 2
        assert len(warnings_log.records) == 1
        assert "'client'" in warnings_log.text and "builtins.object" in warnings_log.text
        assert ask.cache.stats().uncacheable == 2

    def test_uncacheable_argument_strict(self, llm: FakeLLM) -> None:
        """With strict=True the call raises before reaching the model."""

        @cached_llm(strict=True)
        def ask(prompt: str, client: object) -> str:
            return llm(prompt)

        with pytest.raises(UncacheableArgumentError, match="client"):
            ask("x", object())
        assert llm.calls == 0

    def test_unencodable_result_is_returned_not_stored(self, warnings_log: pytest.LogCaptureFixture) -> None:
        """A result the codec cannot store is still returned, with a warning, and not cached."""
        calls = []

        class Opaque:
            pass

        @cached_llm
        def ask(prompt: str) -> Opaque:
            calls.append(1)
            return Opaque()

        assert isinstance(ask("x"), Opaque)
        assert isinstance(ask("x"), Opaque)
        assert len(calls) == 2
        assert ask.cache.stats().errors == 2
        assert "result not cached" in warnings_log.text
        with pytest.raises(CodecError):
            cached_llm(strict=True)(lambda prompt: Opaque())("x")

    def test_hits_return_fresh_copies(self) -> None:
        """Mutating a returned value never changes what the cache serves next."""

        @cached_llm
        def ask(prompt: str) -> dict[str, Any]:
            return {"choices": [{"text": prompt}]}

        first = ask("x")
        first["choices"].append("junk")
        second = ask("x")
        second["choices"][0]["text"] = "changed"
        assert ask("x") == {"choices": [{"text": "x"}]}

    def test_typed_result_round_trip(self) -> None:
        """A pydantic result named in the return annotation is served back as the same class."""

        class Reply(pydantic.BaseModel):
            text: str
            tokens: int

        calls = []

        @cached_llm
        def ask(prompt: str) -> Reply:
            calls.append(1)
            return Reply(text=prompt, tokens=3)

        assert ask("x") == ask("x") == Reply(text="x", tokens=3)
        assert type(ask("x")) is Reply
        assert len(calls) == 1


class TestTiers:
    def test_ttl_expiry(self, clock: FakeClock, memory: MemoryBackend, llm: FakeLLM) -> None:
        """An entry is served until its TTL passes, then the model is called again."""

        def ask(prompt: str) -> str:
            return llm(prompt)

        cached = LLMCache(ask, settings={"ttl": 10}, clock=clock).wrap(ask)
        cached("x")
        clock.advance(9.9)
        cached("x")
        assert llm.calls == 1
        clock.advance(0.2)
        cached("x")
        assert llm.calls == 2

    def test_lower_tier_hits_are_promoted_with_remaining_ttl(self, clock: FakeClock, llm: FakeLLM) -> None:
        """A hit in a lower tier is copied up with the TTL it has left, never a fresh one."""
        upper, lower = MemoryBackend(clock=clock), MemoryBackend(clock=clock)

        def ask(prompt: str) -> str:
            return llm(prompt)

        cache = LLMCache(ask, settings={"ttl": 100, "tiers": [upper, lower]}, clock=clock)
        cached = cache.wrap(ask)
        cached("x")
        upper.clear()
        clock.advance(60)
        cached("x")  # from the lower tier, promoted with 40 s left
        assert llm.calls == 1
        assert cache.stats().hits == {"memory#2": 1}
        assert len(upper) == 1
        clock.advance(39)
        cached("x")
        assert llm.calls == 1
        clock.advance(2)
        cached("x")
        assert llm.calls == 2

    def test_corrupt_entry_is_a_counted_miss(self, memory: MemoryBackend, llm: FakeLLM, face: Face) -> None:
        """Bytes that do not decode are a miss: deleted, counted, replaced by a fresh answer."""

        def answer(prompt: str) -> str:
            return llm(prompt)

        ask = cached_llm(face.shaped(answer))
        key = ask.cache.key_for("x")
        memory.set(key, b"\xc1garbage", None)
        assert face.call(ask, "x") == llm.answer("x")
        assert ask.cache.stats().corrupt == 1
        assert memory.get(key) != b"\xc1garbage"
        face.call(ask, "x")
        assert llm.calls == 1

    def test_entry_of_a_newer_format_is_left_alone(self, memory: MemoryBackend, llm: FakeLLM) -> None:
        """An entry in a format this version does not know is a miss but is not deleted."""
        import msgpack

        @cached_llm
        def ask(prompt: str) -> str:
            return llm(prompt)

        key = ask.cache.key_for("x")
        memory.set(key, msgpack.packb([99, 0, 1.0, None, {}, "x"]), None)
        ask("x")
        assert ask.cache.stats().corrupt == 1

    def test_failing_tier_is_skipped(self, llm: FakeLLM, warnings_log: pytest.LogCaptureFixture) -> None:
        """A tier that raises never reaches the caller: the call goes through and other tiers work."""

        class Broken(MemoryBackend):
            def get(self, key: str) -> bytes | None:
                raise ConnectionError("down")

            def set(self, key: str, value: bytes, ttl: float | None) -> None:
                raise ConnectionError("down")

        good = MemoryBackend()

        @cached_llm(tiers=[Broken(), good])
        def ask(prompt: str) -> str:
            return llm(prompt)

        ask("x")
        ask("x")
        assert llm.calls == 1
        # get + set on the first call, get on the second: the third failure opens the tier's
        # breaker, so promoting the lower tier's hit into it is skipped, not attempted.
        assert ask.cache.stats().errors == 3
        assert ask.cache.stats().hits == {"memory#2": 1}
        assert warnings_log.text.count("down") == 1
        assert "skipping it" in warnings_log.text

        @cached_llm(tiers=[Broken()], strict=True)
        def strict(prompt: str) -> str:
            return llm(prompt)

        with pytest.raises(BackendError, match="down"):
            strict("x")

    def test_unknown_tier_name(self) -> None:
        """A policy naming a tier nobody registered fails at decoration time, saying how to register it."""
        with pytest.raises(ConfigError, match="register_tier"):
            cached_llm(tiers=["nosuch"])(lambda: 1)


class TestAsyncTiers:
    async def test_async_paths_promote_invalidate_clear(self, clock: FakeClock, llm: FakeLLM) -> None:
        """The async face promotes with remaining TTL, invalidates one call and clears the function."""
        upper, lower = MemoryBackend(clock=clock), MemoryBackend(clock=clock)

        async def ask(prompt: str) -> str:
            return await llm.acomplete(prompt)

        cache = LLMCache(ask, settings={"ttl": 100, "tiers": [upper, lower]}, clock=clock)
        cached = cache.wrap(ask)
        await cached("x")
        await cached("y")
        upper.clear()
        clock.advance(60)
        await cached("x")
        assert cache.stats().hits == {"memory#2": 1}
        clock.advance(41)
        await cached("x")
        assert llm.calls == 3  # the promoted copy expired with the original
        await cache.ainvalidate("x")
        await cached("x")
        assert llm.calls == 4
        assert await cache.aclear() == 3  # x in both tiers, y in the lower one
        await cached("y")
        assert llm.calls == 5

    async def test_async_corrupt_and_failing_tiers(
        self, memory: MemoryBackend, llm: FakeLLM, warnings_log: pytest.LogCaptureFixture
    ) -> None:
        """On the async path corrupt entries are deleted and failing tiers skipped."""

        class Broken(MemoryBackend):
            name = "flaky"

            async def aget(self, key: str) -> bytes | None:
                raise TimeoutError("slow")

            async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
                raise TimeoutError("slow")

        @cached_llm(tiers=[Broken(), "memory"])
        async def ask(prompt: str) -> str:
            return await llm.acomplete(prompt)

        memory.set(ask.cache.key_for("x"), b"\xc1", None)
        await ask("x")
        await ask("x")
        stats = ask.cache.stats()
        assert llm.calls == 1
        assert stats.corrupt == 1
        assert stats.hits == {"memory": 1}
        assert "slow" in warnings_log.text


@pytest.mark.skipif(sys.version_info < (3, 11), reason="typing.get_overloads is new in 3.11")
def test_the_typed_signature_lists_every_policy_field() -> None:
    """Type checkers see every Policy field as a keyword of cached_llm(...)."""
    import dataclasses
    import typing

    with_settings = typing.get_overloads(memollm.cached_llm)[-1]
    keywords = set(inspect.signature(with_settings).parameters) - {"wrapped", "policy", "name"}
    assert keywords == {f.name for f in dataclasses.fields(memollm.Policy)}
