"""Hypothesis strategies shared by the key and codec tests."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)

hashable = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.binary(max_size=8)),
    lambda inner: st.tuples(inner, inner),
    max_leaves=4,
)

values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashable, inner, max_size=4),
        st.frozensets(hashable, max_size=4),
    ),
    max_leaves=12,
)


def rebuild(v: Any) -> Any:
    """An equal copy made of new objects, with every dict's items in reverse order."""
    if isinstance(v, str):
        return "".join(list(v))
    if isinstance(v, bytes):
        return bytes(bytearray(v))
    if isinstance(v, list):
        return [rebuild(x) for x in v]
    if isinstance(v, tuple):
        return tuple(rebuild(x) for x in v)
    if isinstance(v, dict):
        return {rebuild(k): rebuild(x) for k, x in reversed(list(v.items()))}
    if isinstance(v, frozenset):
        return frozenset(rebuild(x) for x in v)
    if isinstance(v, float):
        return math.nan if math.isnan(v) else float(v)
    return v


def same(a: Any, b: Any) -> bool:
    """Equal with types: 1, 1.0 and True differ; NaN equals NaN; -0.0 equals 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for k, x in a.items():
            match = [kb for kb in b if same(k, kb)]
            if len(match) != 1 or not same(x, b[match[0]]):
                return False
        return True
    if isinstance(a, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)
