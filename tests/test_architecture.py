"""The package's import graph runs one way — runtime ← data ← train ← export ← bench ← cli — and has
no cycles. Every import statement counts: module level, inside functions, and under
``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "anil_edge"
# A module may import from its own layer and the layers before it, never from a later one.
LAYERS = {"": 0, "errors": 0, "schema": 0, "atomic": 0, "cpu_features": 0, "cache": 0,
          "runtime": 1, "data": 2, "train": 3, "export": 4, "bench": 5,
          "cli": 6, "__main__": 7}


def module_name(path: Path) -> str:
    parts = ["anil_edge", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The anil_edge modules ``name`` imports (a package counts as its ``__init__``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else ""]


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_imports_never_point_to_a_later_stage():
    upward = sorted(f"{a} imports {b}" for a, targets in GRAPH.items() for b in targets if layer(b) > layer(a))
    assert not upward, "\n".join(upward)


def test_no_module_imports_one_that_imports_it_back():
    """No cycles of any length (a depth-first search over the whole graph)."""
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for start in sorted(GRAPH):
        if start not in state:
            visit(start, [])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", ["anil_edge.runtime.classifier", "anil_edge.train.batches"])
def test_the_graph_is_read_correctly(module):
    """Guards the checker itself: modules whose imports are known."""
    expected = {"anil_edge.runtime.classifier": {"anil_edge.runtime.state", "anil_edge.runtime.head_engines"},
                "anil_edge.train.batches": {"anil_edge.runtime.metadata", "anil_edge.data.tasks"}}[module]
    assert expected <= GRAPH[module]


def test_test_modules_share_helpers_only_through_helpers_and_conftest():
    """One way to share test code: ``helpers.py`` modules and ``conftest.py`` fixtures; a test
    module never imports another test module (nor plain names from a conftest)."""
    tests = Path(__file__).parent
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                last = node.module.split(".")[-1]
                if last.startswith("test_") or last == "conftest":
                    found.append(f"{path.relative_to(tests)} imports {'.' * node.level}{node.module}")
    assert not found, "\n".join(found)
