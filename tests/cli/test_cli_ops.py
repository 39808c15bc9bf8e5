"""memollm demo, stats, clear and inspect: through click's runner, and once each as a real process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import memollm
from memollm.backends import MemoryBackend
from memollm.backends.sqlite import SQLiteBackend
from memollm.cli import main

from ..servers import free_port


def run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "200", **(env or {})}, input=stdin)


def row(output: str, label: str) -> str:
    found = re.search(rf"{re.escape(label)}\s*│\s*(.+?)\s*│", output)
    assert found, f"no row {label!r} in:\n{output}"
    return found.group(1)


def fill(path: Path) -> Any:
    """A function cached in an SQLite file, with two answers stored."""
    memollm.register_tier("memory", MemoryBackend())
    memollm.register_tier("sqlite", SQLiteBackend(path))

    @memollm.cached_llm(name="support.answer", tiers=("memory", "sqlite"), namespace="support")
    def answer(question: str, model: str = "gpt-4o") -> dict[str, Any]:
        return {
            "model": model,
            "choices": [{"message": {"content": f"about {question}"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50},
        }

    answer("refunds")
    answer("shipping")
    return answer


class TestDemo:
    def test_exact_only(self) -> None:
        """The demo without the semantic tier: only exact repeats hit, and nothing wrong is served."""
        result = run("demo", "--requests", "120", "--latency", "0", "--no-semantic")
        assert result.exit_code == 0, result.output
        calls = int(row(result.output, "model calls made").split()[0])
        assert 0 < calls < 120
        assert row(result.output, "hits from memory") == str(120 - calls)
        assert row(result.output, "wrong answers served") == "0"
        assert row(result.output, "money saved (gpt-4o-mini)").startswith("$")

    def test_semantic_with_the_local_model(self, model_path: str) -> None:
        """Semantic with the local model."""
        result = run(
            "demo", "--requests", "200", "--latency", "0", env={"MEMOLLM_EMBED_MODEL_PATH": model_path}
        )
        assert result.exit_code == 0, result.output
        assert int(row(result.output, "hits from semantic")) > 0
        assert row(result.output, "wrong answers served") == "0"

    def test_without_the_model_says_so_and_runs_exact(self, tmp_path: Path) -> None:
        """Without the model says so and runs exact."""
        pytest.importorskip("fastembed")
        env = {"MEMOLLM_EMBED_MODEL_PATH": str(tmp_path / "no-model")}
        result = run("demo", "--requests", "30", "--latency", "0", env=env)
        assert result.exit_code == 0, result.output
        assert "semantic caching is off" in result.output
        assert row(result.output, "hits from semantic") == "0"

    def test_a_second_run_starts_warm_from_sqlite(self, tmp_path: Path) -> None:
        """A second run starts warm from sqlite."""
        path = tmp_path / "demo.db"
        first = run("demo", "--requests", "80", "--latency", "0", "--no-semantic", "--sqlite", str(path))
        assert first.exit_code == 0, first.output
        assert f"--sqlite {path}" in first.output
        second = run("demo", "--requests", "80", "--latency", "0", "--no-semantic", "--sqlite", str(path))
        assert row(second.output, "model calls made") == "0 of 80"
        assert int(row(second.output, "hits from sqlite")) > 0


class TestStats:
    def test_sqlite(self, tmp_path: Path) -> None:
        """``memollm stats`` reads a SQLite cache: entries per function and the tokens a hit would save."""
        path = tmp_path / "c.db"
        fill(path)
        result = run("stats", "--sqlite", str(path))
        assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if "support.answer" in x)
        assert "support" in line and " 2 " in line and "300" in line  # 2 entries, 2 x 150 tokens
        assert "2 entries; one hit on each would save 300 tokens" in result.output

    def test_redis_and_the_environment_variable(self, redis_url: str) -> None:
        """Redis and the environment variable."""
        from memollm.backends.redis import RedisBackend

        memollm.register_tier("redis", RedisBackend(redis_url))

        @memollm.cached_llm(name="shared.fn", tiers=("redis",))
        def shared(prompt: str) -> str:
            return prompt * 3

        shared("a")
        result = run("stats", env={"MEMOLLM_REDIS_URL": redis_url})
        assert result.exit_code == 0, result.output
        assert "shared.fn" in result.output and "1 entry;" in result.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ([], "say which cache"),
            (["--sqlite", "/nonexistent/c.db"], "no SQLite cache at"),
            (["--redis", "mongodb://user:secret@x"], "must be a redis://"),
            (["--redis", f"redis://:secret@127.0.0.1:{free_port()}/0"], "cannot reach Redis at"),
            (["--redis", "redis://x", "--sqlite", "y.db"], "not both"),
        ],
    )
    def test_errors(self, args: list[str], message: str) -> None:
        """Bad ``memollm stats`` arguments fail with one line, and never echo a secret."""
        result = run("stats", *args)
        assert result.exit_code == 1
        assert message in result.output
        assert "secret" not in result.output

    def test_a_file_that_is_not_a_cache(self, tmp_path: Path) -> None:
        """A file that is not a cache."""
        path = tmp_path / "notes.db"
        path.write_text("not a database, just text " * 100)
        result = run("stats", "--sqlite", str(path))
        assert result.exit_code == 1
        assert "cannot read" in result.output


class TestClear:
    def test_asks_first(self, tmp_path: Path) -> None:
        """``memollm clear`` asks before removing; no keeps every entry, yes removes them."""
        path = tmp_path / "c.db"
        answer = fill(path)
        result = run("clear", "--sqlite", str(path), stdin="n\n")
        assert result.exit_code == 1 and "Aborted" in result.output
        assert SQLiteBackend(path).stats()[0] == 2
        result = run("clear", "--sqlite", str(path), stdin="y\n")
        assert result.exit_code == 0 and "removed 2 entries" in result.output
        assert SQLiteBackend(path).stats()[0] == 0
        assert answer.cache.key_for("refunds")  # still usable after

    def test_namespace_only(self, tmp_path: Path) -> None:
        """``memollm clear --namespace`` removes that namespace's entries and leaves others."""
        path = tmp_path / "c.db"
        fill(path)
        other = SQLiteBackend(path)
        other.set("default:abc:def", b"x", None)
        result = run("clear", "--sqlite", str(path), "--namespace", "support", "--yes")
        assert result.exit_code == 0 and "removed 2 entries" in result.output
        assert other.get("default:abc:def") == b"x"


class TestInspect:
    def test_shows_the_entry(self, tmp_path: Path) -> None:
        """``memollm inspect`` shows an entry's function, tokens, model and answer."""
        path = tmp_path / "c.db"
        answer = fill(path)
        key = answer.cache.key_for("refunds")
        result = run("inspect", "--sqlite", str(path), key)
        assert result.exit_code == 0, result.output
        assert "function  support.answer" in result.output
        assert "tokens    100 in, 50 out; model gpt-4o" in result.output
        assert '"content": "about refunds"' in result.output
        assert "expires   " in result.output and "(in " in result.output

    def test_objects_are_shown_not_restored(self, tmp_path: Path) -> None:
        """Objects are shown not restored."""
        from dataclasses import dataclass

        @dataclass
        class Answer:
            text: str

        path = tmp_path / "c.db"
        memollm.register_tier("sqlite", SQLiteBackend(path))

        @memollm.cached_llm(tiers=("sqlite",))
        def ask(prompt: str) -> Answer:
            return Answer("hi")

        ask("q")
        result = run("inspect", "--sqlite", str(path), ask.cache.key_for("q"))
        assert result.exit_code == 0, result.output
        assert '"__type__"' in result.output and "Answer" in result.output

    def test_missing_and_unreadable_keys(self, tmp_path: Path) -> None:
        """Missing and unreadable keys."""
        path = tmp_path / "c.db"
        fill(path)
        SQLiteBackend(path).set("support:x:garbage", b"\xc1\xc1", None)
        assert "no entry" in run("inspect", "--sqlite", str(path), "support:x:none").output
        assert (
            "not a readable memollm entry"
            in run("inspect", "--sqlite", str(path), "support:x:garbage").output
        )


def test_every_command_as_a_real_process(tmp_path: Path) -> None:
    """The installed entry point runs demo, stats, inspect and clear end to end."""
    path = tmp_path / "c.db"
    env = {**os.environ, "COLUMNS": "200", "MEMOLLM_SQLITE_PATH": str(path)}

    errors: list[str] = []

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "memollm.cli", *args], capture_output=True, text=True, env=env, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        errors.append(out.stderr)
        return out.stdout

    demo = cli("demo", "--requests", "50", "--latency", "0", "--no-semantic", "--sqlite", str(path))
    assert "model calls made" in demo
    assert errors[-1].strip() == ""  # a first run warns about nothing
    stats = cli("stats")
    assert "memollm.demo.ask" in stats
    key = next(k for k, _ in SQLiteBackend(path).scan(limit=1))
    assert "function  memollm.demo.ask" in cli("inspect", key)
    assert "removed" in cli("clear", "--yes")
    assert SQLiteBackend(path).stats()[0] == 0
