"""``memollm demo``: replay a realistic workload through a simulated model and show what caching saved."""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .._install import extra as _extra
from ..statistics import money
from ._app import main

SYSTEM_PROMPT_TOKENS = 180  # a typical assistant system prompt, sent with every call


@dataclass(frozen=True, slots=True)
class Workload:
    """The demo's questions: ``requests`` in order, and the right answer for each question."""

    requests: list[str]
    answers: dict[str, str]
    topics: int
    phrasings: int


def load_workload(count: int, seed: int) -> Workload:
    """``count`` requests drawn from the built-in topics: popular topics often, in any phrasing."""
    raw = json.loads(resources.files("memollm").joinpath("data/demo_workload.json").read_text("utf-8"))
    topics: list[dict[str, Any]] = raw["topics"]
    answers = {ask: topic["answer"] for topic in topics for ask in topic["asks"]}
    rng = random.Random(seed)
    order = list(range(len(topics)))
    rng.shuffle(order)
    # Zipf-like popularity: a few questions are asked all day, most now and then.
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(order))]
    picked = rng.choices(order, weights=weights, k=count)
    requests = [rng.choice(topics[i]["asks"]) for i in picked]
    return Workload(requests, answers, len(topics), len(answers))


class SimulatedLLM:
    """A model that knows the workload's answers, takes ``latency`` seconds and reports usage."""

    def __init__(self, answers: dict[str, str], latency: float, model: str) -> None:
        from ..usage import count_tokens

        self.answers = answers
        self.latency = latency
        self.model = model
        self.calls = 0
        self._count = count_tokens

    def complete(self, question: str, model: str) -> dict[str, Any]:
        """One chat completion, in the OpenAI response shape."""
        self.calls += 1
        time.sleep(self.latency)
        answer = self.answers[question]
        return {
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
            "usage": {
                "prompt_tokens": SYSTEM_PROMPT_TOKENS + self._count(question),
                "completion_tokens": self._count(answer),
            },
        }


def _semantic_threshold(enabled: bool, download: bool, echo: Any) -> bool | None:
    """The demo's semantic threshold, or None (with a one-line note) when the model is unavailable."""
    if not enabled:
        return None
    try:
        from ..semantic.embedder import FastEmbedder
    except ImportError:
        echo(f"note: semantic caching is off ({_extra('semantic')} to turn it on); exact only")
        return None
    try:
        FastEmbedder(background=False, download=download).embed(["warm up"])
    except Exception as exc:  # noqa: BLE001 - any load failure means: run exact, say why
        if download or os.environ.get("MEMOLLM_EMBED_MODEL_PATH"):
            echo(f"note: semantic caching is off ({exc}); exact only for now")
        else:
            echo(
                "note: semantic caching is off: the embedding model is not on this machine. Run "
                "`memollm model fetch` (or --download-model) to get it; exact only for now"
            )
        return None
    return True  # the recommended threshold


@main.command()
@click.option("--requests", "count", type=click.IntRange(1, 100_000), default=400, show_default=True)
@click.option(
    "--latency", type=click.FloatRange(0, 10), default=0.05, show_default=True, help="seconds per model call"
)
@click.option("--model", default="gpt-4o-mini", show_default=True, help="priced from memollm's price table")
@click.option(
    "--sqlite",
    "sqlite_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="keep the cache in this file (run twice to see answers survive a restart) [default: a temp file]",
)
@click.option("--semantic/--no-semantic", default=True, show_default=True, help="when the model is available")
@click.option("--download-model", is_flag=True, help="download the embedding model if it is not here")
@click.option("--seed", type=int, default=7, show_default=True)
def demo(  # noqa: PLR0917 - click passes every option
    count: int,
    latency: float,
    model: str,
    sqlite_path: Path | None,
    semantic: bool,
    download_model: bool,
    seed: int,
) -> None:
    """Replay a workload of repeated and re-phrased questions through a simulated model.

    Runs on the embedded default (memory + SQLite, no Redis), with the semantic tier when
    the embedding model is available, and prints what the cache saved.
    """
    from rich.progress import Progress

    from ._checks import sqlite_problem
    from ._console import console as make_console

    if sqlite_path is not None and (problem := sqlite_problem(sqlite_path)) is not None:
        raise click.ClickException(f"--sqlite: {problem}")
    console = make_console(highlight=False)

    def note(text: str) -> None:
        console.print(text, markup=False)

    threshold = _semantic_threshold(semantic, download_model, note)
    workload = load_workload(count, seed)
    with tempfile.TemporaryDirectory(prefix="memollm-demo-") as scratch:
        path = sqlite_path or Path(scratch) / "cache.db"
        ask, llm = _cached_model(workload, latency, model, path, threshold)
        wrong = 0
        started = time.perf_counter()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("asking", total=len(workload.requests))
            for question in workload.requests:
                reply = ask(question, model=model)
                if reply["choices"][0]["message"]["content"] != workload.answers[question]:
                    wrong += 1
                progress.advance(task)
        elapsed = time.perf_counter() - started
        stats = ask.cache.stats()
    _report(console, workload, stats, llm, latency, elapsed, wrong, model, path if sqlite_path else None)


def _cached_model(workload: Workload, latency: float, model: str, path: Path, threshold: bool | None) -> Any:
    from .. import cached_llm, register_tier
    from ..backends import MemoryBackend
    from ..backends.sqlite import SQLiteBackend

    register_tier("memory", MemoryBackend())
    register_tier("sqlite", SQLiteBackend(path))
    llm = SimulatedLLM(workload.answers, latency, model)

    def complete(question: str, model: str) -> dict[str, Any]:
        return llm.complete(question, model)

    ask = cached_llm(
        name="memollm.demo.ask",
        tiers=("memory", "sqlite"),
        ttl=3600,
        version="demo",  # the simulated model is a closure value; its answers never change
        semantic=threshold,
        prompt_arg="question",
    )(complete)
    return ask, llm


def _report(  # noqa: PLR0917 - one table from many numbers
    console: Any,
    workload: Workload,
    stats: Any,
    llm: SimulatedLLM,
    latency: float,
    elapsed: float,
    wrong: int,
    model: str,
    kept: Path | None,
) -> None:
    from rich.table import Table

    total = len(workload.requests)
    title = f"memollm demo: {total} questions ({workload.phrasings} phrasings of {workload.topics} topics)"
    table = Table(title=title, show_header=False)
    table.add_column("", overflow="fold")
    table.add_column("", justify="right", overflow="fold")
    table.add_row("model calls made", f"{llm.calls} of {total}")
    for tier in ("memory", "sqlite", "semantic"):
        table.add_row(f"hits from {tier}", str(stats.hits.get(tier, 0)))
    table.add_row("hit rate", f"{stats.hit_rate:.1%}")
    table.add_row("wrong answers served", str(wrong))
    table.add_row("tokens saved", f"{stats.tokens_saved:,}")
    saved = money(stats.cost_saved) if not stats.unpriced_hits else f"n/a (no price for {model})"
    table.add_row(f"money saved ({model})", saved)
    table.add_row("model time saved", f"{stats.latency_saved:.2f} s")
    table.add_row("time taken", f"{elapsed:.2f} s (about {total * latency:.2f} s without the cache)")
    console.print(table)
    if stats.hit_count and not stats.unpriced_hits:
        per_million = stats.cost_saved / total * 1_000_000
        console.print(f"At this hit rate, a million such questions would save about ${per_million:,.0f}.")
    if kept is not None:
        console.print(f"Cache kept in {kept}: run the demo again with --sqlite {kept} to start warm.")
