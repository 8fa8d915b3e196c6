"""Plugins use only the plugin API of the core: :mod:`noether.core.trackers.plugin`.

Every import statement of every plugin module counts, wherever it sits: at the top, inside a
function, or under ``if TYPE_CHECKING:``. Anything else of ``noether.core`` may change between
releases without notice, so a plugin that reaches for it breaks when the core is upgraded.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

import noether.core.trackers.plugin as plugin_api

REPO = Path(__file__).resolve().parents[1]
PLUGIN_API = "noether.core.trackers.plugin"
CORE = "noether.core"

PLUGIN_FOLDERS = {
    "wandb": REPO / "noether-trackers-wandb" / "src" / "noether_trackers_wandb",
    "trackio": REPO / "noether-trackers-trackio" / "src" / "noether_trackers_trackio",
    "tensorboard": REPO / "noether-trackers-tensorboard" / "src" / "noether_trackers_tensorboard",
    "csv-example": REPO / "examples" / "noether-trackers-csv" / "src" / "noether_trackers_csv",
}


class CoreImport(NamedTuple):
    """One name of the core that a plugin imports, and the statement that imports it."""

    path: Path
    line: int
    statement: str
    name: str

    def __str__(self) -> str:
        shown = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"{shown}:{self.line}: {self.statement}  (imports {self.name})"


def touches_the_core(name: str) -> bool:
    """Whether importing ``name`` reaches into ``noether.core`` (``noether`` itself included)."""
    return name == CORE or name.startswith(f"{CORE}.") or CORE.startswith(f"{name}.")


def is_plugin_api(name: str) -> bool:
    """Whether ``name`` is the plugin module or a name taken from it."""
    return name == PLUGIN_API or name.startswith(f"{PLUGIN_API}.")


def core_imports(folder: Path) -> list[CoreImport]:
    """Every name of ``noether.core`` imported anywhere in the modules under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue  # relative imports stay inside the plugin
            statement = ast.unparse(node)
            found += [
                CoreImport(path, node.lineno, statement, name)
                for name in names
                if touches_the_core(name)
            ]
    return found


def outside_plugin_api(folder: Path) -> list[CoreImport]:
    """The imports of the core under ``folder`` that are not the plugin API."""
    return [found for found in core_imports(folder) if not is_plugin_api(found.name)]


@pytest.mark.parametrize("folder", PLUGIN_FOLDERS.values(), ids=PLUGIN_FOLDERS.keys())
def test_plugins_import_only_the_plugin_api(folder: Path) -> None:
    assert list(folder.rglob("*.py")), f"no modules under {folder}"
    assert core_imports(folder), f"{folder} does not import the plugin API at all?"
    offending = outside_plugin_api(folder)
    assert not offending, f"imports of the core beyond {PLUGIN_API}:\n" + "\n".join(
        str(found) for found in offending
    )


def test_the_checker_finds_deferred_and_type_checking_imports(tmp_path: Path) -> None:
    (tmp_path / "hidden.py").write_text(
        "from __future__ import annotations\n"
        "\n"
        "from typing import TYPE_CHECKING\n"
        "\n"
        "import noether.core.trackers.plugin\n"
        "from noether.core.trackers import plugin\n"
        "from noether.core.trackers.plugin import BaseTracker\n"
        "\n"
        "if TYPE_CHECKING:\n"
        "    import noether.core.trackers.base\n"
        "\n"
        "\n"
        "def f():\n"
        "    from noether.core.trackers._engine.worker import BackendWorker\n"
        "\n"
        "\n"
        "class C:\n"
        "    def m(self):\n"
        "        from noether.core.trackers import base, plugin\n"
        "        from noether import core\n"
    )

    reported = {(found.line, found.name) for found in outside_plugin_api(tmp_path)}

    assert reported == {
        (10, "noether.core.trackers.base"),
        (14, "noether.core.trackers._engine.worker.BackendWorker"),
        (19, "noether.core.trackers.base"),
        (20, "noether.core"),
    }


def test_the_plugin_api_exports_what_it_lists() -> None:
    names = plugin_api.__all__
    assert len(set(names)) == len(names), "duplicate names in __all__"
    missing = [name for name in names if not hasattr(plugin_api, name)]
    assert not missing, f"{PLUGIN_API}.__all__ lists names it does not define: {missing}"
