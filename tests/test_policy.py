from __future__ import annotations

from datetime import timedelta

import pytest

from memollm import ConfigError, Policy
from memollm.backends import MemoryBackend


def test_defaults() -> None:
    """The default policy caches in memory for an hour, sampled calls included."""
    p = Policy()
    assert p.ttl == 3600.0
    assert p.tiers == ("memory",)
    assert p.sampled == "cache"
    assert p.strict is False


def test_timedelta_ttl_becomes_seconds() -> None:
    """A timedelta TTL is normalised to seconds."""
    assert Policy(ttl=timedelta(minutes=10)).ttl_seconds == 600.0


def test_normalises_collections() -> None:
    """The ignore list becomes a frozenset and a single tier name a tuple."""
    p = Policy(ignore=["client", "client"], tiers="memory")
    assert p.ignore == frozenset({"client"})
    assert p.tiers == ("memory",)


def test_accepts_backend_objects() -> None:
    """A backend object can stand in for a tier name."""
    backend = MemoryBackend()
    assert Policy(tiers=[backend]).tiers == (backend,)


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"ttl": -1}, "-1"),
        ({"ttl": 0}, "0"),
        ({"ttl": float("inf")}, "inf"),
        ({"ttl": "600"}, "'600'"),
        ({"ttl": True}, "True"),
        ({"namespace": "has space"}, "'has space'"),
        ({"namespace": "a:b"}, "'a:b'"),
        ({"tiers": []}, "empty"),
        ({"tiers": ["Memory!"]}, "'Memory!'"),
        ({"tiers": [object()]}, "neither a tier name nor a backend"),
        ({"semantic": 1.5}, "1.5"),
        ({"semantic": "yes"}, "'yes'"),
        ({"sampled": "maybe"}, "'maybe'"),
        ({"strict": "yes"}, "'yes'"),
        ({"version": 1.5}, "1.5"),
        ({"ignore": [1]}, "[1]"),
        ({"cache_if": 3}, "3"),
        ({"max_entry_bytes": 0}, "0"),
    ],
    ids=[
        "negative-ttl",
        "zero-ttl",
        "infinite-ttl",
        "string-ttl",
        "bool-ttl",
        "space-namespace",
        "colon-namespace",
        "no-tiers",
        "bad-tier-name",
        "bad-tier-object",
        "semantic-above-1",
        "semantic-word",
        "sampled-word",
        "strict-string",
        "float-version",
        "ignore-int",
        "cache_if-not-callable",
        "zero-max-bytes",
    ],
)
def test_bad_values_are_named(settings: dict[str, object], fragment: str) -> None:
    """A bad value raises ConfigError (a ValueError) whose message shows the value."""
    with pytest.raises(ConfigError) as info:
        Policy(**settings)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_replace_validates() -> None:
    """replace() returns a validated copy and rejects unknown settings by name."""
    assert Policy().replace(ttl=5).ttl == 5.0
    with pytest.raises(ConfigError, match="ttll"):
        Policy().replace(ttll=5)
    with pytest.raises(ConfigError, match="-5"):
        Policy().replace(ttl=-5)


def test_parse_settings_converts_strings() -> None:
    """Settings from a file or the environment are converted from text."""
    parsed = Policy.parse_settings(
        {"ttl": "60", "strict": "yes", "tiers": "memory, disk", "semantic": "shadow", "version": "none"},
        source="env",
    )
    assert parsed == {
        "ttl": 60.0,
        "strict": True,
        "tiers": ("memory", "disk"),
        "semantic": "shadow",
        "version": None,
    }


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"ttll": "1"}, "unknown policy setting 'ttll'"),
        ({"cache_if": "x"}, "can only be set in Python"),
        ({"ttl": "soon"}, "bad value 'soon' for 'ttl'"),
        ({"strict": "perhaps"}, "bad value 'perhaps' for 'strict'"),
        ({"ttl": "-3"}, "-3"),
    ],
    ids=["unknown", "code-only", "not-a-number", "not-a-bool", "invalid-number"],
)
def test_parse_settings_errors_name_the_source(data: dict[str, object], fragment: str) -> None:
    """Errors in settings from outside the code name where they came from."""
    with pytest.raises(ConfigError) as info:
        Policy.parse_settings(data, source="memollm.toml")
    assert "memollm.toml" in str(info.value)
    assert fragment in str(info.value)
