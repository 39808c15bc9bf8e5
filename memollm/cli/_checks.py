"""Checks a command makes before it starts: every problem said in one line, before any banner."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

__all__ = ["port_problem", "redis_problem", "sqlite_problem"]


def sqlite_problem(path: str | Path) -> str | None:
    """Why the SQLite file cannot be used (None if it can): opened and its table made, as a tier would.

    A folder that does not exist is a problem here, though the tier would make it: a path typed
    on the command line into a folder that is not there is more often a slip than a wish.
    """
    from ..backends.sqlite import SQLiteBackend

    folder = Path(path).parent
    if not folder.exists():
        return f"the folder {folder} does not exist (make it, or choose a file in a folder that does)"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        SQLiteBackend(path).get("memollm:start-up-check")
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"cannot open {path} as a cache file: {type(exc).__name__}: {exc}"
    return None


def redis_problem(backend: Any) -> str | None:
    """Why the Redis server does not answer (None if it does)."""
    try:
        backend.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (None if it can), checked by binding it as the server would."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"{host} is not an address to listen on: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{host}:{port} is in use (another server listens there); choose another --port"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
