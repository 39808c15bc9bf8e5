"""Error-bounded semantic hits through the cache, with the real (offline) model: explore, learn, serve."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import memollm
from memollm import Semantic, cached_llm
from memollm.backends.sqlite import SQLiteBackend
from memollm.cli import main
from memollm.errors import ConfigError

from ..servers import ServeProcess
from ..upstream import Reply, Upstream, completion

# Paraphrases of one question, each close enough to an earlier one to be a candidate.
CAPITAL = [
    "What is the capital of France?",
    "What city is the capital of France?",
    "Which city is the capital of France?",
    "Tell me France's capital.",
    "France's capital is which city?",
    "what is the capital city of france",
    "Name the capital of France.",
    "Capital of France?",
    "Which city serves as the capital of France?",
    "What is France's capital city?",
    "Could you name the capital of France?",
    "Do you know which city is France's capital?",
    "The capital of France is what?",
]
# Lenient enough that a handful of agreeing comparisons make a similarity safe (the rule's
# own tests check the real arithmetic): (1 - 0.2)^(n + 1) <= 0.4 after n = 4 agreements.
LENIENT = {"max_error": 0.2, "confidence": 0.6, "explore_min": 0.0, "seed": 0}


def bounded(
    embedder: Any, answer: Callable[[str], str] = lambda q: "Paris", **settings: Any
) -> tuple[Any, list[str]]:
    calls: list[str] = []

    @cached_llm(semantic=Semantic(**{**LENIENT, **settings}), embedder=embedder)
    def ask(question: str) -> str:
        calls.append(question)
        return answer(question)

    return ask, calls


def test_without_evidence_a_paraphrase_is_explored_not_served(embedder: Any) -> None:
    """The first similar question calls the model, compares the answers and says so in the event."""
    ask, calls = bounded(embedder)
    events: list[memollm.CacheEvent] = []
    memollm.events.subscribe(events.append)
    try:
        ask(CAPITAL[0])
        assert ask(CAPITAL[1]) == "Paris"
    finally:
        memollm.events.unsubscribe(events.append)
    assert calls == CAPITAL[:2]
    stats = ask.cache.stats()
    assert (stats.explorations, stats.semantic_checks, stats.semantic_wrong) == (1, 1, 0)
    assert stats.hits.get("semantic", 0) == 0
    assert [(e.outcome, e.detail) for e in events] == [("miss", None), ("miss", "explored")]


def test_agreeing_answers_lead_to_semantic_hits(embedder: Any) -> None:
    """Once comparisons keep agreeing, paraphrases are served from the cache."""
    ask, calls = bounded(embedder)
    for question in CAPITAL:
        assert ask(question) == "Paris"
    stats = ask.cache.stats()
    assert stats.hits.get("semantic", 0) >= 3
    assert stats.explorations == stats.semantic_checks >= 4
    assert stats.semantic_wrong == 0
    assert len(calls) == len(CAPITAL) - stats.hits["semantic"]


def test_disagreeing_answers_keep_every_call_real(embedder: Any) -> None:
    """A model whose answers differ for each phrasing is never answered from the cache."""
    ask, calls = bounded(embedder, answer=lambda q: f"answer to {q}")
    for question in CAPITAL:
        assert ask(question) == f"answer to {question}"
    stats = ask.cache.stats()
    assert calls == CAPITAL
    assert stats.hits.get("semantic", 0) == 0
    assert stats.semantic_wrong == stats.semantic_checks > 0
    assert stats.semantic_error is None or stats.semantic_error == 1.0


def test_a_same_answer_that_raises_counts_as_different(
    embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken comparison never lets a hit through; it is warned about, and the calls go on."""

    def broken(cached: Any, fresh: Any) -> bool:
        raise RuntimeError("judge down")

    ask, calls = bounded(embedder, same_answer=broken)
    with caplog.at_level(logging.WARNING, logger="memollm"):
        for question in CAPITAL:
            assert ask(question) == "Paris"
    stats = ask.cache.stats()
    assert calls == CAPITAL
    assert stats.semantic_wrong == stats.semantic_checks > 0
    assert "same_answer raised" in caplog.text


def test_a_custom_same_answer_decides(embedder: Any) -> None:
    """A user's comparison (here: the first word) is what counts as agreeing."""
    seen: list[tuple[str, str]] = []

    def first_word(cached: str, fresh: str) -> bool:
        seen.append((cached, fresh))
        return cached.split(maxsplit=1)[0] == fresh.split(maxsplit=1)[0]

    ask, _ = bounded(embedder, answer=lambda q: f"Paris ({len(q)} chars)", same_answer=first_word)
    for question in CAPITAL:
        ask(question)
    assert seen
    assert ask.cache.stats().hits.get("semantic", 0) >= 3


def test_tenants_learn_and_hit_apart(embedder: Any) -> None:
    """One tenant's evidence and entries never serve another tenant."""
    calls: list[str] = []

    @cached_llm(semantic=Semantic(**LENIENT), embedder=embedder)
    def ask(question: str) -> str:
        calls.append(question)
        return "Paris"

    with memollm.tenant("a"):
        for question in CAPITAL:
            ask(question)
    before = len(calls)
    explored = ask.cache.stats().explorations
    with memollm.tenant("b"):
        ask(CAPITAL[-1])
        ask(CAPITAL[0])
    assert len(calls) == before + 2  # b's first question has no candidate; its second, no evidence
    assert ask.cache.stats().explorations == explored + 1


def test_vetoes_still_apply(embedder: Any) -> None:
    """A look-alike the vetoes reject is a plain miss, whatever the evidence says."""
    ask, calls = bounded(embedder, answer=lambda q: "yes")
    for question in CAPITAL:
        ask(question)
    explored = ask.cache.stats().explorations
    ask("How do I turn on dark mode in Windows 11?")
    ask("How do I turn off dark mode in Windows 11?")
    assert calls[-2:] == [
        "How do I turn on dark mode in Windows 11?",
        "How do I turn off dark mode in Windows 11?",
    ]
    assert ask.cache.stats().explorations == explored


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_error": 0.7}, "max_error"),
        ({"max_error": 0}, "max_error"),
        ({"max_error": 0.02, "confidence": 1.2}, "confidence"),
        ({"max_error": 0.02, "same_answer": "exact"}, "same_answer"),
        ({"max_error": 0.02, "seed": "x"}, "seed"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_bad_settings_name_what_is_wrong(settings: dict[str, Any], message: str) -> None:
    """Bad settings name what is wrong."""
    with pytest.raises(ConfigError, match=message):
        Semantic(**settings)


LEARNER = """
import json, sys
from memollm import Semantic, cached_llm

calls = []

@cached_llm(tiers=["memory", sys.argv[1]], ttl=None,
            semantic=Semantic(max_error=0.2, confidence=0.6, explore_min=0.0, seed=0))
def ask(question: str) -> str:
    calls.append(question)
    return "Paris"

for question in json.loads(sys.argv[2]):
    ask(question)
s = ask.cache.stats()
print(json.dumps({"calls": len(calls), "semantic": s.hits.get("semantic", 0), "checks": s.semantic_checks}))
"""


def learn(tmp_path: Path, tier: str, questions: list[str], env: dict[str, str]) -> dict[str, int]:
    script = tmp_path / "learner.py"
    script.write_text(LEARNER)
    out = subprocess.run(
        [sys.executable, str(script), tier, json.dumps(questions)],
        capture_output=True, text=True, check=True, cwd=tmp_path, env={**os.environ, **env},
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("tier", ["redis", "sqlite"])
def test_evidence_is_shared_between_processes(
    tier: str, tmp_path: Path, model_path: str, request: pytest.FixtureRequest
) -> None:
    """What one process learned lets another (or the same after a restart) serve at once."""
    env = {"MEMOLLM_EMBED_MODEL_PATH": model_path}
    if tier == "redis":
        env["MEMOLLM_REDIS_URL"] = request.getfixturevalue("fresh_redis").url
    else:
        env["MEMOLLM_SQLITE_PATH"] = str(tmp_path / "c.db")
    first = learn(tmp_path, tier, CAPITAL[:6], env)
    assert first["checks"] >= 4
    # A fresh process with no evidence of its own: the first paraphrase it sees is served.
    second = learn(tmp_path, tier, CAPITAL[8:9], env)
    assert second == {"calls": 0, "semantic": 1, "checks": 0}
    if tier == "sqlite":  # the control: the same questions against an empty store are explored
        alone = learn(
            tmp_path, tier, [CAPITAL[0], CAPITAL[8]], {**env, "MEMOLLM_SQLITE_PATH": str(tmp_path / "o.db")}
        )
        assert alone == {"calls": 2, "semantic": 0, "checks": 1}


def test_stats_cli_shows_the_checks(tmp_path: Path, embedder: Any) -> None:
    """`memollm stats` reports, per function, the comparisons made and the wrong ones."""
    db = tmp_path / "c.db"
    store = SQLiteBackend(db)

    @cached_llm(tiers=("memory", store), semantic=Semantic(**LENIENT), embedder=embedder)
    def ask(question: str) -> str:
        return "Lyon" if question == CAPITAL[1] else "Paris"

    for question in CAPITAL:
        ask(question)
    stats = ask.cache.stats()
    result = CliRunner().invoke(main, ["stats", "--sqlite", str(db)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "checks" in line)
    assert "wrong" in header
    row = next(line for line in result.output.splitlines() if "ask" in line)
    cells = [c.strip() for c in row.replace("│", "|").split("|") if c.strip()]
    assert cells[-2:] == [str(stats.semantic_checks), str(stats.semantic_wrong)]
    assert stats.semantic_wrong >= 1


def test_the_proxy_flag(upstream: Upstream, model_path: str, tmp_path: Path) -> None:
    """`memollm serve --semantic-max-error` explores a paraphrase with no evidence and counts it."""
    for _ in range(3):
        upstream.script.append(Reply(body=completion("Paris")))
    env = {**os.environ, "MEMOLLM_EMBED_MODEL_PATH": model_path}
    serve = ServeProcess(
        upstream.url, "--sqlite", str(tmp_path / "s.db"), "--semantic-max-error", "0.05", env=env
    )
    with serve:
        for question in CAPITAL[:2]:
            body = {"model": "m", "messages": [{"role": "user", "content": question}]}
            reply = httpx.post(serve.url + "/v1/chat/completions", json=body, timeout=30)
            assert reply.status_code == 200
            assert reply.json()["choices"][0]["message"]["content"] == "Paris"
        metrics = httpx.get(serve.url + "/metrics").text
    assert len(upstream.requests) == 2
    explored = [line for line in metrics.splitlines() if line.startswith("memollm_explorations_total")]
    assert explored and float(explored[0].rsplit(" ", 1)[1]) == 1.0


def test_serve_rejects_a_bad_bound(tmp_path: Path) -> None:
    """Serve rejects a bad bound."""
    pytest.importorskip("uvicorn")
    result = CliRunner().invoke(
        main, ["serve", "--sqlite", str(tmp_path / "p.db"), "--upstream", "http://127.0.0.1:9",
               "--semantic-max-error", "0.9"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--semantic-max-error" in result.output


def test_a_failing_evidence_tier_means_exploring(embedder: Any, fresh_redis: Any) -> None:
    """With the tier that keeps the evidence gone, nothing is served semantically and nothing raises."""
    from memollm.backends.redis import RedisBackend

    calls: list[str] = []

    @cached_llm(
        tiers=("memory", RedisBackend(fresh_redis.url)), semantic=Semantic(**LENIENT), embedder=embedder
    )
    def ask(question: str) -> str:
        calls.append(question)
        return "Paris"

    for question in CAPITAL[:8]:
        ask(question)
    served = ask.cache.stats().hits.get("semantic", 0)
    assert served >= 1  # the evidence, in Redis, let paraphrases be served
    fresh_redis.kill()
    before = len(calls)
    for question in CAPITAL[8:]:
        assert ask(question) == "Paris"
    stats = ask.cache.stats()
    assert len(calls) == before + len(CAPITAL[8:])  # every one called: no evidence, no hit
    assert stats.hits.get("semantic", 0) == served
    assert stats.errors >= 1
