"""Retries and key failover against a real local HTTP server, through httpx and the openai SDK."""

from __future__ import annotations

import email.utils
import logging
import random
from typing import Any

import httpx
import openai
import pytest

import memollm
from memollm import AllKeysExhaustedError, KeyPool, RetryPolicy, cached_llm
from memollm.resilience.classify import Failure, classify, retry_after
from memollm.resilience.keypool import fingerprint
from memollm.testing import FakeClock

from ..upstream import Reply, Upstream, error


class Waits:
    """An injected sleep that records waits and moves a fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def policy(self, **options: Any) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, asleep=self.asleep, clock=self.clock, **options)


@pytest.fixture
def waits(clock: FakeClock) -> Waits:
    return Waits(clock)


def sdk(upstream: Upstream, key: str = "sk-test") -> openai.OpenAI:
    # The SDK's own retries are off: memollm does the retrying.
    return openai.OpenAI(base_url=upstream.url + "/v1", api_key=key, max_retries=0, timeout=2.0)


def chat(client: openai.OpenAI, prompt: str) -> str:
    reply = client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": prompt}])
    return reply.choices[0].message.content or ""


def http_post(upstream: Upstream, prompt: str, key: str = "sk-test", timeout: float = 2.0) -> str:
    response = httpx.post(
        upstream.url + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": prompt}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=timeout,
    )
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


class TestClassify:
    @pytest.mark.parametrize(
        ("status", "failure"),
        [
            (429, Failure.RATE_LIMITED),
            (500, Failure.TRANSIENT),
            (502, Failure.TRANSIENT),
            (503, Failure.TRANSIENT),
            (504, Failure.TRANSIENT),
            (400, Failure.FATAL),
            (401, Failure.AUTH),
            (403, Failure.AUTH),
            (404, Failure.FATAL),
            (422, Failure.FATAL),
            (402, Failure.QUOTA),
        ],
        ids=str,
    )
    def test_statuses_of_real_exceptions(self, upstream: Upstream, status: int, failure: Failure) -> None:
        """Real httpx and openai exceptions for each status are classified alike."""
        upstream.play(error(status), error(status))
        with pytest.raises(httpx.HTTPStatusError) as from_httpx:
            http_post(upstream, "x")
        with pytest.raises(openai.APIStatusError) as from_openai:
            chat(sdk(upstream), "x")
        assert classify(from_httpx.value) is failure
        assert classify(from_openai.value) is failure

    def test_quota_errors(self, upstream: Upstream) -> None:
        """A 429 whose code says the quota or balance is gone is a quota failure, not a rate limit."""
        upstream.play(error(429, code="insufficient_quota", message="You exceeded your current quota"))
        with pytest.raises(openai.RateLimitError) as info:
            chat(sdk(upstream), "x")
        assert classify(info.value) is Failure.QUOTA

    def test_timeouts_and_connection_errors(self, upstream: Upstream) -> None:
        """Timeouts and refused connections of httpx and the openai SDK are transient."""
        upstream.play(Reply(delay=1.0), Reply(delay=1.0))
        with pytest.raises(httpx.ReadTimeout) as slow:
            http_post(upstream, "x", timeout=0.2)
        client = openai.OpenAI(base_url=upstream.url + "/v1", api_key="k", max_retries=0, timeout=0.2)
        with pytest.raises(openai.APITimeoutError) as sdk_slow:
            chat(client, "x")
        refused = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0, timeout=1.0)
        with pytest.raises(openai.APIConnectionError) as down:
            chat(refused, "x")
        for exc in (slow.value, sdk_slow.value, down.value, TimeoutError(), ConnectionResetError()):
            assert classify(exc) is Failure.TRANSIENT, exc
        assert classify(ValueError("a bug")) is Failure.FATAL

    def test_retry_after_forms(self, upstream: Upstream) -> None:
        """Retry-After in seconds, as an HTTP date, and retry-after-ms are all read."""
        date = email.utils.formatdate(1_000_030, usegmt=True)
        upstream.play(
            Reply(429, {"retry-after": "7"}, {}),
            Reply(429, {"retry-after": date}, {}),
            Reply(429, {"retry-after-ms": "1500"}, {}),
        )
        found = []
        for _ in range(3):
            with pytest.raises(httpx.HTTPStatusError) as info:
                http_post(upstream, "x")
            found.append(retry_after(info.value, now=1_000_000))
        assert found == [7.0, 30.0, 1.5]


class TestRetries:
    def test_transient_failures_are_retried(self, upstream: Upstream, waits: Waits) -> None:
        """500 and 503 are retried with growing, jittered waits; the third call succeeds."""
        upstream.play(error(500), error(503))
        client = sdk(upstream)

        @cached_llm(retry=waits.policy(attempts=4, initial=1.0, rng=random.Random(1)), ignore=["client"])
        def ask(prompt: str, client: Any = client) -> str:
            return chat(client, prompt)

        assert ask("x") == "echo: x"
        assert upstream.count == 3
        assert len(waits.waits) == 2
        assert 0 <= waits.waits[0] <= 1.0 and 0 <= waits.waits[1] <= 2.0
        assert ask.cache.stats().retries == 2
        assert ask("x") == "echo: x"
        assert upstream.count == 3

    def test_retry_after_is_honoured(self, upstream: Upstream, waits: Waits) -> None:
        """A 429's Retry-After replaces the computed wait."""
        upstream.play(Reply(429, {"retry-after": "7"}, {"error": {"message": "slow down"}}))

        @cached_llm(retry=waits.policy())
        def ask(prompt: str) -> str:
            return http_post(upstream, prompt)

        assert ask("x") == "echo: x"
        assert waits.waits == [7.0]

    def test_retry_after_past_the_deadline_stops(self, upstream: Upstream, waits: Waits) -> None:
        """A Retry-After longer than the time left ends the retries at once, with the API's error."""
        upstream.play(Reply(429, {"retry-after": "120"}, {"error": {"message": "later"}}))

        @cached_llm(retry=waits.policy(deadline=60))
        def ask(prompt: str) -> str:
            return chat(sdk(upstream), prompt)

        with pytest.raises(openai.RateLimitError):
            ask("x")
        assert waits.waits == []
        assert upstream.count == 1

    def test_attempts_are_bounded_and_the_last_error_propagates(
        self, upstream: Upstream, waits: Waits
    ) -> None:
        """After the last attempt the API's own exception propagates, never a RetryError."""
        upstream.play(*[error(502) for _ in range(10)])

        @cached_llm(retry=waits.policy(attempts=3))
        def ask(prompt: str) -> str:
            return chat(sdk(upstream), prompt)

        with pytest.raises(openai.InternalServerError) as info:
            ask("x")
        assert info.value.status_code == 502
        assert upstream.count == 3

    def test_deadline_bounds_the_total_wait(self, upstream: Upstream, waits: Waits) -> None:
        """Waits never carry the call past the deadline."""
        upstream.play(*[Reply(503, {"retry-after": "4"}, {}) for _ in range(10)])

        @cached_llm(retry=waits.policy(attempts=10, deadline=10))
        def ask(prompt: str) -> str:
            return http_post(upstream, prompt)

        with pytest.raises(httpx.HTTPStatusError):
            ask("x")
        assert waits.waits == [4.0, 4.0]
        assert upstream.count == 3

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_client_errors_are_never_retried(self, upstream: Upstream, waits: Waits, status: int) -> None:
        """4xx other than 429 go back to the caller after one call."""
        upstream.play(error(status), error(status))

        @cached_llm(retry=waits.policy())
        def ask(prompt: str) -> str:
            return chat(sdk(upstream), prompt)

        with pytest.raises(openai.APIStatusError) as info:
            ask("x")
        assert info.value.status_code == status
        assert upstream.count == 1
        assert waits.waits == []

    def test_slow_responses_time_out_and_are_retried(self, upstream: Upstream, waits: Waits) -> None:
        """A response slower than the client's timeout is retried."""
        upstream.play(Reply(delay=1.0))

        @cached_llm(retry=waits.policy())
        def ask(prompt: str) -> str:
            return http_post(upstream, prompt, timeout=0.3)

        assert ask("x") == "echo: x"
        assert upstream.count == 2

    async def test_async_retries(self, upstream: Upstream, waits: Waits) -> None:
        """Async functions retry through the injected async sleep."""
        upstream.play(error(500), Reply(429, {"retry-after": "2"}, {}))
        client = openai.AsyncOpenAI(base_url=upstream.url + "/v1", api_key="k", max_retries=0, timeout=2.0)

        @cached_llm(retry=waits.policy(rng=random.Random(0)), ignore=["client"])
        async def ask(prompt: str, client: Any = client) -> str:
            reply = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content or ""

        assert await ask("x") == "echo: x"
        assert upstream.count == 3
        assert waits.waits[1] == 2.0
        await client.close()

    def test_retries_apply_to_uncached_calls_too(self, upstream: Upstream, waits: Waits) -> None:
        """A bypassed call still gets retries: resilience wraps every upstream call."""
        upstream.play(error(503))

        @cached_llm(retry=waits.policy())
        def ask(prompt: str) -> str:
            return http_post(upstream, prompt)

        with memollm.bypass():
            assert ask("x") == "echo: x"
        assert upstream.count == 2


KEYS = ["sk-alpha-0001", "sk-bravo-0002", "sk-charlie-0003"]


def pooled(upstream: Upstream, pool: KeyPool, **settings: Any) -> Any:
    @cached_llm(keys=pool, key_param="api_key", **settings)
    def ask(prompt: str, api_key: str | None = None) -> str:
        return chat(sdk(upstream, key=api_key or "none"), prompt)

    return ask


class TestKeyPool:
    def test_round_robin(self, upstream: Upstream, clock: FakeClock) -> None:
        """Healthy keys are used in turn."""
        ask = pooled(upstream, KeyPool(KEYS, clock=clock))
        for i in range(4):
            ask(f"q{i}")
        assert upstream.keys_used() == [KEYS[0], KEYS[1], KEYS[2], KEYS[0]]

    def test_refused_key_is_disabled_and_the_call_moves_on(
        self, upstream: Upstream, clock: FakeClock
    ) -> None:
        """A 401 disables the key; the same call goes to the next key at once, with no wait."""
        upstream.play(error(401), key=KEYS[0])
        waits = Waits(clock)
        pool = KeyPool(KEYS, clock=clock)
        ask = pooled(upstream, pool, retry=waits.policy())
        assert ask("a") == "echo: a"
        for i in range(4):
            ask(f"b{i}")
        assert upstream.keys_used() == [KEYS[0], KEYS[1], KEYS[2], KEYS[1], KEYS[2], KEYS[1]]
        assert waits.waits == []
        assert ask.cache.stats().retries == 0
        assert pool.status()[0].state == "disabled"

    def test_rate_limited_key_cools_down(self, upstream: Upstream, clock: FakeClock) -> None:
        """A 429 sets the key aside for its Retry-After, moves the call on, and the key comes back."""
        upstream.play(Reply(429, {"retry-after": "30"}, {"error": {"message": "slow down"}}), key=KEYS[0])
        pool = KeyPool(KEYS[:2], clock=clock)
        ask = pooled(upstream, pool)
        ask("a")
        ask("b")
        assert upstream.keys_used() == [KEYS[0], KEYS[1], KEYS[1]]
        status = pool.status()[0]
        assert (status.state, status.usable_in) == ("cooling", 30.0)
        clock.advance(31)
        ask("c")
        ask("d")
        assert upstream.keys_used()[-2:] == [KEYS[0], KEYS[1]]

    def test_spent_key_and_balance_checks(self, upstream: Upstream, clock: FakeClock) -> None:
        """A spent key stays aside; the scheduled balance check puts it back once it has credit."""
        credit = {KEYS[0]: False, KEYS[1]: True}
        checks: list[str] = []

        def balance(key: str) -> bool:
            checks.append(fingerprint(key))
            return credit[key]

        pool = KeyPool(KEYS[:2], clock=clock, balance_check=balance, check_every=300, run_check=lambda f: f())
        pool.report(KEYS[0], Failure.QUOTA)  # spent before the first call
        ask = pooled(upstream, pool)
        ask("a")
        assert len(checks) == 2  # the first acquire ran the schedule
        assert upstream.keys_used() == [KEYS[1]]
        ask("b")
        assert len(checks) == 2  # not per call
        assert pool.status()[0].state == "spent"
        credit[KEYS[0]] = True  # topped up
        clock.advance(301)
        ask("c")
        assert len(checks) == 4
        assert pool.status()[0].state == "ok"
        assert upstream.keys_used()[-1] == KEYS[0]

    def test_quota_error_spends_the_key(self, upstream: Upstream, clock: FakeClock) -> None:
        """A 429 saying the quota is gone spends the key for spent_cooldown; the call moves on."""
        upstream.play(error(429, code="insufficient_quota"), key=KEYS[0])
        pool = KeyPool(KEYS[:2], clock=clock, spent_cooldown=600)
        ask = pooled(upstream, pool)
        assert ask("a") == "echo: a"
        status = pool.status()[0]
        assert (status.state, status.usable_in) == ("spent", 600.0)
        assert upstream.keys_used() == [KEYS[0], KEYS[1]]

    def test_all_keys_exhausted(
        self, upstream: Upstream, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With every key refused, AllKeysExhaustedError lists fingerprints and states, never keys."""
        caplog.set_level(logging.DEBUG, logger="memollm")
        for key in KEYS:
            upstream.play(error(401), key=key)
        pool = KeyPool(KEYS, clock=clock)
        ask = pooled(upstream, pool)
        with pytest.raises(AllKeysExhaustedError) as info:
            ask("x")
        message = str(info.value)
        assert all(fingerprint(k) in message for k in KEYS)
        assert "disabled" in message
        assert info.value.retry_after is None
        for key in KEYS:
            assert key not in message
            assert key not in caplog.text
            assert key not in repr(pool)
            assert key not in str(ask.cache.explain_key("x", api_key=key))

    def test_all_cooling_keys_are_waited_for(self, upstream: Upstream, clock: FakeClock) -> None:
        """When every key is cooling, a retry policy waits for the first to be usable again."""
        for key in KEYS[:2]:
            upstream.play(Reply(429, {"retry-after": "5"}, {}), key=key)
        waits = Waits(clock)
        ask = pooled(upstream, KeyPool(KEYS[:2], clock=clock), retry=waits.policy())
        assert ask("x") == "echo: x"
        assert waits.waits == [5.0]

    def test_key_is_not_part_of_the_cache_key(self, upstream: Upstream, clock: FakeClock) -> None:
        """Calls answered with different keys share one cache entry."""
        ask = pooled(upstream, KeyPool(KEYS, clock=clock))
        ask("x")
        ask("x")
        assert upstream.count == 1
        assert "api_key" not in ask.cache.explain_key("x").arguments

    def test_current_key_without_a_parameter(self, upstream: Upstream, clock: FakeClock) -> None:
        """Without key_param the function reads memollm.current_key()."""

        @cached_llm(keys=KeyPool(KEYS, clock=clock))
        def ask(prompt: str) -> str:
            key = memollm.current_key()
            assert key is not None
            return chat(sdk(upstream, key), prompt)

        ask("a")
        ask("b")
        assert upstream.keys_used() == KEYS[:2]
        assert memollm.current_key() is None

    def test_pool_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """MEMOLLM_API_KEYS holds comma-separated keys; an empty variable is a clear error."""
        monkeypatch.setenv("MEMOLLM_API_KEYS", " sk-a , sk-b,,sk-a ")
        assert len(KeyPool.from_env()) == 2
        monkeypatch.setenv("MEMOLLM_API_KEYS", "")
        with pytest.raises(memollm.ConfigError, match="MEMOLLM_API_KEYS"):
            KeyPool.from_env()
