"""The modules of ``noether.core`` import each other without cycles.

The graph counts every import statement in a module, wherever it sits: at the top, inside a
function or method, or under ``if TYPE_CHECKING:``. A cycle through a deferred import still
couples the modules both ways and is what the layering of the core rules out.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE_ROOT = REPO / "noether-trackers-core" / "src" / "noether" / "core"
CORE_PACKAGE = "noether.core"

#: Module name -> names of the modules of the same tree it imports.
Graph = dict[str, set[str]]


def module_name(path: Path, root: Path, package: str) -> str:
    """``package.a.b`` for ``root/a/b.py``, and ``package.a`` for ``root/a/__init__.py``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imported_modules(
    tree: ast.Module, module: str, is_package: bool, modules: set[str]
) -> set[str]:
    """The modules of ``modules`` that the import statements anywhere in ``tree`` name."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # ``from . import x`` in a package's __init__ is relative to that package.
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                base = ".".join(anchor[: len(anchor) - drop])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    # Names outside the tree (the standard library, other packages) are not edges.
    return found & modules


def import_graph(root: Path, package: str) -> Graph:
    """The import graph of the modules under ``root``, the folder of ``package``."""
    paths = {module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}
    modules = set(paths)
    graph: Graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = imported_modules(tree, name, path.name == "__init__.py", modules)
    return graph


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm; each component sorted, the components in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            split = stack.index(node)
            components.append(sorted(stack[split:]))
            del stack[split:]

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def cycle_through_first(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle from ``component[0]`` back to itself inside ``component``."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & members):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"no cycle through {start} in {component}")


def import_cycles(graph: Graph, package: str) -> list[str]:
    """One cycle per strongly connected component, as ``a -> b -> a`` without ``package.``."""
    cycles = []
    for component in strongly_connected_components(graph):
        first = component[0]
        if len(component) == 1 and first not in graph[first]:
            continue
        cycle = cycle_through_first(graph, component)
        cycles.append(" -> ".join(name.removeprefix(f"{package}.") for name in cycle))
    return cycles


def test_the_core_has_no_import_cycle() -> None:
    cycles = import_cycles(import_graph(CORE_ROOT, CORE_PACKAGE), CORE_PACKAGE)
    assert not cycles, "import cycles in noether.core:\n" + "\n".join(cycles)


def test_the_graph_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    root = tmp_path / "synth" / "pkg"
    root.mkdir(parents=True)
    (root / "a.py").write_text("import os\n\nimport synth.pkg.b\n")
    (root / "b.py").write_text("def later() -> None:\n    from . import c\n")
    (root / "c.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from synth.pkg.a import Thing\n"
    )

    graph = import_graph(root, "synth.pkg")

    assert graph == {
        "synth.pkg.a": {"synth.pkg.b"},
        "synth.pkg.b": {"synth.pkg.c"},
        "synth.pkg.c": {"synth.pkg.a"},
    }
    assert import_cycles(graph, "synth.pkg") == ["a -> b -> c -> a"]


def test_relative_imports_resolve_against_their_package(tmp_path: Path) -> None:
    root = tmp_path / "synth" / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "__init__.py").write_text("from . import leaf\nfrom .. import top\n")
    (root / "sub" / "leaf.py").write_text("from ..top import Thing\n")
    (root / "top.py").write_text("from synth.pkg import sub\n")

    graph = import_graph(root, "synth.pkg")

    # No edge from a module to the package that merely contains it.
    assert graph == {
        "synth.pkg.sub": {"synth.pkg.sub.leaf", "synth.pkg.top"},
        "synth.pkg.sub.leaf": {"synth.pkg.top"},
        "synth.pkg.top": {"synth.pkg.sub"},
    }
    assert import_cycles(graph, "synth.pkg") == ["sub -> top -> sub"]


def test_the_graph_covers_the_callbacks_and_the_trainer() -> None:
    graph = import_graph(CORE_ROOT, CORE_PACKAGE)

    assert len(graph) == len(list(CORE_ROOT.rglob("*.py")))
    for module in (
        "noether.core.callbacks",
        "noether.core.callbacks.base",
        "noether.core.trackers",
        "noether.core.trackers.trainer",
        "noether.core.trackers._engine.worker",
    ):
        assert module in graph
    assert graph["noether.core.trackers.trainer"], "the trainer imports nothing from the core?"
