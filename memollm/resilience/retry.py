"""Retries (tenacity) and key failover around the upstream call."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from ..errors import AllKeysExhaustedError, ConfigError
from .classify import Failure, classify, retry_after
from .failover import Failover
from .keypool import KeyPool, using_key

__all__ = ["RetryPolicy", "acall", "call"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to retry transient failures: timeouts, connection errors, 429, 500, 502, 503, 504.

    Waits grow exponentially from ``initial`` with full jitter, up to ``max_wait``; a
    server's ``Retry-After`` replaces the computed wait. At most ``attempts`` calls are
    made, and no wait reaches past ``deadline`` seconds from the first call: a
    ``Retry-After`` longer than the time left ends the retries at once. 400, 401, 403,
    404 and 422 are never retried; the last exception propagates unchanged.
    ``sleep``, ``asleep``, ``clock`` and ``rng`` are injectable for tests.
    """

    attempts: int = 4
    deadline: float = 60.0
    initial: float = 0.5
    max_wait: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"retry attempts must be an int >= 1, got {self.attempts!r}")
        for name in ("deadline", "initial", "max_wait"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"retry {name} must be a positive number of seconds, got {value!r}")

    def _planned_wait(self, exc: BaseException, attempt: int) -> float:
        told = retry_after(exc)
        if told is None and isinstance(exc, AllKeysExhaustedError):
            told = exc.retry_after
        if told is not None:
            return told
        return self.rng.uniform(0, min(self.max_wait, self.initial * 2 ** (attempt - 1)))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, AllKeysExhaustedError):
        return exc.retry_after is not None
    return classify(exc) in (Failure.TRANSIENT, Failure.RATE_LIMITED)


def _controls(policy: RetryPolicy, on_retry: Callable[[], None]) -> dict[str, Any]:
    start = policy.clock()

    def planned(state: tenacity.RetryCallState) -> float | None:
        # The wait for this attempt, computed once: tenacity asks for it (wait) and we
        # need it to decide whether to stop; their order differs between versions.
        if getattr(state, "memollm_attempt", None) != state.attempt_number:
            exc = state.outcome.exception() if state.outcome else None
            plan = None
            if exc is not None and state.attempt_number < policy.attempts:
                wait = policy._planned_wait(exc, state.attempt_number)
                if wait <= policy.deadline - (policy.clock() - start):
                    plan = wait  # a wait past the deadline would be in vain: stop instead
            state.memollm_attempt = state.attempt_number  # type: ignore[attr-defined]
            state.memollm_wait = plan  # type: ignore[attr-defined]
        return state.memollm_wait  # type: ignore[attr-defined, no-any-return]

    def stop(state: tenacity.RetryCallState) -> bool:
        return planned(state) is None

    def wait(state: tenacity.RetryCallState) -> float:
        return planned(state) or 0.0

    def before_sleep(state: tenacity.RetryCallState) -> None:
        on_retry()

    return {
        "stop": stop,
        "wait": wait,
        "before_sleep": before_sleep,
        "retry": tenacity.retry_if_exception(_retryable),
        "reraise": True,  # the caller sees the API's own exception, never RetryError
    }


# async: begin
async def acall(
    fn: Callable[[str | None], Awaitable[T]],
    *,
    retry: RetryPolicy | None,
    keys: KeyPool | None,
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """Call ``fn(key)`` with key failover and retries."""

    async def attempt() -> T:
        if keys is None:
            return await fn(None)
        failover = Failover(keys)
        while True:
            key = failover.key()
            try:
                with using_key(key):
                    result = await fn(key)
            except Exception as exc:
                if failover.failed(key, exc):
                    continue
                raise
            failover.ok(key)
            return result

    if retry is None:
        return await attempt()
    return await tenacity.AsyncRetrying(sleep=retry.asleep, **_controls(retry, on_retry))(attempt)


# async: end


# sync: generated by scripts/unasync.py from the block above; edit that, then run it
def call(
    fn: Callable[[str | None], T],
    *,
    retry: RetryPolicy | None,
    keys: KeyPool | None,
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """Call ``fn(key)`` with key failover and retries."""

    def attempt() -> T:
        if keys is None:
            return fn(None)
        failover = Failover(keys)
        while True:
            key = failover.key()
            try:
                with using_key(key):
                    result = fn(key)
            except Exception as exc:
                if failover.failed(key, exc):
                    continue
                raise
            failover.ok(key)
            return result

    if retry is None:
        return attempt()
    return tenacity.Retrying(sleep=retry.sleep, **_controls(retry, on_retry))(attempt)


# sync: end
