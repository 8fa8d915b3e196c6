"""Each distribution declares exactly what it imports, and the core never imports a backend."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

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
    return modules_imported_by(source_root.rglob("*.py"))


def modules_imported_by(paths: Iterable[Path]) -> set[str]:
    """Top-level modules the source files ``paths`` import (as :func:`imported_modules`)."""
    names: set[str] = set()
    for path in paths:
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


#: The core's framework integrations: extra -> the distributions its module (named as the extra)
#: imports beyond the core's own dependencies. Nothing else in the core may import them.
FRAMEWORK_EXTRAS = {
    "lightning": {"lightning"},
    "accelerate": {"accelerate"},
    "transformers": {"transformers"},
}
CORE_MODULES = ROOT / "noether-trackers-core" / "src" / "noether" / "core" / "trackers"


@pytest.mark.parametrize("extra", FRAMEWORK_EXTRAS)
def test_a_framework_extra_installs_exactly_what_its_integration_imports(extra: str) -> None:
    project = project_of(ROOT / "noether-trackers-core")
    declared = requirement_names(project["optional-dependencies"][extra])
    imported = distributions_of(modules_imported_by([CORE_MODULES / f"{extra}.py"]), set())
    beyond_the_core = imported - requirement_names(project["dependencies"])
    assert beyond_the_core - {"noether-trackers-core"} == declared == FRAMEWORK_EXTRAS[extra]


def test_only_the_integration_modules_import_a_framework() -> None:
    integrations = {CORE_MODULES / f"{extra}.py" for extra in FRAMEWORK_EXTRAS}
    others = [path for path in CORE_MODULES.rglob("*.py") if path not in integrations]
    assert len(others) > 30
    frameworks = {*FRAMEWORK_EXTRAS, "torch", "hydra", "pytorch_lightning"}
    assert modules_imported_by(others) & frameworks == set()


# What PyPI shows for the four published distributions (scripts/check-wheels checks the same in
# the built wheels' METADATA, with twine and PyPI's own readme renderer and classifier list).
PUBLISHED = sorted(ROOT.glob("noether-trackers-*"))
PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: 3\.(\d+)$")


def project_of(distribution: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((distribution / "pyproject.toml").read_text())[
        "project"
    ]
    return project


def python_minors(project: dict[str, Any]) -> list[int]:
    return sorted(
        int(match[1])
        for classifier in project.get("classifiers", [])
        if (match := PYTHON_CLASSIFIER.match(classifier))
    )


def test_the_published_distributions_are_the_four_of_the_readme() -> None:
    assert [path.name for path in PUBLISHED] == [
        "noether-trackers-core",
        "noether-trackers-tensorboard",
        "noether-trackers-trackio",
        "noether-trackers-wandb",
    ]


@pytest.mark.parametrize("distribution", PUBLISHED, ids=lambda path: path.name)
def test_a_published_distribution_has_a_readme_pypi_can_show(distribution: Path) -> None:
    project = project_of(distribution)
    assert project["description"].strip()
    readme = distribution / project["readme"]
    assert readme.suffix == ".md" and readme.read_text().strip()
    links = re.findall(r"\]\(\s*<?([^)\s>]+)", readme.read_text())
    relative = [link for link in links if not re.match(r"(https?:|mailto:|#)", link)]
    assert relative == [], "relative links in a readme are dead on PyPI"


@pytest.mark.parametrize("distribution", PUBLISHED, ids=lambda path: path.name)
def test_a_published_distribution_states_its_license_and_python_versions(
    distribution: Path,
) -> None:
    project = project_of(distribution)
    classifiers = project.get("classifiers", [])
    # PEP 639: an SPDX expression, and then no `License ::` classifier beside it
    assert isinstance(project.get("license"), str) and project["license"].strip()
    assert not [classifier for classifier in classifiers if classifier.startswith("License ::")]
    allowed = SpecifierSet(project["requires-python"])
    minors = python_minors(project)
    assert minors, "no 'Programming Language :: Python :: 3.X' classifier"
    assert Version(f"3.{minors[0]}") in allowed
    assert Version(f"3.{minors[0] - 1}") not in allowed, "the lowest Python allowed is not named"
    assert minors == list(range(minors[0], minors[-1] + 1)), "a Python version is skipped"
    assert all(Version(f"3.{minor}") in allowed for minor in minors)
    assert sys.version_info[1] in minors, "the Python the suite runs on is not named"
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    assert len(set(classifiers)) == len(classifiers), "a classifier is repeated"


def test_the_published_distributions_agree_on_version_license_and_python() -> None:
    projects = {path.name: project_of(path) for path in PUBLISHED}

    def field(value_of: Callable[[dict[str, Any]], object]) -> set[str]:
        return {repr(value_of(project)) for project in projects.values()}

    assert len(field(lambda project: project["version"])) == 1
    assert len(field(lambda project: project["license"])) == 1
    assert len(field(lambda project: project["requires-python"])) == 1
    assert len(field(python_minors)) == 1
    core_version = Version(projects["noether-trackers-core"]["version"])
    for name, project in projects.items():
        for requirement in map(Requirement, project.get("dependencies", [])):
            if canonical(requirement.name) == "noether-trackers-core":
                assert core_version in requirement.specifier, name


@pytest.mark.parametrize("distribution", PUBLISHED, ids=lambda path: path.name)
def test_a_published_distribution_links_its_project_pages(distribution: Path) -> None:
    urls = project_of(distribution).get("urls", {})
    assert urls, "no [project.urls]"
    assert all(url.startswith("https://") for url in urls.values())
