"""The sync face is generated from the async one, and CI fails when the two drift apart."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ruff", reason="ruff formats the generated files")

ROOT = Path(__file__).resolve().parents[1]


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "scripts" / "unasync.py"), "--check"],
                          capture_output=True, text=True, check=False, timeout=120)  # fmt: skip


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the package, the script and the ruff settings, to edit freely."""
    shutil.copytree(ROOT / "memollm", tmp_path / "memollm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_generated_sync_code_is_current() -> None:
    """Every generated file and twin block reads exactly as the script writes it today."""
    result = check(ROOT)
    assert result.returncode == 0, result.stderr


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("edited", "old", "new", "named"),
    [
        # a hand edit of the generated face
        ("memollm/core/sync/tiers.py", '    state.stats.add("stores")', '    state.stats.add("stored")',
         "memollm/core/sync/tiers.py"),
        # the async source changed, the sync face not regenerated
        ("memollm/core/aio/tiers.py", '    state.stats.add("stores")', '    state.stats.add("stored")',
         "memollm/core/sync/tiers.py"),
        # a twin block beside its source, edited by hand
        ("memollm/resilience/retry.py", "return tenacity.Retrying(", "return tenacity.Retrying(  # x\n",
         "memollm/resilience/retry.py"),
        # a generated file whose source is gone
        ("memollm/core/sync/extra.py", "", "", "memollm/core/sync/extra.py"),
    ],
    ids=["hand-edit", "stale", "twin-block", "orphan"],
)  # fmt: skip
def test_drift_fails_the_check_and_names_the_file(
    checkout: Path, edited: str, old: str, new: str, named: str
) -> None:
    """Any difference between the faces is caught, and the message says what to run."""
    path = checkout / edited
    if old:
        edit(path, old, new)
    else:
        path.write_text("x = 1\n", encoding="utf-8")
    result = check(checkout)
    assert result.returncode == 1
    assert f"not current: {named}" in result.stderr
    assert "run: python scripts/unasync.py" in result.stderr


def test_running_the_script_makes_the_faces_equal_again(checkout: Path) -> None:
    """After an edit of the async source, one run rewrites the sync face to match."""
    edit(
        checkout / "memollm/core/aio/tiers.py",
        '    state.stats.add("stores")',
        '    state.stats.add("stored")',
    )
    subprocess.run(
        [sys.executable, str(checkout / "scripts" / "unasync.py")], check=True, capture_output=True
    )
    assert check(checkout).returncode == 0
    assert 'state.stats.add("stored")' in (checkout / "memollm/core/sync/tiers.py").read_text("utf-8")
