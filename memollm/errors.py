"""Errors raised by memollm.

The hierarchy::

    MemollmError
    ├── ConfigError              a policy or configuration value is wrong (also ValueError)
    ├── UncacheableArgumentError an argument cannot be part of a cache key (also TypeError)
    ├── AllKeysExhaustedError    every key of a KeyPool is cooling down, spent or disabled
    ├── CodecError               a value cannot be encoded or a cached entry decoded (also ValueError)
    │   └── IncompatibleEntryError   the entry was written in a format this version does not know
    └── BackendError             a cache tier failed and the policy is strict
        └── TierUnavailableError a tier's circuit breaker is open: it is being skipped

Exceptions raised by the function being cached are never wrapped: they reach
the caller unchanged.
"""

from __future__ import annotations

__all__ = [
    "AllKeysExhaustedError",
    "BackendError",
    "CodecError",
    "ConfigError",
    "IncompatibleEntryError",
    "MemollmError",
    "TierUnavailableError",
    "UncacheableArgumentError",
]


class MemollmError(Exception):
    """Base class of every error memollm raises itself."""


class ConfigError(MemollmError, ValueError):
    """A policy or configuration value is invalid."""


class UncacheableArgumentError(MemollmError, TypeError):
    """An argument has a type that cannot be turned into a stable cache key."""

    def __init__(self, path: str, value: object, *, reason: str | None = None) -> None:
        if len(path) > 120:  # a deeply nested value: its start and end say enough
            path = f"{path[:60]}...{path[-40:]}"
        self.path = path
        self.type_name = _type_name(type(value))
        super().__init__(
            reason
            or f"argument {path!r} of type {self.type_name} cannot be part of a cache key; "
            f"leave it out with ignore=[...], give the type a __memollm_key__() method, "
            f"or pass key=... to build the key yourself"
        )


class AllKeysExhaustedError(MemollmError):
    """No key of the pool can be used now.

    ``keys`` lists each key's fingerprint (a sha256 prefix, never the key), state and
    reason; ``retry_after`` is the seconds until the first cooling key is usable again,
    or ``None`` if none will be by itself.
    """

    def __init__(self, keys: list[tuple[str, str, str]], retry_after: float | None) -> None:
        self.keys = keys
        self.retry_after = retry_after
        detail = "; ".join(f"{fp}: {state} ({reason})" for fp, state, reason in keys)
        later = "" if retry_after is None else f"; the first is usable again in {retry_after:.1f}s"
        super().__init__(f"all {len(keys)} API keys are unusable: {detail}{later}")


class CodecError(MemollmError, ValueError):
    """A value could not be encoded, or a cached entry could not be decoded."""


class IncompatibleEntryError(CodecError):
    """A cached entry uses an envelope format this version of memollm does not read."""


class BackendError(MemollmError):
    """A cache tier failed while the policy asked for ``strict=True``."""


def _type_name(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


class TierUnavailableError(BackendError):
    """A tier failed repeatedly and is skipped until its circuit breaker's next probe."""
