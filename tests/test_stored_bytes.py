"""Stored bytes are untrusted: whatever a tier holds under a key, a call answers right and never raises."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memollm
from memollm.backends.redis import RedisBackend
from memollm.backends.sqlite import SQLiteBackend

LOWER = ("redis", "sqlite")
FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=5),
    st.binary(max_size=5), st.lists(st.integers(-(2**63), 2**63), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-5, 5), max_size=3),
)  # fmt: skip


@pytest.fixture(params=LOWER)
def lower(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A real Redis or SQLite tier under the memory tier, registered as "lower"."""
    backend: Any
    if request.param == "redis":
        backend = RedisBackend(request.getfixturevalue("redis_url"))
    else:
        backend = SQLiteBackend(tmp_path / "cache.db")
    memollm.register_tier("lower", backend)
    yield backend
    backend.close()


def make(calls: list[str]) -> Any:
    @memollm.cached_llm(tiers=["memory", "lower"], name="stored-bytes")
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer to {prompt}"

    return ask


def envelope(**fields: object) -> bytes:
    now = time.time()
    base = {"format": 1, "kind": 0, "created": now, "expires": now + 600, "meta": {"f": "x"}, "value": "x"}
    base.update(fields)
    return msgpack.packb(list(base.values()), use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "fields",
    [
        {"meta": "x"},
        {"meta": 7},
        {"meta": [1, 2]},
        {"meta": None},
        {"created": "2024-01-01"},
        {"created": None},
        {"expires": "never"},
        {"expires": [1]},
        {"expires": float("nan")},
        {"kind": 7},
        {"kind": "0"},
        {"kind": True},
        {"kind": 1, "value": "x"},
        {"format": 2},
        {"format": "1"},
    ],
    ids=lambda f: ",".join(f"{k}={v!r}" for k, v in f.items()),
)
def test_a_malformed_envelope_is_a_miss_and_is_replaced(lower: Any, fields: dict[str, object]) -> None:
    """An envelope with a field of the wrong type is never served, never raised, never copied up."""
    calls: list[str] = []
    ask = make(calls)
    key = ask.cache.key_for("q")
    lower.set(key, envelope(**fields), 600)
    assert ask("q") == "answer to q"
    assert ask("q") == "answer to q"  # the memory tier did not keep the bad bytes
    assert calls == ["q"]


@pytest.mark.parametrize(
    "meta",
    [
        {"u": "x"},
        {"u": [1, 2, 3, 4, 5]},
        {"u": [1.5, "a", None, 3, "slow"]},
        {"u": [-1, 2**64 - 1, 1, 2, 1e300]},
        {"f": 3, "u": None},
        {1: 2},
    ],
    ids=repr,
)
def test_odd_metadata_in_a_valid_entry_is_served_and_counted(lower: Any, meta: dict[object, object]) -> None:
    """An entry whose own fields are right is served; metadata it cannot read only loses its savings."""
    calls: list[str] = []
    ask = make(calls)
    lower.set(ask.cache.key_for("q"), envelope(meta=meta), 600)
    assert ask("q") == ask("q") == "x"
    stats = ask.cache.stats()
    assert calls == []
    assert stats.hit_count == 2
    assert stats.cost_saved >= 0.0


def test_the_crash_does_not_stick_in_the_memory_tier(lower: Any) -> None:
    """Bad bytes in the lower tier are never promoted: the next process-level hit is the fresh answer."""
    calls: list[str] = []
    ask = make(calls)
    key = ask.cache.key_for("q")
    lower.set(key, envelope(meta="not a map"), 600)
    with memollm.lookup() as seen:
        ask("q")
    assert seen.outcome == "miss"
    lower.delete(key)
    with memollm.lookup() as seen:
        assert ask("q") == "answer to q"
    assert seen.outcome == "hit"
    assert seen.tier == "memory"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries(dict.fromkeys(("kind", "created", "expires", "meta", "value"), FIELD_VALUES))
)
def test_any_envelope_fields_never_reach_the_caller(lower: Any, fields: dict[str, object]) -> None:
    """Whatever types a six-field envelope holds, the call returns a str: a valid entry's or a fresh one."""
    calls: list[str] = []
    ask = make(calls)
    ask.cache.clear()
    key = ask.cache.key_for("q")
    lower.set(key, envelope(**fields), 600)
    result = ask("q")
    assert isinstance(result, str)


def test_lone_surrogates_in_arguments_are_keyed() -> None:
    """A lone surrogate in a prompt neither raises nor collides with another prompt."""
    calls: list[str] = []

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "ok"

    assert ask("\ud800") == "ok"
    assert ask("\ud800") == "ok"
    assert ask("\udc00") == "ok"
    assert ask({"\ud800": 1}) == "ok"  # type: ignore[arg-type]
    assert calls == ["\ud800", "\udc00", {"\ud800": 1}]
    assert ask.cache.key_for("\ud800") != ask.cache.key_for("\udc00") != ask.cache.key_for("?")


def test_a_key_method_that_raises_calls_through(warnings_log: pytest.LogCaptureFixture) -> None:
    """An argument whose __memollm_key__ raises makes the call go through uncached, with a warning."""

    class Broken:
        def __memollm_key__(self) -> str:
            raise RuntimeError("no key today")

    calls: list[object] = []

    @memollm.cached_llm
    def ask(thing: object) -> str:
        calls.append(thing)
        return "ok"

    thing = Broken()
    assert ask(thing) == "ok"
    assert ask(thing) == "ok"
    assert len(calls) == 2
    assert ask.cache.stats().uncacheable == 2
    assert "no key today" in warnings_log.text


def test_a_key_method_that_raises_raises_when_strict() -> None:
    """strict=True surfaces the same failure to the caller."""

    class Broken:
        def __memollm_key__(self) -> str:
            raise RuntimeError("no key today")

    @memollm.cached_llm(strict=True)
    def ask(thing: object) -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="no key today"):
        ask(Broken())


def test_results_that_cannot_be_encoded_are_served_uncached() -> None:
    """A result holding a lone surrogate is returned to the caller and simply not stored."""
    calls: list[str] = []

    @memollm.cached_llm
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "bad \ud800 answer"

    assert ask("q") == ask("q") == "bad \ud800 answer"
    assert len(calls) == 2
