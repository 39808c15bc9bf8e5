"""Single-flight across processes: a lock in the shared tier, held as a lease.

A process that takes the lock for a key (``SET NX PX`` with a random token) renews it every
third of its lease while its call runs. The others poll the shared tier for its result. If
the holder is killed, nobody renews its lease: it lapses within ``LEASE`` seconds, and one of
the waiting processes takes the lock over and makes the call. A live holder keeps its lock
however long the call takes; waiters give up after ``lock_timeout`` and call themselves.

A holder that stalls past its lease (a pause, a long GC, SIGSTOP) may wake after another
process took over and stored its answer. Each lease therefore carries a fencing token, one
more than the last holder's, and the answer made under it is stored only if no later token
is there: the late holder's answer reaches its own caller, never the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._log import logger
from ..backends.capabilities import Fencing

__all__ = ["LEASE", "AsyncLease", "Lease", "Waited", "alead_or_wait", "atake", "lead_or_wait", "take"]

LEASE = 3.0  # seconds a lock outlives its last renewal
POLL = 0.05  # seconds between a waiter's looks at the shared tier
T = TypeVar("T")
L = TypeVar("L")


def lease_of(lock_timeout: float) -> float:
    """The lease for a policy's ``lock_timeout`` (never longer than the wait it bounds)."""
    return min(lock_timeout, LEASE)


class Lease:
    """A lock held by this thread's call, renewed by a daemon thread until :meth:`release`.

    ``fence``: the lease's fencing token (None where the tier cannot fence a write).
    """

    def __init__(self, tier: Any, key: str, token: str, seconds: float, fence: int | None = None) -> None:
        self.tier, self.key, self.token, self.seconds = tier, key, token, seconds
        self.fence = fence
        self._done = threading.Event()
        threading.Thread(target=self._renew, name="memollm-lease", daemon=True).start()

    def _renew(self) -> None:
        backend = self.tier.backend
        while not self._done.wait(self.seconds / 3):
            try:
                if not self.tier.call(lambda: backend.renew(self.key, self.token, self.seconds)):
                    return  # lost (it lapsed while this process stalled): another holds it now
            except Exception as exc:  # noqa: BLE001 - a failed renewal only shortens the lease
                logger.debug("renewing a single-flight lease failed: %r", exc)

    def release(self) -> None:
        """Stop renewing and delete the lock if it is still ours."""
        self._done.set()
        with contextlib.suppress(Exception):  # it lapses by itself
            self.tier.call(lambda: self.tier.backend.unlock(self.key, self.token))


class AsyncLease:
    """:class:`Lease` for async callers: renewed by a task on the running loop."""

    def __init__(self, tier: Any, key: str, token: str, seconds: float, fence: int | None = None) -> None:
        self.tier, self.key, self.token, self.seconds = tier, key, token, seconds
        self.fence = fence
        self._task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        backend = self.tier.backend
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                if not await self.tier.acall(lambda: backend.arenew(self.key, self.token, self.seconds)):
                    return
            except Exception as exc:  # noqa: BLE001 - a failed renewal only shortens the lease
                logger.debug("renewing a single-flight lease failed: %r", exc)

    async def release(self) -> None:
        """Stop renewing and delete the lock if it is still ours."""
        self._task.cancel()
        with contextlib.suppress(Exception):
            await self.tier.acall(lambda: self.tier.backend.aunlock(self.key, self.token))


@dataclass(frozen=True, slots=True)
class Waited(Generic[L, T]):
    """How waiting for the cross-process lock ended: holding it, another's result, or neither."""

    lease: L | None  # the lock is ours: make the call, then release it
    found: T | None  # another process's result


# async: begin
async def atake(tier: Any, key: str, seconds: float) -> AsyncLease | None:
    """The lock for ``key`` as a renewed lease, or None if another process holds it.

    Raises what the tier raises (the caller decides to call alone).
    """
    token = secrets.token_hex(16)
    if not await tier.acall(lambda: tier.backend.alock(key, token, seconds)):
        return None
    fence = None
    if isinstance(tier.backend, Fencing):
        try:
            fence = await tier.acall(lambda: tier.backend.afence(key))
        except Exception as exc:  # noqa: BLE001 - without a token the answer is stored unfenced
            logger.debug("taking a fencing token failed: %r", exc)
    return AsyncLease(tier, key, token, seconds, fence)


async def alead_or_wait(
    tier: Any,
    key: str,
    lock_timeout: float,
    look: Callable[[], Awaitable[T | None]],
    *,
    clock: Callable[[], float] = time.monotonic,
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Waited[AsyncLease, T]:
    """Take the lock for ``key``, or wait for the holder's result (``look()`` reads it).

    Neither (both None) when ``lock_timeout`` passes on ``clock`` or the tier's breaker opens:
    call alone. A failure of the tier propagates: the caller counts it and calls alone.
    """
    seconds = lease_of(lock_timeout)
    deadline = clock() + lock_timeout
    while True:
        held = await atake(tier, key, seconds)
        if held is not None:
            # The lock was free: its last holder may have stored the result just before.
            found = await look()
            if found is None:
                return Waited(held, None)
            await held.release()
            return Waited(None, found)
        found = await look()
        if found is not None:
            return Waited(None, found)
        if clock() >= deadline or not tier.breaker.allow():
            return Waited(None, None)
        await asleep(POLL)


# async: end


# sync: generated by scripts/unasync.py from the block above; edit that, then run it
def take(tier: Any, key: str, seconds: float) -> Lease | None:
    """The lock for ``key`` as a renewed lease, or None if another process holds it.

    Raises what the tier raises (the caller decides to call alone).
    """
    token = secrets.token_hex(16)
    if not tier.call(lambda: tier.backend.lock(key, token, seconds)):
        return None
    fence = None
    if isinstance(tier.backend, Fencing):
        try:
            fence = tier.call(lambda: tier.backend.fence(key))
        except Exception as exc:  # noqa: BLE001 - without a token the answer is stored unfenced
            logger.debug("taking a fencing token failed: %r", exc)
    return Lease(tier, key, token, seconds, fence)


def lead_or_wait(
    tier: Any,
    key: str,
    lock_timeout: float,
    look: Callable[[], T | None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited[Lease, T]:
    """Take the lock for ``key``, or wait for the holder's result (``look()`` reads it).

    Neither (both None) when ``lock_timeout`` passes on ``clock`` or the tier's breaker opens:
    call alone. A failure of the tier propagates: the caller counts it and calls alone.
    """
    seconds = lease_of(lock_timeout)
    deadline = clock() + lock_timeout
    while True:
        held = take(tier, key, seconds)
        if held is not None:
            # The lock was free: its last holder may have stored the result just before.
            found = look()
            if found is None:
                return Waited(held, None)
            held.release()
            return Waited(None, found)
        found = look()
        if found is not None:
            return Waited(None, found)
        if clock() >= deadline or not tier.breaker.allow():
            return Waited(None, None)
        sleep(POLL)


# sync: end
