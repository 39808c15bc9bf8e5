from __future__ import annotations

import asyncio

import pytest

from memollm import TierUnavailableError
from memollm.backends import MemoryBackend
from memollm.backends.guard import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, Guarded
from memollm.testing import FakeClock


class Flaky(MemoryBackend):
    """A memory tier that fails while .down is set, and counts the calls that reach it."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.down:
            raise ConnectionError("refused")
        return super().get(key)

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)


def test_opens_after_consecutive_failures(clock: FakeClock) -> None:
    """The breaker opens at the threshold of consecutive failures; a success in between resets the count."""
    b = CircuitBreaker(failures=3, clock=clock)
    b.failure("t", OSError())
    b.failure("t", OSError())
    b.success("t")
    b.failure("t", OSError())
    b.failure("t", OSError())
    assert b.state == CLOSED
    b.failure("t", OSError())
    assert b.state == OPEN
    assert not b.allow()


def test_half_open_probe_then_close(clock: FakeClock) -> None:
    """After the backoff exactly one probe is allowed; its success closes the breaker."""
    b = CircuitBreaker(failures=1, backoff=1.0, clock=clock)
    b.failure("t", OSError())
    clock.advance(0.9)
    assert not b.allow()
    clock.advance(0.2)
    assert b.allow()
    assert b.state == HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.success("t")
    assert b.state == CLOSED
    assert b.allow()


def test_failed_probe_doubles_backoff_up_to_a_cap(clock: FakeClock) -> None:
    """Each failed probe doubles the wait, never beyond max_backoff."""
    b = CircuitBreaker(failures=1, backoff=1.0, max_backoff=3.0, clock=clock)
    b.failure("t", OSError())
    waits = []
    for _ in range(4):
        waited = 0.0
        while not b.allow():
            clock.advance(0.25)
            waited += 0.25
        waits.append(waited)
        b.failure("t", OSError())
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_invalid_settings() -> None:
    """Bad breaker settings name the values."""
    with pytest.raises(ValueError, match="failures=0"):
        CircuitBreaker(failures=0)


def test_guarded_skips_an_open_tier_and_logs_state_changes(
    clock: FakeClock, warnings_log: pytest.LogCaptureFixture
) -> None:
    """Once open, the tier is not called at all; opening and recovery are each logged once."""
    tier = Flaky()
    g = Guarded(tier, CircuitBreaker(failures=2, backoff=1.0, clock=clock))
    tier.down = True
    for _ in range(2):
        with pytest.raises(ConnectionError):
            g.get("k")
    for _ in range(50):
        with pytest.raises(TierUnavailableError):
            g.get("k")
    assert tier.calls == 2
    tier.down = False
    clock.advance(1.0)
    assert g.get("k") is None
    assert tier.calls == 3
    messages = [r.getMessage() for r in warnings_log.records]
    assert len(messages) == 2
    assert "failed 2 times in a row" in messages[0]
    assert "is back" in messages[1]


def test_guarded_async(clock: FakeClock) -> None:
    """The async face goes through the same breaker."""
    tier = Flaky()
    g = Guarded(tier, CircuitBreaker(failures=1, clock=clock))
    tier.down = True

    async def scenario() -> None:
        with pytest.raises(ConnectionError):
            await g.aget("k")
        with pytest.raises(TierUnavailableError):
            await g.aget("k")

    asyncio.run(scenario())
    assert tier.calls == 1


@pytest.mark.parametrize("face", ["sync", "async"])
def test_only_consecutive_read_failures_open_the_breaker(clock: FakeClock, face: str) -> None:
    """A good read between failures resets their count; failures in a row open the breaker."""
    tier = Flaky()
    g = Guarded(tier, CircuitBreaker(failures=2, backoff=1.0, clock=clock))

    def get() -> bytes | None:
        return g.get("k") if face == "sync" else asyncio.run(g.aget("k"))

    for _ in range(3):  # fail, recover, fail, recover...: never two in a row
        tier.down = True
        with pytest.raises(ConnectionError):
            get()
        tier.down = False
        assert get() is None
        assert g.breaker.state == CLOSED
    tier.down = True
    for _ in range(2):
        with pytest.raises(ConnectionError):
            get()
    assert g.breaker.state == OPEN
    with pytest.raises(TierUnavailableError):
        get()
    assert tier.calls == 8  # 3 x (fail + good) + 2 failures; the open breaker kept the last away
