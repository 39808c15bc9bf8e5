"""Small helpers shared by the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition that depends on real time (a server-side TTL, a breaker's backoff)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def in_threads(work: Callable[[int], None], n: int = 8) -> list[BaseException]:
    """Run work(0) .. work(n - 1) in threads released together; return what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
