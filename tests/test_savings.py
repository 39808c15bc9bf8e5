"""Tokens and money: read from responses or estimated, priced per model, added up per hit."""

from __future__ import annotations

import gc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memollm
from memollm import pricing
from memollm.backends import MemoryBackend
from memollm.backends.sqlite import SQLiteBackend
from memollm.errors import ConfigError
from memollm.usage import Usage, count_tokens, sse_usage, text_of, usage_of


def openai_response(
    model: str, prompt_tokens: int, completion_tokens: int, text: str = "hi"
) -> dict[str, Any]:
    return {
        "model": model,
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


class TestUsage:
    def test_openai_dict_and_sdk_object(self) -> None:
        """Openai dict and sdk object."""
        assert usage_of(openai_response("gpt-4o", 10, 20)) == Usage(10, 20, False, "gpt-4o")
        sdk = SimpleNamespace(
            model="gpt-4o-2024-08-06", usage=SimpleNamespace(prompt_tokens=7, completion_tokens=3), choices=[]
        )
        assert usage_of(sdk) == Usage(7, 3, False, "gpt-4o-2024-08-06")

    def test_anthropic_shape(self) -> None:
        """Anthropic's message shape: its usage and its text are read."""
        message = {
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hello"}],
            "usage": {"input_tokens": 5, "output_tokens": 9},
        }
        assert usage_of(message) == Usage(5, 9, False, "claude-sonnet-4-5")
        assert text_of(message) == "hello"

    def test_stream_chunks_report_usage_in_the_last_chunk(self) -> None:
        """Stream chunks report usage in the last chunk."""
        chunks = [
            {"choices": [{"delta": {"content": "Hel"}}]},
            {"choices": [{"delta": {"content": "lo"}}]},
            {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}},
        ]
        assert usage_of(chunks, "prompt", "gpt-4o") == Usage(4, 2, False, "gpt-4o")
        assert text_of(chunks) == "Hello"

    def test_estimated_when_not_reported(self) -> None:
        # The heuristic: one token per four non-CJK characters (rounded up), one per CJK character.
        """Estimated when not reported."""
        assert usage_of("x" * 41, "y" * 8, "m") == Usage(2, 11, True, "m")
        assert count_tokens("如何定义函数") == 6
        assert count_tokens("") == 0

    def test_bad_usage_fields_fall_back_to_estimates(self) -> None:
        """Bad usage fields fall back to estimates."""
        weird = {"usage": {"prompt_tokens": -1, "completion_tokens": "many"}, "choices": []}
        assert usage_of(weird, "abcd").estimated

    def test_sse(self) -> None:
        """Usage of a recorded stream without reported usage is estimated from its text."""
        events = [
            b'data: {"choices":[{"delta":{"content":"abcd"}}]}\n\n',
            b"data: not json\n\n",
            b"data: [DONE]\n\n",
        ]
        assert sse_usage(events, "gpt-4o", "abcdabcd") == Usage(2, 1, True, "gpt-4o")

    def test_tiktoken_only_from_its_local_cache(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Tiktoken is used only when its encoding is cached: memollm never makes it download."""
        import hashlib

        from memollm import usage

        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
        assert not usage._cached_locally()
        name = hashlib.sha1(usage._ENCODING_URL.encode(), usedforsecurity=False).hexdigest()
        (tmp_path / name).write_bytes(b"")
        assert usage._cached_locally()
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken's cache turned off: it would download
        assert not usage._cached_locally()

    def test_no_thread_and_no_download_without_the_cached_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No thread and no download without the cached file."""
        pytest.importorskip("tiktoken")
        import threading

        from memollm import usage

        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
        monkeypatch.setattr(usage, "_state", "new")
        before = threading.active_count()
        assert usage.count_tokens("abcdefgh") == 2
        assert usage._state == "failed" and threading.active_count() == before

    @given(st.text())
    def test_heuristic_is_monotone_in_length(self, text: str) -> None:
        """Heuristic is monotone in length."""
        assert count_tokens(text) <= count_tokens(text + "word")
        assert (count_tokens(text) == 0) == (text == "")


class TestPricing:
    def test_shipped_examples(self) -> None:
        """Prices that ship for common models are what their providers list."""
        assert pricing.price_of("deepseek-v3.2") == pricing.Price(0.28, 0.42)
        assert pricing.price_of("gemini-2.5-flash") == pricing.Price(0.30, 2.50)
        assert pricing.price_of("claude-sonnet-4-5-20250929") == pricing.Price(3.0, 15.0)

    def test_longest_prefix_and_provider_prefix(self) -> None:
        """Longest prefix and provider prefix."""
        assert pricing.price_of("openai/gpt-4o-mini-2024-07-18") == pricing.price_of("gpt-4o-mini")
        assert pricing.price_of("gpt-4o-2024-08-06") == pricing.Price(2.5, 10.0)

    def test_unknown_model_has_no_price(self) -> None:
        """Unknown model has no price."""
        assert pricing.price_of("my-local-llama") is None
        assert pricing.cost_of(Usage(100, 100, False, "my-local-llama")) is None
        assert pricing.price_of(None) is None

    def test_register(self) -> None:
        """A registered price applies to the model name and its dated versions."""
        pricing.register("house-model", input=1.0, output=2.0)
        assert pricing.cost_of(Usage(1_000_000, 500_000, False, "house-model-v2")) == pytest.approx(2.0)
        assert "house-model" in pricing.registered()

    @pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "3"])
    def test_register_rejects_bad_prices(self, bad: Any) -> None:
        """Register rejects bad prices."""
        with pytest.raises(ConfigError, match="input"):
            pricing.register("x", input=bad, output=1.0)

    def test_register_rejects_empty_names(self) -> None:
        """Register rejects empty names."""
        with pytest.raises(ConfigError, match="model"):
            pricing.register(" ", input=1.0, output=1.0)


class TestSavingsInStats:
    def test_known_model(self, memory: MemoryBackend) -> None:
        """Hits on a priced model count tokens and money saved, in stats and events."""

        @memollm.cached_llm
        def ask(prompt: str) -> dict[str, Any]:
            return openai_response("claude-sonnet-4-5", 1000, 2000)

        seen: list[memollm.CacheEvent] = []
        stop = memollm.events.subscribe(seen.append)
        try:
            for _ in range(4):
                ask("q")
        finally:
            stop()
        stats = ask.cache.stats()
        assert stats.hit_count == 3
        assert (stats.input_tokens_saved, stats.output_tokens_saved, stats.tokens_saved) == (3000, 6000, 9000)
        assert stats.cost_saved == pytest.approx(3 * (1000 * 3 + 2000 * 15) / 1e6)
        assert stats.estimated_tokens_saved == 0 and stats.unpriced_hits == 0
        assert seen[0].call_latency is not None  # the miss: what each hit saves
        assert stats.latency_saved == pytest.approx(3 * round(seen[0].call_latency, 6))
        assert memollm.stats_by_function()[ask.cache.name].tokens_saved == 9000

    def test_unknown_model_counts_tokens_not_money(self, memory: MemoryBackend) -> None:
        """Unknown model counts tokens not money."""

        @memollm.cached_llm
        def ask(prompt: str, model: str) -> str:
            return "abcdefgh"

        for _ in range(3):
            ask("abcd", model="my-local-llama")
        stats = ask.cache.stats()
        assert (stats.input_tokens_saved, stats.output_tokens_saved) == (2 * 5, 2 * 2)  # "abcd" + model name
        assert stats.estimated_tokens_saved == stats.tokens_saved
        assert stats.cost_saved == 0
        assert (stats.unpriced_hits, stats.unpriced_models) == (2, frozenset({"my-local-llama"}))

    def test_hits_from_a_lower_tier_and_after_a_restart(self, tmp_path: Path) -> None:
        """Hits from a lower tier and after a restart."""
        path = tmp_path / "cache.db"

        def make() -> Any:
            memollm.register_tier("memory", MemoryBackend())
            memollm.register_tier("sqlite", SQLiteBackend(path))

            @memollm.cached_llm(tiers=("memory", "sqlite"))
            def ask(prompt: str) -> dict[str, Any]:
                return openai_response("gpt-4o", 100, 100)

            return ask

        first = make()
        first("q")
        second = make()  # a new process, as far as the tiers know: the memory tier is empty
        second("q")
        second("q")
        stats = second.cache.stats()
        assert stats.hits == {"sqlite": 1, "memory": 1}
        assert stats.tokens_saved == 400
        assert stats.cost_saved == pytest.approx(2 * (100 * 2.5 + 100 * 10) / 1e6)

    def test_shared_tier_hits_follow_a_price_change_at_once(self, tmp_path: Path) -> None:
        """Hits read from a shared tier are priced at today's prices: a price registered counts at once."""
        memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "c.db"))

        @memollm.cached_llm(tiers=("sqlite",))
        def ask(prompt: str) -> dict[str, Any]:
            return openai_response("house-llm-7b-v3", 1_000_000, 0)

        ask("q")
        ask("q")
        assert ask.cache.stats().cost_saved == 0
        assert ask.cache.stats().unpriced_hits == 1
        pricing.register("house-llm-7b-v3", input=2.0, output=0.0)
        ask("q")
        assert ask.cache.stats().cost_saved == pytest.approx(2.0)
        assert ask.cache.stats().unpriced_hits == 1

    def test_hits_on_hundreds_of_shared_entries_are_all_counted(self, tmp_path: Path) -> None:
        """Savings of hits on more distinct entries than are tallied at once all reach the stats."""
        memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "c.db"))

        @memollm.cached_llm(tiers=("sqlite",))
        def ask(n: int) -> dict[str, Any]:
            return openai_response("gpt-4o", n, 1)

        for _ in range(2):
            for n in range(1, 601):
                ask(n)
        stats = ask.cache.stats()
        assert stats.hits == {"sqlite": 600}
        assert stats.input_tokens_saved == sum(range(1, 601))
        assert stats.output_tokens_saved == 600
        gc.collect()
        assert ask.cache.stats().tokens_saved == stats.tokens_saved  # folding never counts twice

    def test_hits_on_entries_with_huge_model_names_keep_no_memory(self, tmp_path: Path) -> None:
        """Stored metadata naming a 100 KB model (hostile bytes) is counted, and not kept after its hit."""
        import tracemalloc

        memollm.register_tier("sqlite", SQLiteBackend(tmp_path / "c.db"))

        @memollm.cached_llm(tiers=("sqlite",))
        def ask(n: int) -> dict[str, Any]:
            return openai_response(f"{n}-" + "m" * 100_000, 10, 1)

        for n in range(40):
            ask(n)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n in range(40):
                ask(n)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert ask.cache.stats().input_tokens_saved == 400
        assert kept < 1_000_000  # 40 hits x 100 KB of model name would be 4 MB

    def test_memo_hits_are_folded_when_the_entry_is_replaced(self, memory: MemoryBackend) -> None:
        # Immutable values are memoised beside the memory entry and counted without a lock.
        """Memo hits are folded when the entry is replaced."""

        @memollm.cached_llm
        def short(prompt: str) -> str:
            return "abcd"

        for _ in range(5):
            short("abcd")
        short.cache.invalidate("abcd")
        gc.collect()
        for _ in range(3):
            short("abcd")
        assert short.cache.stats().hit_count == 6
        assert short.cache.stats().output_tokens_saved == 6
        short.cache.reset_stats()
        assert short.cache.stats().tokens_saved == 0
        short("abcd")
        assert short.cache.stats().output_tokens_saved == 1

    def test_a_broken_usage_function_never_breaks_the_call(
        self, memory: MemoryBackend, warnings_log: pytest.LogCaptureFixture
    ) -> None:
        """A broken usage function never breaks the call."""

        def usage(result: Any, prompt: str, model: str | None) -> Usage:
            raise ValueError("no idea")

        @memollm.cached_llm(usage=usage)
        def ask(prompt: str) -> str:
            return "ok"

        assert [ask("q"), ask("q")] == ["ok", "ok"]
        assert ask.cache.stats().hit_count == 1 and ask.cache.stats().tokens_saved == 0
        assert "no idea" in warnings_log.text

    def test_combine_adds_savings(self) -> None:
        """Combining stats adds their tokens and money saved and joins the unpriced models."""
        a = memollm.CacheStats(input_tokens_saved=1, cost_saved=0.5, unpriced_models=frozenset({"x"}))
        b = memollm.CacheStats(output_tokens_saved=2, cost_saved=0.25, unpriced_models=frozenset({"y"}))
        total = memollm.CacheStats.combine([a, b])
        assert (total.tokens_saved, total.cost_saved, total.unpriced_models) == (3, 0.75, {"x", "y"})
