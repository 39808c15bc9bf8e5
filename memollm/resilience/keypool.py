"""A pool of API keys: round robin over the healthy ones, failover on rate limits, quota and auth errors."""

from __future__ import annotations

import contextvars
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .._log import warn_limited
from ..errors import AllKeysExhaustedError, ConfigError
from .classify import Failure

__all__ = ["KeyPool", "KeyStatus", "current_key", "fingerprint"]

logger = logging.getLogger("memollm")

OK, COOLING, SPENT, DISABLED = "ok", "cooling", "spent", "disabled"

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("memollm_key", default=None)


def current_key() -> str | None:
    """The API key chosen for the call in progress (``None`` outside a pooled call)."""
    return _current.get()


@contextmanager
def using_key(key: str | None) -> Iterator[None]:
    """Make ``key`` the current key inside the block."""
    token = _current.set(key)
    try:
        yield
    finally:
        _current.reset(token)


def fingerprint(key: str) -> str:
    """A short, safe name for a key: the first 8 hex digits of its sha256."""
    return "key#" + hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What the pool knows of one key (never the key itself)."""

    fingerprint: str
    state: str
    reason: str
    usable_in: float | None


class _Key:
    __slots__ = ("fingerprint", "key", "reason", "state", "strikes", "until")

    def __init__(self, key: str) -> None:
        self.key = key
        self.fingerprint = fingerprint(key)
        self.state = OK
        self.reason = "healthy"
        self.until = 0.0
        self.strikes = 0


def _in_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="memollm-balance-check", daemon=True).start()


class KeyPool:
    """API keys used in turn; a key that is rate limited, spent or refused is set aside.

    - 429: the key cools down for the server's Retry-After, or a backoff that doubles per
      consecutive 429 (``cooldown`` up to ``max_cooldown``); the call moves to the next key.
    - quota or insufficient balance: the key is spent for ``spent_cooldown`` seconds, or
      until ``balance_check(key)`` says it has credit again.
    - 401/403: the key is disabled.

    ``balance_check`` runs every ``check_every`` seconds, on a background thread, never
    per call. Keys are never logged or shown: only their fingerprints are.
    """

    def __init__(
        self,
        keys: Iterable[str],
        *,
        cooldown: float = 1.0,
        max_cooldown: float = 60.0,
        spent_cooldown: float = 600.0,
        balance_check: Callable[[str], object] | None = None,
        check_every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        run_check: Callable[[Callable[[], None]], None] = _in_thread,
    ) -> None:
        unique = list(dict.fromkeys(k.strip() for k in keys if k and k.strip()))
        if not unique:
            raise ConfigError("a KeyPool needs at least one non-empty key")
        self._keys = [_Key(k) for k in unique]
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.spent_cooldown = spent_cooldown
        self.balance_check = balance_check
        self.check_every = check_every
        self._clock = clock
        self._run_check = run_check
        self._next_check = 0.0 if balance_check else float("inf")
        self._lock = threading.Lock()
        self._turn = 0

    @classmethod
    def from_env(cls, variable: str = "MEMOLLM_API_KEYS", **options: object) -> KeyPool:
        """A pool of the comma-separated keys in an environment variable."""
        raw = os.environ.get(variable, "")
        if not raw.strip():
            raise ConfigError(f"{variable} is not set: it should hold comma-separated API keys")
        return cls(raw.split(","), **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"KeyPool({', '.join(f'{k.fingerprint}={k.state}' for k in self._keys)})"

    def __len__(self) -> int:
        return len(self._keys)

    def status(self) -> list[KeyStatus]:
        """Each key's fingerprint, state, reason and seconds until usable."""
        now = self._clock()
        with self._lock:
            return [self._status(k, now) for k in self._keys]

    def _status(self, k: _Key, now: float) -> KeyStatus:
        if k.state == DISABLED:
            return KeyStatus(k.fingerprint, k.state, k.reason, None)
        if k.state in (COOLING, SPENT) and k.until > now:
            return KeyStatus(k.fingerprint, k.state, k.reason, k.until - now)
        return KeyStatus(k.fingerprint, OK, "healthy", 0.0)

    def acquire(self, exclude: Iterable[str] = ()) -> str:
        """The next usable key in turn, skipping ``exclude``; AllKeysExhaustedError if none."""
        now = self._clock()
        self._maybe_check(now)
        skip = set(exclude)
        with self._lock:
            n = len(self._keys)
            for i in range(n):
                k = self._keys[(self._turn + i) % n]
                if k.key in skip or k.state == DISABLED:
                    continue
                if k.state in (COOLING, SPENT) and k.until > now:
                    continue
                if k.state != OK:
                    k.state, k.reason = OK, "healthy"
                self._turn = (self._turn + i + 1) % n
                return k.key
            statuses = [self._status(k, now) for k in self._keys]
        waits = [s.usable_in for s in statuses if s.state == COOLING and s.usable_in is not None]
        if any(s.state == OK for s in statuses):  # usable keys, all tried in this call: soon
            waits.append(self.cooldown)
        raise AllKeysExhaustedError(
            [(s.fingerprint, s.state, s.reason) for s in statuses], min(waits, default=None)
        )

    def report(self, key: str, failure: Failure, retry_after: float | None = None) -> None:
        """Record what happened to a call made with ``key``."""
        now = self._clock()
        with self._lock:
            k = next((k for k in self._keys if k.key == key), None)
            if k is None:
                return
            if failure is Failure.RATE_LIMITED:
                k.strikes += 1
                wait = (
                    retry_after
                    if retry_after is not None
                    else min(self.cooldown * 2 ** (k.strikes - 1), self.max_cooldown)
                )
                k.state, k.reason, k.until = COOLING, "rate limited (429)", now + wait
            elif failure is Failure.QUOTA:
                k.state, k.reason, k.until = SPENT, "out of quota or credit", now + self.spent_cooldown
            elif failure is Failure.AUTH:
                k.state, k.reason = DISABLED, "refused (401/403)"
            else:
                return
            state, fp = k.state, k.fingerprint
        logger.warning("API key %s set aside: %s", fp, state)

    def report_ok(self, key: str) -> None:
        """Record a call that worked: the key's 429 backoff starts over."""
        with self._lock:
            for k in self._keys:
                if k.key == key:
                    k.strikes = 0

    def enable(self, fingerprint_or_key: str) -> None:
        """Put a disabled or spent key back in service."""
        with self._lock:
            for k in self._keys:
                if fingerprint_or_key in (k.key, k.fingerprint):
                    k.state, k.reason, k.until, k.strikes = OK, "healthy", 0.0, 0

    def check_balances(self) -> None:
        """Run ``balance_check`` on every key not disabled, now."""
        check = self.balance_check
        if check is None:
            return
        for k in list(self._keys):
            if k.state == DISABLED:
                continue
            try:
                has_credit = bool(check(k.key))
            except Exception as exc:  # noqa: BLE001 - a failing check must not take keys down
                warn_limited(
                    ("balance", k.fingerprint),
                    "balance check of %s failed: %s",
                    k.fingerprint,
                    type(exc).__name__,
                )
                continue
            with self._lock:
                if has_credit and k.state == SPENT:
                    k.state, k.reason, k.until = OK, "healthy", 0.0
                elif not has_credit:
                    k.state, k.reason, k.until = (
                        SPENT,
                        "balance check: no credit",
                        self._clock() + self.check_every,
                    )

    def _maybe_check(self, now: float) -> None:
        if now < self._next_check:
            return
        with self._lock:
            if now < self._next_check:
                return
            self._next_check = now + self.check_every
        self._run_check(self.check_balances)
