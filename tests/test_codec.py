from __future__ import annotations

import dataclasses
import enum
import sys
from collections import OrderedDict
from typing import Any, NamedTuple

import msgpack
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import memollm
from memollm import CodecError, IncompatibleEntryError
from memollm.codec import KIND_STREAM, KIND_VALUE, Codec, restorable_types

from .strategies import same, values


def roundtrip(value: Any, codec: Codec | None = None) -> Any:
    codec = codec or Codec()
    return codec.decode(codec.encode(value, created=1.0, expires=2.0)).value


@given(values)
def test_roundtrip_keeps_values_and_types(value: Any) -> None:
    """Every supported plain value comes back equal and of the same types (tuples stay tuples)."""
    assert same(roundtrip(value), value)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Random bytes either decode to a valid envelope or raise CodecError; nothing else."""
    try:
        entry = Codec().decode(data)
    except CodecError:
        return
    assert entry.kind in (KIND_VALUE, KIND_STREAM)


def test_envelope_fields() -> None:
    """The envelope carries kind, timestamps and metadata beside the value."""
    codec = Codec()
    entry = codec.decode(
        codec.encode(["a", "b"], kind=KIND_STREAM, created=10.0, expires=None, meta={"t": 1})
    )
    assert (entry.value, entry.kind, entry.created, entry.expires, entry.meta) == (
        ["a", "b"],
        KIND_STREAM,
        10.0,
        None,
        {"t": 1},
    )


class Usage(pydantic.BaseModel):
    prompt_tokens: int
    completion_tokens: int


class Completion(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(populate_by_name=True)
    id: str
    text: str = pydantic.Field(alias="content")
    usage: Usage


@dataclasses.dataclass
class Inner:
    tokens: int


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    inner: Inner
    tags: tuple[str, ...] = ()


class Mood(enum.Enum):
    HAPPY = 1


class Pair(NamedTuple):
    a: int
    b: str


class TestTypedResults:
    def test_pydantic_model_restores_to_its_class(self) -> None:
        """A pydantic model named in the annotation comes back as the same class, nested models too."""
        value = Completion(id="1", content="hi", usage=Usage(prompt_tokens=1, completion_tokens=2))
        out = roundtrip(value, Codec(restorable_types(Completion | None)))
        assert type(out) is Completion and out == value and type(out.usage) is Usage

    def test_dataclass_tree_restores(self) -> None:
        """A dataclass and the dataclasses its fields name are restored."""
        value = Answer("x", Inner(3), ("a",))
        out = roundtrip(value, Codec(restorable_types(list[Answer])))
        assert out == value and type(out.inner) is Inner and type(out.tags) is tuple

    def test_enum_and_namedtuple_restore(self) -> None:
        """Enums and named tuples named in the annotation are restored."""
        codec = Codec(restorable_types(tuple[Mood, Pair]))
        assert roundtrip((Mood.HAPPY, Pair(1, "x")), codec) == (Mood.HAPPY, Pair(1, "x"))
        assert type(roundtrip(Pair(1, "x"), codec)) is Pair

    def test_unannotated_class_is_not_stored(self) -> None:
        """A model the function does not declare cannot be encoded, and the error says how to allow it."""
        with pytest.raises(CodecError, match="register_type"):
            Codec().encode(Usage(prompt_tokens=1, completion_tokens=1), created=0.0, expires=None)

    def test_register_type_allows_a_class(self) -> None:
        """register_type() lets any codec restore the class."""

        @dataclasses.dataclass
        class Registered:
            x: int

        memollm.register_type(Registered)
        assert roundtrip(Registered(1)) == Registered(1)

    def test_register_type_refuses_other_classes(self) -> None:
        """register_type() only takes classes the codec knows how to rebuild."""
        with pytest.raises(TypeError, match="dataclass"):
            memollm.register_type(OrderedDict)

    def test_class_names_in_bytes_are_never_imported(self) -> None:
        """An entry naming a class this codec was not told about is refused, and nothing is imported."""
        allowed = Codec(restorable_types(Answer))
        data = allowed.encode(Answer("x", Inner(1)), created=0.0, expires=None)
        forged = data.replace(b"tests.test_codec.Answer", b"zzz_never_imported.Answ")
        before = set(sys.modules)
        with pytest.raises(CodecError, match="may not restore"):
            allowed.decode(forged)
        with pytest.raises(CodecError, match="may not restore"):
            Codec().decode(data)
        assert set(sys.modules) == before

    def test_changed_class_is_a_decode_error(self) -> None:
        """If a class no longer accepts the stored fields, decoding fails cleanly (a miss)."""
        codec = Codec(restorable_types(Inner))
        data = codec.encode(Inner(1), created=0.0, expires=None).replace(b"tokens", b"tokenz")
        with pytest.raises(CodecError, match="cannot restore"):
            codec.decode(data)

    def test_builtin_subclasses_are_stored_as_builtins(self) -> None:
        """OrderedDict, str subclasses and bytearray are stored as their plain built-in."""
        assert roundtrip(OrderedDict(a=1)) == {"a": 1}
        assert type(roundtrip(OrderedDict(a=1))) is dict
        assert roundtrip(bytearray(b"x")) == b"x"

    def test_unsupported_values_are_refused(self) -> None:
        """A value the codec cannot store raises CodecError naming its type."""
        with pytest.raises(CodecError, match="object"):
            Codec().encode(object(), created=0.0, expires=None)


class TestBadBytes:
    def test_oversized_entry_is_refused_before_decoding(self) -> None:
        """Entries above max_bytes are refused without being unpacked."""
        codec = Codec(max_bytes=100)
        with pytest.raises(CodecError, match="above the limit"):
            codec.decode(b"\x00" * 101)

    def test_oversized_result_is_not_encoded(self) -> None:
        """Results whose encoding is above max_bytes are refused."""
        with pytest.raises(CodecError, match="above the limit"):
            Codec(max_bytes=100).encode("x" * 200, created=0.0, expires=None)

    def test_deep_nesting_is_refused(self) -> None:
        """Absurdly nested input is a CodecError, not a crash."""
        with pytest.raises(CodecError):
            Codec().decode(b"\x91" * 100_000 + b"\xc0")

    def test_huge_declared_lengths_are_refused(self) -> None:
        """A header declaring a 4 GB string in a few bytes is refused without allocating it."""
        with pytest.raises(CodecError):
            Codec().decode(b"\x96\x01\x00\xcb" + b"\x00" * 8 + b"\xc0\x80\xdb\xff\xff\xff\xff")

    @pytest.mark.parametrize(
        "envelope",
        [
            [1, 0, 1.0],
            [1, 7, 1.0, None, {}, "x"],
            [1, 0, "now", None, {}, "x"],
            [1, 0, 1.0, "later", {}, "x"],
            [1, 0, 1.0, None, [], "x"],
            {"not": "a list"},
        ],
        ids=["short", "bad-kind", "bad-created", "bad-expires", "bad-meta", "not-a-list"],
    )
    def test_malformed_envelopes(self, envelope: object) -> None:
        """Envelopes with wrong fields are CodecErrors."""
        with pytest.raises(CodecError):
            Codec().decode(msgpack.packb(envelope))

    def test_unknown_format_is_incompatible(self) -> None:
        """An envelope of another format version is reported as incompatible, not corrupt."""
        with pytest.raises(IncompatibleEntryError):
            Codec().decode(msgpack.packb([99, 0, 1.0, None, {}, "x"]))


def test_package_has_no_pickle() -> None:
    """No module of the package imports pickle."""
    from pathlib import Path

    root = Path(memollm.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "from pickle" not in text, path
