"""SingleFlight: one call per key among threads or tasks; followers share its outcome or run it again."""

from __future__ import annotations

import asyncio
import threading

import pytest

from memollm.coalesce.threads import SingleFlight


def test_a_follower_shares_the_leaders_result() -> None:
    """Followers that arrive while the leader runs get its result, marked as not led."""
    flights, inside, release = SingleFlight(), threading.Event(), threading.Event()
    results: list[tuple[str, bool]] = []

    def slow() -> str:
        inside.set()
        release.wait(5)
        return "once"

    leader = threading.Thread(target=lambda: results.append(flights.run("k", slow)))
    leader.start()
    inside.wait(5)
    follower = threading.Thread(target=lambda: results.append(flights.run("k", lambda: "again")))
    follower.start()
    while flights.waiting("k") < 1:
        threading.Event().wait(0.005)  # until the follower waits on the flight
    release.set()
    leader.join(5)
    follower.join(5)
    assert sorted(results) == [("once", False), ("once", True)]
    assert flights.waiting("k") == 0


def test_a_leader_gone_without_an_outcome_lets_a_follower_run() -> None:
    """A leader stopped by a BaseException (not an error of the call) leaves followers to call themselves."""
    flights, inside, release = SingleFlight(), threading.Event(), threading.Event()
    results: list[tuple[str, bool]] = []

    def interrupted() -> str:
        inside.set()
        release.wait(5)
        raise SystemExit  # the thread is told to stop

    def lead() -> None:
        with pytest.raises(SystemExit):
            flights.run("k", interrupted)

    leader = threading.Thread(target=lead)
    leader.start()
    inside.wait(5)
    follower = threading.Thread(target=lambda: results.append(flights.run("k", lambda: "own")))
    follower.start()
    while flights.waiting("k") < 1:
        threading.Event().wait(0.005)
    release.set()
    leader.join(5)
    follower.join(5)
    assert results == [("own", True)]


async def test_a_cancelled_async_leader_lets_a_follower_run() -> None:
    """A cancelled leader task leaves its followers to make the call themselves."""
    flights, inside = SingleFlight(), asyncio.Event()

    async def hang() -> str:
        inside.set()
        await asyncio.Event().wait()
        return "never"

    async def own() -> str:
        return "own"

    leader = asyncio.create_task(flights.arun("k", hang))
    await inside.wait()
    follower = asyncio.create_task(flights.arun("k", own))
    await asyncio.sleep(0)  # the follower awaits the shared future
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await follower == ("own", True)


async def test_an_async_leaders_error_reaches_its_followers() -> None:
    """An exception of the call is every caller's, led or followed."""
    flights, inside, release = SingleFlight(), asyncio.Event(), asyncio.Event()

    async def failing() -> str:
        inside.set()
        await release.wait()
        raise ValueError("upstream said no")

    leader = asyncio.create_task(flights.arun("k", failing))
    await inside.wait()
    follower = asyncio.create_task(flights.arun("k", failing))
    await asyncio.sleep(0)
    release.set()
    for task in (leader, follower):
        with pytest.raises(ValueError, match="upstream said no"):
            await task
