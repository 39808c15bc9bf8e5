"""Policy settings written as text (a TOML file, ``MEMOLLM_*`` variables) turned into values.

Only the conversion of one setting's text: ``Policy.parse_settings`` checks the names and
the values together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["CODE_ONLY", "convert"]

# Settings that hold code: never read from a file or the environment.
CODE_ONLY = frozenset({"cache_if", "key", "keys", "scope", "embedder", "verify", "usage", "answer_text"})


_TRUE = {"1", "true", "yes", "on"}


_FALSE = {"0", "false", "no", "off"}


def _semantic_setting(text: str) -> object:
    lowered = text.lower()
    if lowered == "shadow":
        return "shadow"
    if lowered in _TRUE | _FALSE:
        return _boolean(text)
    return float(text)


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected true/false")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


_CONVERTERS: dict[str, Callable[[str], object]] = {
    "ttl": float,
    "semantic": _semantic_setting,
    "max_entry_bytes": int,
    "strict": _boolean,
    "enabled": _boolean,
    "single_flight": _boolean,
    "distributed": _boolean,
    "tiers": _names,
    "ignore": _names,
    "retry": lambda t: _boolean(t) if t.lower() in _TRUE | _FALSE else int(t),
    "stale_ttl": float,
    "refresh_ahead": float,
    "lock_timeout": float,
    "semantic_top_k": int,
    "semantic_max_entries": int,
    "semantic_max_bytes": int,
    "semantic_index": str,
}


_NULLABLE = frozenset(
    {"ttl", "semantic", "version", "stale_ttl", "refresh_ahead", "key_param", "retry", "prompt_arg"}
)


def convert(name: str, raw: object) -> object:
    """The value of setting ``name`` written as ``raw`` (values that are not text pass as they are).

    Raises ValueError or TypeError for text that does not convert.
    """
    if not isinstance(raw, str):
        if name in ("tiers", "ignore") and isinstance(raw, Iterable):
            return tuple(raw)
        return raw
    text = raw.strip()
    if name in _NULLABLE and text.lower() in ("none", "null", "off", ""):
        return None
    return _CONVERTERS.get(name, str)(text)
