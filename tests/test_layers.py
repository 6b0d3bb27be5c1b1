"""The layers hold: `agents` imports nothing of moot's other packages, `protocols` nothing of
`orchestrator`, Ray is imported in `orchestrator.ray_runtime` only, and no two modules import
each other round a cycle. Read from the source (ast), so that a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "protocols", "orchestrator")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, everywhere: bool) -> set[str]:
    """Modules `path` imports: anywhere in it, or at module level outside TYPE_CHECKING only."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST] = []
    if everywhere:
        nodes = list(ast.walk(tree))
    else:
        for stmt in tree.body:
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                continue
            nodes.append(stmt)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _sources() -> dict[str, Path]:
    return {_module(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_agents_and_protocols_sit_below_the_orchestrator() -> None:
    wrong = []
    for name, path in _sources().items():
        top = name.split(".")[0]
        banned = {"agents": ("protocols", "orchestrator"), "protocols": ("orchestrator",)}.get(top, ())
        wrong += [f"{name} imports {m}" for m in _imports(path, everywhere=True) if m.split(".")[0] in banned]
    assert wrong == []


def test_ray_is_imported_by_the_ray_runtime_only() -> None:
    users = sorted(
        name
        for name, path in _sources().items()
        if any(m == "ray" or m.startswith("ray.") for m in _imports(path, everywhere=True))
    )
    assert users == ["orchestrator.ray_runtime"]


def test_no_import_cycle_among_moots_modules() -> None:
    sources = _sources()
    graph = nx.DiGraph()
    for name, path in sources.items():
        graph.add_node(name)
        for m in _imports(path, everywhere=False):
            if m in sources and m != name:
                graph.add_edge(name, m)
    assert list(nx.simple_cycles(graph)) == []
