"""Each distribution declares exactly what it imports, and the core never imports a backend."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [
    *sorted(ROOT.glob("noether-trackers-*")),
    ROOT / "examples" / "noether-trackers-csv",
]
BACKENDS = {"tensorboard", "wandb", "trackio"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {
        canonical(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
        for requirement in requirements
    }


def imported_modules(source_root: Path) -> set[str]:
    """Top-level modules imported anywhere in the sources (also lazily, inside functions, and
    through ``importlib.import_module("name")``)."""
    names: set[str] = set()
    for path in source_root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value).split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__"}


def distributions_of(modules: set[str], own: set[str]) -> set[str]:
    provided_by = importlib.metadata.packages_distributions()
    found = set()
    if "noether" in modules - own:  # editable installs are not in packages_distributions()
        found.add("noether-trackers-core")
    for module in modules - own - {"noether"}:
        assert module in provided_by, f"no installed distribution provides {module!r}"
        found.update(canonical(name) for name in provided_by[module])
    return found


@pytest.mark.parametrize("distribution", DISTRIBUTIONS, ids=lambda path: path.name)
def test_a_distribution_declares_exactly_what_it_imports(distribution: Path) -> None:
    project = tomllib.loads((distribution / "pyproject.toml").read_text())["project"]
    required = requirement_names(project.get("dependencies", []))
    optional = requirement_names(
        [req for reqs in project.get("optional-dependencies", {}).values() for req in reqs]
    )
    own = {path.name for path in (distribution / "src").iterdir() if path.is_dir()}
    imported = distributions_of(imported_modules(distribution / "src"), own)
    imported.discard(canonical(project["name"]))
    if "noether" not in own:  # plugins import the core through the `noether` namespace
        imported = {name for name in imported if name != "noether-trackers-core"} | {
            "noether-trackers-core"
        }
    assert imported - required - optional == set(), "imported but not declared"
    assert required - imported == set(), "declared but never imported"


def test_the_core_never_imports_a_backend_library() -> None:
    core_imports = imported_modules(ROOT / "noether-trackers-core" / "src")
    assert core_imports & BACKENDS == set()
