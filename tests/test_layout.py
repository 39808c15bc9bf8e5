"""The package's shape: no module reaches into another's private names; core modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memollm"
# Tests that exercise a private helper on purpose: (test file, module, name).
ALLOWED_IN_TESTS = {
    # Whether tiktoken's encoding file is cached: probed on a temporary cache folder.
    ("test_savings.py", "memollm.usage", "_cached_locally"),
    ("test_savings.py", "memollm.usage", "_ENCODING_URL"),
    ("test_savings.py", "memollm.usage", "_state"),
    ("conftest.py", "memollm.usage", "_state"),  # token estimates by the documented heuristic
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` names."""
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def reaches(path: Path) -> list[tuple[str, str]]:
    """(module, private name) pairs this file takes from other memollm modules."""
    current = module_name(path) if path.is_relative_to(PACKAGE) else path.stem
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules, found = _imports(tree, current, path.name == "__init__.py")
    for node in ast.walk(tree):
        target = _dotted(node.value) if isinstance(node, ast.Attribute) and private(node.attr) else None
        if target is not None:
            head, _, rest = target.partition(".")
            module = modules.get(head, "") + (f".{rest}" if rest else "")
            if head in modules and module != current and is_module(module):
                found.append((module, node.attr))  # type: ignore[union-attr]  # an Attribute
    return found


def _imports(tree: ast.Module, current: str, package: bool) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(local names bound to memollm modules, private names imported from other modules)."""
    modules: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = resolve(current, package, node)
            for alias in node.names if source.startswith("memollm") else ():
                full = f"{source}.{alias.name}"
                if is_module(full):
                    modules[alias.asname or alias.name] = full
                elif private(alias.name) and source != current:
                    found.append((source, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("memollm"):
                    modules[alias.asname or "memollm"] = alias.name if alias.asname else "memollm"
    return modules, found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_into_another_modules_private_names(path: Path) -> None:
    """``from memollm.x import _y`` and ``x._y`` across modules are refused: use public names."""
    assert reaches(path) == []


def test_tests_reach_only_into_the_privates_they_exercise() -> None:
    """Tests assert through public behaviour, but for the listed private helpers."""
    found = {
        (path.name, module, name)
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for module, name in reaches(path)
    }
    assert found <= ALLOWED_IN_TESTS, sorted(found - ALLOWED_IN_TESTS)


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_modules_stay_small(path: Path) -> None:
    """Each module of the core has one job and reads in one sitting: at most 300 lines."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 300


def test_the_checker_finds_what_it_should(tmp_path: Path) -> None:
    """The checker itself: both forms are found; public names and private modules are not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from memollm.codec import _restore, Codec\nfrom memollm import events, _log\n"
        "events._deliver(1)\nevents.emit(2)\n_log.warn_once\n",
        encoding="utf-8",
    )
    assert sorted(reaches(probe)) == [("memollm.codec", "_restore"), ("memollm.events", "_deliver")]
