"""No import cycle among toolkit's modules, type-only ones included.

Every ``import``/``from ... import`` statement counts, wherever it is: at module level, under
``if TYPE_CHECKING:``, inside a function. A cycle of type-only imports still means two modules
that know each other, which is what this test forbids.

How the graph is built:

- an edge goes from the importing module to the module the statement names, resolved to an absolute
  name (relative imports included); imports of modules outside the package are ignored;
- ``from .x import name`` where ``x.name`` is itself a module is an import of that module (and
  not of ``x``'s ``__init__``); otherwise it is an import of ``x``;
- importing a package (``from .sessions import Store``, ``import toolkit.security``) is an import
  of its ``__init__.py``, which imports whatever that ``__init__`` imports;
- the parent packages Python runs before a submodule are not edges: a package ``__init__``
  re-exporting its own submodules is no cycle by itself. A submodule that imports its own package
  back (``from .. import App``, ``from . import X`` where X is not a module) is one.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "toolkit"  # read, never imported


@dataclasses.dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    where: str  # "toolkit/cache.py:12"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``: dotted name -> file."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module name a (possibly relative) import statement names."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]  # a module's relative imports start from its package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def import_edges(root: Path, package: str) -> list[Edge]:
    """Every import of one of the package's modules by one of them (each statement once)."""
    modules = module_files(root, package)
    edges: list[Edge] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        where = path.relative_to(root.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                # "import toolkit.a.b" of an unknown name: its longest known prefix.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target:
                    edges.append(Edge(module, target, f"{where}:{node.lineno}"))
    return sorted(set(edges), key=lambda e: (e.source, e.target, e.where))


def graph_of(edges: list[Edge]) -> dict[str, dict[str, list[str]]]:
    """source -> target -> where each import of target by source is."""
    graph: dict[str, dict[str, list[str]]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, []).append(edge.where)
        graph.setdefault(edge.target, {})
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (each as a sorted list)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def elementary_cycles(graph: dict[str, dict[str, list[str]]], limit: int = 100) -> list[list[str]]:
    """Every cycle that visits no module twice (up to ``limit``), each as [first, ..., first]
    starting from its smallest module, shortest first. Only modules of one strongly connected
    component can share a cycle, so the search stays inside each component."""
    cycles: list[list[str]] = []
    for component in strongly_connected(graph):
        members = set(component)
        for start in component:  # sorted: each cycle is found once, from its smallest module
            path = [start]
            work = [iter(sorted(graph[start]))]
            while work and len(cycles) < limit:
                child = next(work[-1], None)
                if child is None:
                    work.pop()
                    path.pop()
                elif child == start:
                    cycles.append([*path, start])
                elif child in members and child > start and child not in path:
                    path.append(child)
                    work.append(iter(sorted(graph[child])))
    return sorted(cycles, key=lambda cycle: (len(cycle), cycle))


def find_cycles(edges: list[Edge]) -> list[list[str]]:
    """Every import cycle among the modules (self-imports included)."""
    return elementary_cycles(graph_of(edges))


def describe(cycle: list[str], edges: list[Edge]) -> str:
    graph = graph_of(edges)
    lines = [" -> ".join(cycle)]
    for source, target in itertools.pairwise(cycle):
        lines.append(f"    {source} -> {target}: {', '.join(graph[source][target])}")
    return "\n".join(lines)


# --- the package ------------------------------------------------------------------------------


def test_toolkit_has_no_import_cycle() -> None:
    edges = import_edges(PACKAGE_ROOT, "toolkit")
    cycles = find_cycles(edges)
    tangled = [c for c in strongly_connected(graph_of(edges)) if len(c) > 1]
    report = "\n".join(
        [*(f"modules importing each other: {', '.join(c)}" for c in tangled)]
        + [describe(cycle, edges) for cycle in cycles]
    )
    assert not cycles, f"{len(cycles)} import cycle(s) in toolkit:\n{report}"


def test_the_graph_sees_the_package() -> None:
    """Guard against a vacuous pass: the graph finds the modules and imports we know of."""
    edges = {(edge.source, edge.target) for edge in import_edges(PACKAGE_ROOT, "toolkit")}
    assert ("toolkit", "toolkit.app") in edges
    assert ("toolkit.app", "toolkit.routing") in edges
    assert ("toolkit.routing", "toolkit._trie") in edges
    assert ("toolkit.openapi", "toolkit.openapi._builder") in edges
    assert len(module_files(PACKAGE_ROOT, "toolkit")) > 30


# --- the graph builder, on a made-up package -------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _cycles(root: Path) -> list[str]:
    return [" -> ".join(cycle) for cycle in find_cycles(import_edges(root, "pkg"))]


def test_type_only_and_function_level_imports_count(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
            "b.py": "def f():\n    from . import a\n",
        },
    )
    assert _cycles(root) == ["pkg.a -> pkg.b -> pkg.a"]


def test_package_init_reexports_are_not_a_cycle(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .a import A\nfrom .sub import S\n",
            "a.py": "from .sub import _s\nfrom .sub._s import S\nimport pkg.sub._s\n",
            "sub/__init__.py": "from ._s import S\n",
            "sub/_s.py": "from .. import a as _a_module\nimport os\n",
        },
    )
    assert _cycles(root) == ["pkg.a -> pkg.sub._s -> pkg.a"]
    (root / "sub/_s.py").write_text("import os\n", encoding="utf-8")
    assert _cycles(root) == []


def test_importing_a_package_back_is_a_cycle(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "from .app import App\n",
            "app.py": "from .sub import thing\n",
            "sub/__init__.py": "from ._s import thing\n",
            "sub/_s.py": "from .. import App\nthing = 1\n",
        },
    )
    assert _cycles(root) == ["pkg -> pkg.app -> pkg.sub -> pkg.sub._s -> pkg"]


def test_relative_levels_resolve(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {"x/__init__.py": "from . import y\n", "x/y.py": "from ..z import Z\n", "z.py": "import pkg.x.y\n"},
    )
    edges = {(e.source, e.target) for e in import_edges(root, "pkg")}
    assert edges == {("pkg.x", "pkg.x.y"), ("pkg.x.y", "pkg.z"), ("pkg.z", "pkg.x.y")}
    assert _cycles(root) == ["pkg.x.y -> pkg.z -> pkg.x.y"]


@pytest.mark.parametrize("text", ["from . import m\n", "from .m import thing\n", "import pkg.m\n"])
def test_a_module_importing_itself_is_a_cycle(tmp_path: Path, text: str) -> None:
    root = _package(tmp_path, {"m.py": text})
    assert _cycles(root) == ["pkg.m -> pkg.m"]
