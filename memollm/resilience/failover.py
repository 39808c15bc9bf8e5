"""One call's walk over a key pool, as steps: which key next, and what a failure means.

Sans-IO: the retry loops (sync and async) and the proxy drive the same steps, each with
its own I/O.
"""

from __future__ import annotations

from .classify import Failure, classify, retry_after
from .keypool import KeyPool

__all__ = ["KEY_TROUBLE", "Failover"]

# Failures that are the key's, not the call's: the same call goes out at once with another key.
KEY_TROUBLE = frozenset({Failure.RATE_LIMITED, Failure.QUOTA, Failure.AUTH})


class Failover:
    """The keys one call has tried; ``key()`` raises AllKeysExhaustedError when none is left."""

    __slots__ = ("keys", "tried")

    def __init__(self, keys: KeyPool) -> None:
        self.keys = keys
        self.tried: list[str] = []

    def key(self) -> str:
        """The next key to try: the pool's choice among those this call has not set aside."""
        return self.keys.acquire(exclude=self.tried)

    def failed(self, key: str, exc: BaseException) -> bool:
        """Report a failed attempt; True if the call should move on to another key at once."""
        failure = classify(exc)
        self.keys.report(key, failure, retry_after(exc))
        if failure in KEY_TROUBLE:
            self.tried.append(key)
            return True
        return False

    def ok(self, key: str) -> None:
        """Report an attempt that the upstream answered."""
        self.keys.report_ok(key)
