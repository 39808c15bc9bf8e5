from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from memollm.cli import main

from ..upstream import Upstream

PAIRS = [
    ("How do I create a list in Python?", "What's the way to make a Python list?", 1),
    ("How do I reverse a string in Python?", "How can I reverse a string in Python?", 1),
    ("What is the capital of France?", "Which city is the capital of France?", 1),
    ("How do I enable 2FA on my account?", "How do I disable 2FA on my account?", 0),
    ("Find flights from Boston to Denver", "Find flights from Denver to Boston", 0),
    ("What is 1+1?", "What is 21+1?", 0),
]


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"q1": a, "q2": b, "label": y}) for a, b, y in PAIRS) + "\n")
    return path


def test_calibrate_prints_thresholds_and_a_recommendation(pairs_file: Path, model_path: str) -> None:
    """Calibrate shows P/R/F1 per threshold, with and without the verifier, and the threshold to use."""
    result = CliRunner().invoke(
        main, ["calibrate", str(pairs_file), "--model-path", model_path, "--target-precision", "0.99"]
    )
    assert result.exit_code == 0, result.output
    assert "6 pairs, 3 positive" in result.output
    assert "0.850" in result.output
    assert "cosine: no threshold reaches precision 0.99" in result.output  # the look-alikes sit near 1
    assert "verified: from 0.80 up, the first threshold reaching precision 0.99 is" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"q1": "a", "q2": "b", "label": 1}\nnot json\n', "pairs.jsonl:2: not JSON"),
        ('{"q1": "a", "label": 1}\n', 'expected {"q1": str'),
        ('{"q1": "a", "q2": "b", "label": 2}\n', 'expected {"q1": str'),
        ("\n\n", "holds no pairs"),
    ],
    ids=["bad-json", "missing-field", "bad-label", "empty"],
)
def test_calibrate_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    """A malformed pairs file is a clear error naming the file and line."""
    path = tmp_path / "pairs.jsonl"
    path.write_text(content)
    result = CliRunner().invoke(main, ["calibrate", str(path)])
    assert result.exit_code == 1
    assert message in result.output


def test_calibrate_without_a_model_says_how_to_fix_it(pairs_file: Path, tmp_path: Path) -> None:
    """An unloadable model is a clear error pointing at MEMOLLM_EMBED_MODEL_PATH."""
    pytest.importorskip("fastembed")
    result = CliRunner().invoke(main, ["calibrate", str(pairs_file), "--model-path", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "MEMOLLM_EMBED_MODEL_PATH" in result.output


def test_the_command_is_installed(pairs_file: Path, model_path: str) -> None:
    """The memollm command runs as a real process."""
    env = {**os.environ, "MEMOLLM_EMBED_MODEL_PATH": model_path, "COLUMNS": "200"}
    args = [sys.executable, "-m", "memollm.cli", "calibrate", str(pairs_file), "--from", "0.95"]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--upstream", "ftp://nowhere"], "must be an http:// or https:// URL", 1),
        (
            ["--upstream", "http://127.0.0.1:9", "--redis", "mongodb://x"],
            "--redis: cannot make a cache backend",
            1,
        ),
        (["--upstream", "http://127.0.0.1:9", "--semantic", "maybe"], "expected 'true' or a number", 2),
        (["--upstream", "http://127.0.0.1:9", "--semantic", "0.2"], "a cosine threshold in [0.5, 1]", 2),
    ],
    ids=["bad-upstream", "bad-redis", "bad-semantic", "low-semantic"],
)
def test_serve_rejects_bad_options(args: list[str], message: str, code: int, tmp_path: Path) -> None:
    """Serve refuses bad options with a clear error before starting."""
    pytest.importorskip("uvicorn")
    result = CliRunner().invoke(main, ["serve", "--sqlite", str(tmp_path / "p.db"), *args])
    assert result.exit_code == code
    assert message in result.output


def test_serve_runs_as_a_real_process(tmp_path: Path, upstream: Upstream) -> None:
    """`memollm serve` starts, answers repeats from cache, and stops on SIGTERM.

    Repeats past the second take the fast path with serve's metrics hook subscribed (a bug
    once made them 500s), and /metrics counts them.
    """
    pytest.importorskip("uvicorn")
    import httpx

    from ..servers import ServeProcess

    serve = ServeProcess(upstream.url, "--sqlite", str(tmp_path / "proxy.db"))
    with serve:
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        replies = [httpx.post(serve.url + "/v1/chat/completions", json=body) for _ in range(5)]
        assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT", "HIT", "HIT", "HIT"]
        assert all(r.json() == replies[0].json() for r in replies)
        assert upstream.count == 1
        metrics = httpx.get(serve.url + "/metrics").text
        hits = [line for line in metrics.splitlines() if line.startswith("memollm_lookup_seconds_count")]
        assert any('outcome="hit"' in line and line.endswith(" 4.0") for line in hits), hits
    err = serve.output[1]
    assert serve.proc is not None
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert serve.proc.returncode in (0, -15)
    assert "Traceback" not in err
