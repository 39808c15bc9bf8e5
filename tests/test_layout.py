"""The package's shape: layers without upward imports or cycles, private names kept, modules small."""

from __future__ import annotations

import ast
import collections
from collections.abc import Iterator
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


# Private attributes tests may touch on objects: a namedtuple's API, and a test's own class.
ALLOWED_ATTRIBUTES = {"_fields", "_make", "_replace", "_asdict", "_calls"}


def private_attributes(path: Path) -> list[str]:
    """``obj._name`` reads and calls in a test file, but on ``self``/``cls`` and the allowed names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Attribute) and private(node.attr)) or node.attr in ALLOWED_ATTRIBUTES:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    return found


def test_tests_never_touch_an_objects_private_attributes() -> None:
    """``backend._local``, ``b._connect()``: tests see objects as users do (module privates aside)."""
    found = [
        place
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for place in private_attributes(path)
        if not any(place.endswith(f".{name}") for _, _, name in ALLOWED_IN_TESTS)
    ]
    assert found == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").rglob("*.py")), ids=lambda p: p.name)
def test_core_modules_stay_small(path: Path) -> None:
    """Each module of the core has one job and reads in one sitting: at most 300 lines."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_350_lines(path: Path) -> None:
    """A module with more than one job is split by job: none is over 350 lines."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 350


# -- layers: each imports only from its own layer and the ones below -------------------------

# Bottom up. A name is a root module, or a package under memollm/ with all its modules.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("base: values, formats and parsing every layer uses", frozenset({
        "errors", "_log", "_install", "paths", "switches", "sse", "usage", "pricing", "worth",
        "canonical", "fingerprint", "identity", "instances", "prompt", "codec", "complete",
        "settings_text"})),
    ("mechanisms: tiers, resilience, the semantic tier, coalescing", frozenset({
        "backends", "resilience", "semantic", "coalesce"})),
    ("a call's identity and settings, what is counted and told", frozenset({
        "policy", "config", "registry", "keys", "statistics", "events", "outcomes"})),
    ("the core: the path of one call", frozenset({"core"})),
    ("fronts: what users import and run", frozenset({
        "__init__", "__main__", "_decorator", "sdk", "openai", "anthropic", "langchain", "litellm",
        "asgi", "metrics", "cli", "testing"})),
]  # fmt: skip


def layer_of(module: str) -> int:
    """The layer a ``memollm...`` module belongs to."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    for index, (_, members) in enumerate(LAYERS):
        if head in members:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layout.py")


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """(memollm module, line) of every import in a file: module level, in functions, under TYPE_CHECKING."""
    current = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            source = resolve(current, path.name == "__init__.py", node)
            if not source.startswith("memollm"):
                continue
            named = [f"{source}.{alias.name}" for alias in node.names if is_module(f"{source}.{alias.name}")]
            for target in named or [source]:
                yield target, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("memollm"):
                    yield alias.name, node.lineno


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        current = module_name(path)
        for target, _ in imports(path):
            if target != current:
                graph[current].add(target)
    return graph


def test_every_module_has_a_layer() -> None:
    """A new module or package is placed in a layer on purpose."""
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_no_import_runs_up_a_layer() -> None:
    """Lower layers never import higher ones, not even lazily or for type checking."""
    upward = [
        f"{module_name(path)}:{line} imports {target} ({LAYERS[layer_of(target)][0].split(':')[0]})"
        for path in sorted(PACKAGE.rglob("*.py"))
        for target, line in imports(path)
        if layer_of(target) > layer_of(module_name(path))
    ]
    assert upward == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of two or more modules), Tarjan's way."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or around a loop (package re-exports aside)."""
    graph = {
        module: {t for t in targets if not (PACKAGE / Path(*t.split(".")[1:]) / "__init__.py").is_file()}
        for module, targets in import_graph().items()
    }
    assert cycles(graph) == []


def test_the_layer_checks_find_what_they_should() -> None:
    """The checks themselves: a cycle and an upward import are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("memollm.core.walk") > layer_of("memollm.keys") > layer_of("memollm.backends.redis")


def test_the_checker_finds_what_it_should(tmp_path: Path) -> None:
    """The checker itself: both forms are found; public names and private modules are not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from memollm.codec import _restore, Codec\nfrom memollm import events, _log\n"
        "events._deliver(1)\nevents.emit(2)\n_log.warn_once\n",
        encoding="utf-8",
    )
    assert sorted(reaches(probe)) == [("memollm.codec", "_restore"), ("memollm.events", "_deliver")]
