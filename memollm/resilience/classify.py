"""What kind of failure an exception from a model API is, recognised by duck typing.

Works on the exceptions of the openai SDK, httpx, requests and aiohttp without
importing any of them: by HTTP status (``status_code``, ``status``,
``response.status_code``), by error code (``code``, ``body["error"]["code"]``) and
by the names of the exception's classes.
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["Failure", "classify", "retry_after", "status_of"]


class Failure(enum.Enum):
    """How to react to a failed call."""

    TRANSIENT = "transient"  # timeouts, connection errors, 500/502/503/504: retry, same key
    RATE_LIMITED = "rate-limited"  # 429: the key cools down; retry (another key at once)
    QUOTA = "quota"  # out of credit or quota: the key is spent; another key at once
    AUTH = "auth"  # 401/403: the key is disabled
    FATAL = "fatal"  # anything else (400, 404, 422, a bug): never retried


_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_TIMEOUT_NAMES = frozenset(
    {"TimeoutError", "TimeoutException", "Timeout", "APITimeoutError", "ReadTimeout", "ConnectTimeout",
     "WriteTimeout", "PoolTimeout", "ServerTimeoutError"}
)  # fmt: skip
_CONNECTION_NAMES = frozenset(
    {"ConnectionError", "ConnectError", "APIConnectionError", "NetworkError", "RemoteProtocolError",
     "ReadError", "WriteError", "ProtocolError", "ClientConnectionError", "ServerDisconnectedError",
     "ChunkedEncodingError"}
)  # fmt: skip
_QUOTA_MARKERS = (
    "insufficient_quota", "insufficient quota", "insufficient balance", "insufficient_balance",
    "quota exceeded", "exceeded your current quota", "billing_hard_limit", "credit balance",
)  # fmt: skip


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, if any."""
    for candidate in (
        getattr(exc, "status_code", None),
        getattr(exc, "status", None),
        getattr(getattr(exc, "response", None), "status_code", None),
        getattr(getattr(exc, "response", None), "status", None),
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool) and 100 <= candidate < 600:
            return candidate
    return None


def _code_and_text(exc: BaseException) -> str:
    parts = [str(getattr(exc, "code", "") or ""), str(getattr(exc, "type", "") or "")]
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            parts += [str(err.get("code", "")), str(err.get("type", "")), str(err.get("message", ""))]
    parts.append(str(exc)[:500])
    return " ".join(parts).lower()


def classify(exc: BaseException) -> Failure:  # noqa: PLR0911 - one return per kind of failure
    """Say what kind of failure ``exc`` is."""
    status = status_of(exc)
    if status is not None:
        if status == 402 or (status in (403, 429) and _is_quota(exc)):
            return Failure.QUOTA
        if status == 429:
            return Failure.RATE_LIMITED
        if status in (401, 403):
            return Failure.AUTH
        return Failure.TRANSIENT if status in _TRANSIENT_STATUS else Failure.FATAL
    if _is_quota(exc):
        return Failure.QUOTA
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TIMEOUT_NAMES or names & _CONNECTION_NAMES:
        return Failure.TRANSIENT
    return Failure.FATAL


def _is_quota(exc: BaseException) -> bool:
    text = _code_and_text(exc)
    return any(marker in text for marker in _QUOTA_MARKERS)


def retry_after(exc: BaseException, *, now: float | None = None) -> float | None:  # noqa: PLR0911
    """Seconds the server asked to wait, if it said.

    Reads ``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP date.
    """
    headers: Any = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None or not hasattr(headers, "get"):
        return None
    try:
        ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after") or headers.get("Retry-After")
    except (TypeError, ValueError):
        return None
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
