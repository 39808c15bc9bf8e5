from __future__ import annotations

import dataclasses
import enum
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memollm import Policy, UncacheableArgumentError
from memollm import keys as keys_module
from memollm.canonical import canonical
from memollm.codec import Codec
from memollm.keys import KeyBuilder, function_id

from .strategies import rebuild, same, values


def _one(value: object) -> object:
    return value


def key_of(value: object, builder: KeyBuilder | None = None) -> str:
    builder = builder or KeyBuilder(_one, Policy(), fid="tests.one")
    return builder.info(None, (value,), {}).key


class TestProperties:
    @given(values)
    def test_equal_values_give_equal_keys(self, value: Any) -> None:
        """A value and an equal copy of new objects, dicts reordered, share a key."""
        assert key_of(value) == key_of(rebuild(value))

    @given(values, values)
    def test_different_values_give_different_keys(self, a: Any, b: Any) -> None:
        """Values that differ in content or type never share a key."""
        if not same(a, b):
            assert key_of(a) != key_of(b)

    @given(st.lists(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans()), min_size=2))
    def test_memo_does_not_depend_on_call_order(self, numbers: list[Any]) -> None:
        """Keys of scalar arguments are the same whatever was memoised before (1, 1.0 and True)."""
        forward = KeyBuilder(_one, Policy(), fid="tests.one")
        backward = KeyBuilder(_one, Policy(), fid="tests.one")
        keys_fwd = [key_of(n, forward) for n in numbers]
        keys_bwd = [key_of(n, backward) for n in reversed(numbers)][::-1]
        assert keys_fwd == keys_bwd
        fresh = [key_of(n) for n in numbers]
        assert keys_fwd == fresh

    def test_keys_are_the_same_in_another_process(self, tmp_path: Path) -> None:
        """Keys do not depend on the process: a child with another hash seed computes the same ones."""
        examples: list[Any] = []

        @settings(max_examples=150, database=None)
        @given(values)
        def collect(value: Any) -> None:
            examples.append(value)

        collect()
        codec = Codec()
        blob = tmp_path / "values.bin"
        blob.write_bytes(codec.encode(examples, created=0.0, expires=None))
        here = [key_of(v) for v in examples]
        script = (
            "import sys, json\n"
            "from memollm.codec import Codec\n"
            "from memollm.keys import KeyBuilder\n"
            "from memollm.policy import Policy\n"
            "def _one(value): return value\n"
            "b = KeyBuilder(_one, Policy(), fid='tests.one')\n"
            "vals = Codec().decode(open(sys.argv[1], 'rb').read()).value\n"
            "print(json.dumps([b.info(None, (v,), {}).key for v in vals]))\n"
        )
        env = {**os.environ, "PYTHONHASHSEED": "12345"}
        out = subprocess.run(
            [sys.executable, "-c", script, str(blob)], capture_output=True, text=True, check=True, env=env
        )
        assert json.loads(out.stdout) == here


def ask(prompt: str, model: str = "gpt-4o-mini", temperature: float = 1.0, **extra: Any) -> str:
    return prompt


def builder(func: Any = ask, **policy: Any) -> KeyBuilder:
    return KeyBuilder(func, Policy(**policy))


class TestCompleteness:
    def test_positional_and_keyword_share_a_key(self) -> None:
        """f("x") and f(prompt="x") are the same call."""
        b = builder()
        assert b.info(None, ("x",), {}).key == b.info(None, (), {"prompt": "x"}).key

    def test_defaults_are_applied(self) -> None:
        """An omitted argument equals passing its default, and differs from another value."""
        b = builder()
        assert b.info(None, ("x",), {}).key == b.info(None, ("x", "gpt-4o-mini"), {}).key
        assert b.info(None, ("x",), {}).key != b.info(None, ("x", "gpt-4o"), {}).key

    def test_keyword_and_dict_order_do_not_matter(self) -> None:
        """Order of keyword arguments and of dict items never changes the key."""
        b = builder()
        k1 = b.info(None, ("x",), {"tools": {"a": 1, "b": 2}, "seed": 1})
        k2 = b.info(None, ("x",), {"seed": 1, "tools": {"b": 2, "a": 1}})
        assert k1.key == k2.key

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ({"seed": 1}, {"seed": 2}),
            ({"seed": 1}, {}),
            ({"tools": [{"name": "x"}]}, {}),
            ({"tool_choice": "auto"}, {"tool_choice": "none"}),
            ({"response_format": {"type": "json_object"}}, {}),
        ],
        ids=["seed", "seed-omitted", "tools", "tool_choice", "response_format"],
    )
    def test_every_parameter_counts(self, a: dict[str, Any], b: dict[str, Any]) -> None:
        """Parameters passed through **kwargs (seed, tools, ...) are part of the key."""
        bld = builder()
        assert bld.info(None, ("x",), a).key != bld.info(None, ("x",), b).key

    def test_types_are_part_of_the_key(self) -> None:
        """1, 1.0, True, "1" and b"1" are different arguments; lists differ from tuples."""
        keys = {key_of(v) for v in (1, 1.0, True, "1", b"1", [1], (1,))}
        assert len(keys) == 7

    def test_negative_zero_and_nans(self) -> None:
        """-0.0 equals 0.0 and every NaN is the same NaN, as Python's equality says."""
        assert key_of(-0.0) == key_of(0.0)
        assert key_of(float("nan")) == key_of(-float("nan"))

    def test_function_identity_version_and_namespace(self) -> None:
        """Another function, another version salt or another namespace never shares a key."""

        def other(prompt: str, model: str = "gpt-4o-mini", temperature: float = 1.0, **extra: Any) -> str:
            return prompt

        base = builder().info(None, ("x",), {}).key
        assert builder(other).info(None, ("x",), {}).key != base
        assert builder(version=2).info(None, ("x",), {}).key != base
        ns = builder(namespace="team-a").info(None, ("x",), {}).key
        assert ns.startswith("team-a:") and ns != base

    def test_prefix_is_shared_by_a_functions_keys(self) -> None:
        """All keys of one function share a prefix of namespace and function digest."""
        b = builder()
        k1, k2 = b.info(None, ("x",), {}).key, b.info(None, ("y",), {}).key
        assert k1.startswith(b.prefix) and k2.startswith(b.prefix)
        assert b.prefix.count(":") == 2

    def test_schema_version_is_part_of_the_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Changing the key schema version changes every key."""
        before = builder().info(None, ("x",), {}).key
        monkeypatch.setattr(keys_module, "KEY_SCHEMA", keys_module.KEY_SCHEMA + 1)
        assert builder().info(None, ("x",), {}).key != before

    def test_ignore_leaves_arguments_out(self) -> None:
        """Ignored arguments (a client, an API key) do not change the key."""

        def call(prompt: str, client: object, api_key: str) -> str:
            return prompt

        b = builder(call, ignore=["client", "api_key"])
        assert b.info(None, ("x", object(), "sk-1"), {}).key == b.info(None, ("x", object(), "sk-2"), {}).key

    def test_key_callable_overrides(self) -> None:
        """key= decides the key alone; the function's identity still separates functions."""
        b = builder(key=lambda prompt, **_: prompt.lower())
        assert b.info(None, ("Hello",), {}).key == b.info(None, ("HELLO",), {"model": "other"}).key

    def test_key_callable_that_raises(self) -> None:
        """A key= callable that raises is reported as an uncacheable call, naming the callable."""
        b = builder(key=lambda *a, **k: 1 / 0)
        with pytest.raises(UncacheableArgumentError, match=r"key= callable raised ZeroDivisionError"):
            b.info(None, ("x",), {})

    def test_arguments_that_do_not_fit_raise_type_error(self) -> None:
        """A call that does not fit the signature is a TypeError, as calling the function would be."""
        with pytest.raises(TypeError):
            builder().info(None, (), {})


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Settings:
    model: str
    stop: tuple[str, ...] = ()


class Message(pydantic.BaseModel):
    role: str
    content: str


class WithKey:
    def __init__(self, model: str) -> None:
        self.model = model

    def __memollm_key__(self) -> object:
        return {"model": self.model}


class TestTypes:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: Color.RED,
            lambda: Settings("m", ("\n",)),
            lambda: Message(role="user", content="hi"),
            lambda: np.float32(0.5),
            lambda: np.arange(6, dtype=np.int16).reshape(2, 3),
            lambda: WithKey("gpt"),
            lambda: {1, 2, 3},
            lambda: 2**100,
            lambda: int,
        ],
        ids=[
            "enum",
            "dataclass",
            "pydantic",
            "np-scalar",
            "ndarray",
            "__memollm_key__",
            "set",
            "bigint",
            "type",
        ],
    )
    def test_supported_types_key_by_value(self, make: Any) -> None:
        """Supported argument types give equal keys for equal values built separately."""
        assert key_of(make()) == key_of(make())

    def test_values_of_supported_types_are_distinguished(self) -> None:
        """Different values, dtypes or classes of supported types give different keys."""
        assert key_of(Message(role="user", content="a")) != key_of(Message(role="user", content="b"))
        assert key_of(np.float32(0.5)) != key_of(np.float64(0.5))
        assert key_of(np.float32(0.5)) != key_of(0.5)
        assert key_of(np.zeros((2, 3))) != key_of(np.zeros((3, 2)))
        assert key_of(WithKey("a")) != key_of(WithKey("b"))
        assert key_of(Settings("m")) != key_of({"model": "m", "stop": ()})

    def test_byte_order_does_not_matter(self) -> None:
        """A big-endian array keys the same as the little-endian array of equal values."""
        little = np.arange(4, dtype="<i4")
        assert key_of(little) == key_of(little.astype(">i4"))

    def test_unsupported_argument_names_its_path(self) -> None:
        """An argument that cannot be keyed raises an error naming the argument, the path and the type."""
        b = builder()
        messages = [{"role": "user", "content": "hi"}, {"role": "user", "content": object()}]
        with pytest.raises(UncacheableArgumentError) as info:
            b.info(None, ("x",), {"messages": messages})
        assert info.value.path == "extra['messages'][1]['content']"
        assert "builtins.object" in str(info.value)

    def test_self_referencing_values_are_refused(self) -> None:
        """A list that contains itself is refused, not a RecursionError."""
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(UncacheableArgumentError):
            canonical(loop)

    def test_object_arrays_are_refused(self) -> None:
        """NumPy object arrays have no stable bytes and are refused."""
        with pytest.raises(UncacheableArgumentError):
            canonical(np.array([object()], dtype=object))


class TestMethods:
    def test_instance_is_keyed_through_memollm_key(self) -> None:
        """For a method, self is part of the key through __memollm_key__."""

        class Bot:
            def __init__(self, model: str) -> None:
                self.model = model

            def __memollm_key__(self) -> object:
                return self.model

            def ask(self, prompt: str) -> str:
                return prompt

        b = KeyBuilder(Bot.ask, Policy())
        assert b.info(Bot("a"), ("x",), {}).key == b.info(Bot("a"), ("x",), {}).key
        assert b.info(Bot("a"), ("x",), {}).key != b.info(Bot("b"), ("x",), {}).key

    def test_plain_instance_is_keyed_by_its_public_state(self) -> None:
        """A plain object as self is keyed by its class and public, keyable attributes."""

        class Bot:
            def __init__(self, model: str) -> None:
                self.model = model
                self.client = object()  # unkeyable: left out
                self._calls = 0  # private: left out

            def ask(self, prompt: str) -> str:
                return prompt

        b = KeyBuilder(Bot.ask, Policy())
        one, same, other = Bot("a"), Bot("a"), Bot("b")
        same._calls = 7
        assert b.info(one, ("x",), {}).key == b.info(same, ("x",), {}).key
        assert b.info(one, ("x",), {}).key != b.info(other, ("x",), {}).key

    def test_ignored_self(self) -> None:
        """With ignore=["self"] any instance shares the key."""

        class Bot:
            def ask(self, prompt: str) -> str:
                return prompt

        b = KeyBuilder(Bot.ask, Policy(ignore=["self"]))
        assert b.info(Bot(), ("x",), {}).key == b.info(Bot(), ("x",), {}).key


class TestExplain:
    def test_explain_lists_the_canonical_parts(self) -> None:
        """explain() shows the function, the arguments in canonical form and the key."""
        b = builder(ignore=["model"], version="v2")
        exp = b.explain(None, ("x",), {"stop": ("a",)})
        assert exp.function.endswith("tests.test_keys.ask")
        assert exp.version == "v2"
        assert exp.ignored == ("model",)
        assert exp.arguments == {"prompt": "x", "temperature": 1.0, "extra": {"stop": {"$tuple": ["a"]}}}
        assert exp.key == b.info(None, ("x",), {"stop": ("a",)}).key
        assert exp.sampled is True


class TestSampled:
    @pytest.mark.parametrize(
        ("kwargs", "sampled"),
        [
            ({"temperature": 0}, False),
            ({"temperature": 0.0}, False),
            ({"temperature": 0.7}, True),
            ({"temperature": None}, True),
            ({}, True),
        ],
        ids=["zero-int", "zero-float", "warm", "none-means-provider-default", "default-1.0"],
    )
    def test_temperature_decides(self, kwargs: dict[str, Any], sampled: bool) -> None:
        """A call samples when its temperature is above 0 or left to the provider."""
        assert builder().info(None, ("x",), kwargs).sampled is sampled

    def test_passthrough_without_temperature_samples(self) -> None:
        """An OpenAI-style **kwargs pass-through without temperature samples (the provider's default is 1)."""

        def create(**request: Any) -> str:
            return ""

        b = KeyBuilder(create, Policy())
        assert b.info(None, (), {"messages": [], "model": "m"}).sampled is True
        assert b.info(None, (), {"messages": [], "temperature": 0}).sampled is False

    def test_function_without_temperature_does_not_sample(self) -> None:
        """A function with no temperature at all is treated as deterministic."""

        def lookup(query: str) -> str:
            return query

        assert KeyBuilder(lookup, Policy()).info(None, ("x",), {}).sampled is False


def test_function_id_of_a_script(tmp_path: Path) -> None:
    """A function in a script run as __main__ is named after the script, so two scripts never collide."""
    script = tmp_path / "my_tool.py"
    script.write_text("from memollm.keys import function_id\ndef ask(): pass\nprint(function_id(ask))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "__main__:my_tool.ask"
    assert function_id(ask) == "tests.test_keys.ask"
