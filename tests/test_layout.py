"""The import graph flows one way: views -> services -> models; workers -> services and
the library; ``sbs`` never imports ``workers``; ``adaptation`` never imports Django."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sbs", "workers", "adaptation")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute imports of a module (optionally only those at module level, outside
    ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    if module_level_only:
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.append(node)
    else:
        nodes = list(ast.walk(tree))
    names: set[str] = set()
    for top in nodes:
        for node in ast.walk(top) if module_level_only else [top]:
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from a.b import c": the module a.b.c if there is one, else a.b
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_sbs_never_imports_workers_and_adaptation_never_imports_django():
    problems = []
    for name, path in _modules().items():
        imported = _imports(path, module_level_only=False)
        if name.startswith("sbs") and any(i.split(".")[0] == "workers" for i in imported):
            problems.append(f"{name} imports workers")
        if name.startswith("adaptation") and any(
            i.split(".")[0] in ("django", "sbs", "workers") for i in imported
        ):
            problems.append(f"{name} imports Django or the web app")
    assert problems == []


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for imported in _imports(path, module_level_only=False):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                graph[name].add(imported)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(modules):
        if node not in state:
            visit(node, [])
    assert cycles == []
