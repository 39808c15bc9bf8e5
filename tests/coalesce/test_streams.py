from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pydantic
import pytest

import memollm
from memollm import cached_llm
from memollm.backends import MemoryBackend
from memollm.testing import FakeLLM


class Chunk(pydantic.BaseModel):
    delta: str
    index: int


class TestSyncStreams:
    def test_replay_yields_the_same_chunks_as_a_generator(self) -> None:
        """A finished stream is stored; a hit replays the same chunks, as a generator."""
        llm = FakeLLM()

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            yield from llm.stream(prompt)

        first = list(stream("q"))
        again = stream("q")
        assert inspect.isgenerator(again)
        assert list(again) == first
        assert len(first) > 3
        assert llm.calls == 1

    def test_typed_chunks_round_trip(self) -> None:
        """Chunks of a model named in Iterator[...] come back as that model."""

        @cached_llm
        def stream(prompt: str) -> Iterator[Chunk]:
            for i, word in enumerate(prompt.split()):
                yield Chunk(delta=word, index=i)

        first = list(stream("a b c"))
        second = list(stream("a b c"))
        assert second == first
        assert all(type(c) is Chunk for c in second)
        assert stream.cache.stats().hits == {"memory": 1}

    def test_error_mid_stream_stores_nothing(self) -> None:
        """An exception from the stream reaches the caller unchanged and nothing is stored."""
        attempts = []

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            attempts.append(1)
            yield "a"
            if len(attempts) == 1:
                raise TimeoutError("upstream went away")
            yield "b"

        with pytest.raises(TimeoutError, match="went away"):
            list(stream("q"))
        assert list(stream("q")) == ["a", "b"]
        assert list(stream("q")) == ["a", "b"]
        assert len(attempts) == 2

    @pytest.mark.parametrize("how", ["close", "break"])
    def test_abandoned_stream_stores_nothing_and_closes_the_source(self, how: str) -> None:
        """close() or leaving the loop early stores nothing, and the source generator is closed."""
        closed = []

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            try:
                yield from ["a", "b", "c"]
            finally:
                closed.append(True)

        gen = stream("q")
        if how == "close":
            next(gen)
            gen.close()
        else:
            for chunk in gen:
                if chunk == "b":
                    break
            gen.close()
        assert closed == [True]
        assert stream.cache.stats().stores == 0
        assert list(stream("q")) == ["a", "b", "c"]
        assert stream.cache.stats().stores == 1

    def test_cache_if_sees_the_chunks(self) -> None:
        """cache_if receives the list of chunks of a finished stream."""
        seen = []

        def keep(chunks: list[str]) -> bool:
            seen.append(list(chunks))
            return chunks[-1] == "[DONE]"

        @cached_llm(cache_if=keep)
        def stream(prompt: str) -> Iterator[str]:
            yield "a"
            yield prompt

        list(stream("cut"))
        list(stream("[DONE]"))
        list(stream("[DONE]"))
        assert seen == [["a", "cut"], ["a", "[DONE]"]]

    def test_bypass_is_decided_when_the_stream_is_created(self) -> None:
        """bypass() around the call counts even if the stream is consumed outside the block."""
        llm = FakeLLM()

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            yield from llm.stream(prompt)

        with memollm.bypass():
            gen = stream("q")
        list(gen)
        list(stream("q"))
        assert llm.calls == 2

    def test_value_entry_under_a_stream_key_is_a_miss(self, memory: MemoryBackend) -> None:
        """An entry of the wrong kind (a value where a stream is expected) is treated as corrupt."""
        from memollm.codec import Codec

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            yield "fresh"

        memory.set(stream.cache.key_for("q"), Codec().encode("not a stream", created=0.0, expires=None), None)
        assert list(stream("q")) == ["fresh"]
        assert stream.cache.stats().corrupt == 1


class TestAsyncStreams:
    async def test_replay_is_an_async_generator(self) -> None:
        """An async stream replays as an async generator with the same chunks."""
        llm = FakeLLM()

        @cached_llm
        async def stream(prompt: str) -> AsyncIterator[str]:
            async for chunk in llm.astream(prompt):
                yield chunk

        first = [c async for c in stream("q")]
        again = stream("q")
        assert inspect.isasyncgen(again)
        assert [c async for c in again] == first
        assert llm.calls == 1

    async def test_cancellation_mid_stream_stores_nothing(self) -> None:
        """A consumer task cancelled mid-stream stores nothing, and the source is closed."""
        first_chunk = asyncio.Event()
        closed = asyncio.Event()

        @cached_llm
        async def stream(prompt: str) -> AsyncIterator[str]:
            try:
                yield "a"
                await asyncio.Event().wait()  # never set: the consumer is cancelled here
                yield "b"
            finally:
                closed.set()

        async def consume() -> None:
            async for _ in stream("q"):
                first_chunk.set()

        task = asyncio.create_task(consume())
        await first_chunk.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert closed.is_set()
        assert stream.cache.stats().stores == 0

    async def test_aclose_and_errors_store_nothing(self) -> None:
        """aclose() and an exception mid-stream store nothing; a full run then stores."""
        fail = [True]

        @cached_llm
        async def stream(prompt: str) -> AsyncIterator[str]:
            yield "a"
            if fail[0]:
                raise ConnectionError("reset")
            yield "b"

        gen = stream("q")
        assert await gen.__anext__() == "a"
        await gen.aclose()
        with pytest.raises(ConnectionError):
            [c async for c in stream("q")]
        assert stream.cache.stats().stores == 0
        fail[0] = False
        assert [c async for c in stream("q")] == ["a", "b"]
        assert [c async for c in stream("q")] == ["a", "b"]
        assert stream.cache.stats().stores == 1


class TestSharedStreams:
    def _upstream(self) -> tuple[Any, list[str], threading.Event]:
        opened: list[str] = []
        release = threading.Event()

        def stream(prompt: str) -> Iterator[str]:
            opened.append(prompt)
            yield "a"
            release.wait(10)  # the rest comes once every consumer has joined
            yield "b"
            yield "c"

        return stream, opened, release

    def test_consumers_share_one_upstream_stream_from_the_start(self) -> None:
        """Consumers of an identical stream share one upstream; a late joiner still gets chunk one."""
        source, opened, release = self._upstream()
        fn = cached_llm(source)
        first = fn("q")
        got: dict[int, list[str]] = {0: [next(first)]}  # the first chunk is out
        others = [fn("q") for _ in range(5)]
        for i, gen in enumerate(others, 1):
            got[i] = [next(gen)]  # joined while the stream is in flight: chunk one from the buffer
        release.set()
        got[0] += list(first)
        for i, gen in enumerate(others, 1):
            got[i] += list(gen)
        assert opened == ["q"]
        assert all(chunks == ["a", "b", "c"] for chunks in got.values())
        stats = fn.cache.stats()
        assert (stats.coalesced, stats.stores) == (5, 1)
        assert list(fn("q")) == ["a", "b", "c"]
        stats = fn.cache.stats()
        assert (dict(stats.hits), stats.misses) == ({"memory": 1, "coalesced": 5}, 1)

    def test_one_consumer_leaving_does_not_stop_the_others(self) -> None:
        """A consumer that closes early leaves the shared stream running for the rest."""
        source, opened, release = self._upstream()
        fn = cached_llm(source)
        leaver, stayer = fn("q"), fn("q")
        assert next(leaver) == "a"
        assert next(stayer) == "a"
        leaver.close()
        release.set()
        assert list(stayer) == ["b", "c"]
        assert opened == ["q"]
        assert fn.cache.stats().stores == 1

    def test_all_leaving_closes_the_upstream(self) -> None:
        """When every consumer leaves before the end, the upstream is closed and nothing stored."""
        closed = []

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            try:
                yield from ["a", "b", "c"]
            finally:
                closed.append(True)

        g1, g2 = stream("q"), stream("q")
        next(g1)
        next(g2)
        g1.close()
        assert closed == []
        g2.close()
        assert closed == [True]
        assert stream.cache.stats().stores == 0

    def test_an_upstream_error_reaches_every_consumer(self) -> None:
        """An error mid-stream reaches every consumer, and nothing is stored."""

        @cached_llm
        def stream(prompt: str) -> Iterator[str]:
            yield "a"
            raise ConnectionError("reset by peer")

        g1, g2 = stream("q"), stream("q")
        assert next(g1) == next(g2) == "a"
        for gen in (g1, g2):
            with pytest.raises(ConnectionError, match="reset"):
                next(gen)
        assert stream.cache.stats().stores == 0

    async def test_async_consumers_share_one_upstream(self) -> None:
        """Async consumers of one stream share its upstream and get every chunk."""
        opened = []
        gate = asyncio.Event()

        @cached_llm
        async def stream(prompt: str) -> AsyncIterator[str]:
            opened.append(prompt)
            yield "a"
            await gate.wait()
            yield "b"

        async def consume() -> list[str]:
            return [c async for c in stream("q")]

        tasks = [asyncio.create_task(consume()) for _ in range(20)]
        await asyncio.sleep(0)  # let every task start and join before the gate opens
        gate.set()
        results = await asyncio.gather(*tasks)
        assert opened == ["q"]
        assert all(r == ["a", "b"] for r in results)
        assert stream.cache.stats().coalesced == 19
