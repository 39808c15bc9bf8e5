"""Cross-process single-flight locks as leases: held while the holder lives, lapsing soon after it dies.

A process that takes the lock for a key (``SET NX PX`` with a random token) renews it every
third of its lease while its call runs. If the process is killed, nobody renews it: the
lease lapses within ``LEASE`` seconds, and one of the processes waiting for the result takes
the lock over and makes the call. A live holder keeps its lock however long the call takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from typing import Any

from .._log import logger

__all__ = ["LEASE", "AsyncLease", "Lease", "atake", "take"]

LEASE = 3.0  # seconds a lock outlives its last renewal


def lease_of(lock_timeout: float) -> float:
    """The lease for a policy's ``lock_timeout`` (never longer than the wait it bounds)."""
    return min(lock_timeout, LEASE)


class Lease:
    """A lock held by this thread's call, renewed by a daemon thread until :meth:`release`."""

    def __init__(self, tier: Any, key: str, token: str, seconds: float) -> None:
        self.tier, self.key, self.token, self.seconds = tier, key, token, seconds
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

    def __init__(self, tier: Any, key: str, token: str, seconds: float) -> None:
        self.tier, self.key, self.token, self.seconds = tier, key, token, seconds
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


def take(tier: Any, key: str, seconds: float) -> Lease | None:
    """The lock for ``key`` as a renewed :class:`Lease`, or None if another process holds it.

    Raises what the tier raises (the caller decides to call alone).
    """
    token = secrets.token_hex(16)
    if tier.call(lambda: tier.backend.lock(key, token, seconds)):
        return Lease(tier, key, token, seconds)
    return None


async def atake(tier: Any, key: str, seconds: float) -> AsyncLease | None:
    """Async :func:`take`."""
    token = secrets.token_hex(16)
    if await tier.acall(lambda: tier.backend.alock(key, token, seconds)):
        return AsyncLease(tier, key, token, seconds)
    return None
