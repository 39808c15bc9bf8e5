"""Fail-open for tiers: a circuit breaker per backend, and the guard that applies it.

A backend that keeps failing (refused connections, timeouts, OOM, READONLY) is
skipped without being called once its breaker opens. After a backoff one call
probes it (half-open); success closes the breaker, failure reopens it with a
longer backoff. So a Redis that comes back is used again automatically, and a
Redis that is down at start-up never stops the application from starting.
State changes are logged once each, not once per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._log import logger
from ..errors import TierUnavailableError

if TYPE_CHECKING:
    from . import Backend

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "Guarded"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

T = TypeVar("T")


class CircuitBreaker:
    """Counts consecutive failures of one tier and decides whether to call it."""

    def __init__(
        self,
        *,
        failures: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or backoff <= 0 or max_backoff < backoff:
            raise ValueError(
                f"need failures >= 1 and 0 < backoff <= max_backoff, got "
                f"failures={failures!r}, backoff={backoff!r}, max_backoff={max_backoff!r}"
            )
        self.failures = failures
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self._consecutive = 0
        self._wait = backoff
        self._retry_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether to call the tier now (while open, only one probe once the backoff has passed)."""
        if self.state == CLOSED:
            return True
        with self._lock:
            if self.state == CLOSED:
                return True
            if self._probing or self._clock() < self._retry_at:
                return False
            self.state = HALF_OPEN
            self._probing = True
            return True

    def success(self, name: str) -> None:
        """Record a call that worked."""
        if self.state == CLOSED and not self._consecutive:
            return
        with self._lock:
            recovered = self.state != CLOSED
            self.state = CLOSED
            self._consecutive = 0
            self._wait = self.backoff
            self._probing = False
        if recovered:
            logger.warning("cache tier %r is back; using it again", name)

    def failure(self, name: str, exc: BaseException) -> None:
        """Record a call that failed; open the breaker at the threshold or after a failed probe."""
        with self._lock:
            self._consecutive += 1
            self._probing = False
            if self.state == HALF_OPEN:
                self._wait = min(self._wait * 2, self.max_backoff)
            elif self.state == OPEN or self._consecutive < self.failures:
                return
            opened = self.state == CLOSED
            self.state = OPEN
            self._retry_at = self._clock() + self._wait
            wait = self._wait
        if opened:
            logger.warning(
                "cache tier %r failed %d times in a row (%r); skipping it, next try in %.2fs",
                name,
                self._consecutive,
                exc,
                wait,
            )
        else:
            logger.debug("cache tier %r still failing (%r); next try in %.2fs", name, exc, wait)


class Guarded:
    """A backend behind a circuit breaker: same methods, skipped while the breaker is open."""

    def __init__(
        self, backend: Any, breaker: CircuitBreaker | None = None, *, name: str | None = None
    ) -> None:
        self.backend: Backend = backend
        self.name: str = name or backend.name
        self.breaker = breaker or CircuitBreaker()

    def __repr__(self) -> str:
        return f"Guarded({self.backend!r}, {self.breaker.state})"

    # async: begin
    async def acall(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` (an operation on the backend) through the breaker."""
        breaker = self.breaker
        if not breaker.allow():
            raise TierUnavailableError(f"cache tier {self.name!r} is unavailable (circuit open)")
        try:
            result = await op()
        except Exception as exc:
            breaker.failure(self.name, exc)
            raise
        breaker.success(self.name)
        return result

    async def aget(self, key: str) -> bytes | None:
        """Guarded :meth:`Backend.aget`."""
        breaker = self.breaker
        if breaker.state != CLOSED or breaker._consecutive:
            return await self.acall(lambda: self.backend.aget(key))
        # The hit path of every shared tier: a healthy breaker has nothing to allow or record
        # on success, so the read goes straight to the backend.
        try:
            return await self.backend.aget(key)
        except Exception as exc:
            breaker.failure(self.name, exc)
            raise

    async def aset(self, key: str, value: bytes, ttl: float | None) -> None:
        """Guarded :meth:`Backend.aset`."""
        await self.acall(lambda: self.backend.aset(key, value, ttl))

    async def adelete(self, key: str) -> None:
        """Guarded :meth:`Backend.adelete`."""
        await self.acall(lambda: self.backend.adelete(key))

    async def aclear(self, prefix: str = "") -> int:
        """Guarded :meth:`Backend.aclear`."""
        return await self.acall(lambda: self.backend.aclear(prefix))

    # async: end

    # sync: generated by scripts/unasync.py from the block above; edit that, then run it
    def call(self, op: Callable[[], T]) -> T:
        """Run ``op`` (an operation on the backend) through the breaker."""
        breaker = self.breaker
        if not breaker.allow():
            raise TierUnavailableError(f"cache tier {self.name!r} is unavailable (circuit open)")
        try:
            result = op()
        except Exception as exc:
            breaker.failure(self.name, exc)
            raise
        breaker.success(self.name)
        return result

    def get(self, key: str) -> bytes | None:
        """Guarded :meth:`Backend.get`."""
        breaker = self.breaker
        if breaker.state != CLOSED or breaker._consecutive:
            return self.call(lambda: self.backend.get(key))
        # The hit path of every shared tier: a healthy breaker has nothing to allow or record
        # on success, so the read goes straight to the backend.
        try:
            return self.backend.get(key)
        except Exception as exc:
            breaker.failure(self.name, exc)
            raise

    def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Guarded :meth:`Backend.set`."""
        self.call(lambda: self.backend.set(key, value, ttl))

    def delete(self, key: str) -> None:
        """Guarded :meth:`Backend.delete`."""
        self.call(lambda: self.backend.delete(key))

    def clear(self, prefix: str = "") -> int:
        """Guarded :meth:`Backend.clear`."""
        return self.call(lambda: self.backend.clear(prefix))

    # sync: end
