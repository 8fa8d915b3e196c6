"""``noether-trackers new-plugin NAME`` writes a plugin distribution that works once its stubs
are written, and whose stubs fail the conformance kit loudly until then.

The generated distributions are installed as a user installs them (not editable: built into a
wheel by their own build backend, with pip) into a folder of their own, and their own tests run
in a fresh Python with that folder on its path, so the kit finds the plugin through the entry
point of the installed wheel. The example CSV plugin is what ``new-plugin csv`` writes, with the
backend filled in: a test keeps the two from drifting apart.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib
from isolation import ISOLATED_DIRS

import noether.core.trackers
from noether.core.trackers import cli, new_plugin
from noether.core.trackers.testing import TrackerConformanceTests

ROOT = Path(__file__).resolve().parents[1]
CSV_EXAMPLE = ROOT / "examples" / "noether-trackers-csv"
#: Where every stub points (followed by the method's anchor).
REFERENCE = "docs/plugin-reference.md#"
#: The tests of the kit; a filled-in plugin passes every one.
KIT_TESTS = [name for name in vars(TrackerConformanceTests) if name.startswith("test_")]
#: Folders that building, installing or testing a distribution leaves behind.
NOT_PART_OF_IT = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "build", "dist"}


def new_plugin_command(*arguments: str) -> int:
    """``noether-trackers new-plugin ARGUMENTS``, run in this process; its exit status."""
    return cli.main(["new-plugin", *arguments])


# ---- filling in a generated plugin ---------------------------------------------------------------


def fill(path: Path, bodies: dict[str, str], *, imports: str = "", methods: str = "") -> None:
    """Write the methods of the (one) class in ``path`` as a plugin author would: replace the
    body after the docstring of each method named in ``bodies``, add ``imports`` after
    ``from __future__ import annotations`` and ``methods`` at the end of the class (the last
    statement of the module). The generated signatures and docstrings stay."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    [cls] = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert cls is tree.body[-1], "the class is not the last statement of the module"
    defined = {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}
    assert set(bodies) <= set(defined), f"not generated: {set(bodies) - set(defined)}"
    lines = source.splitlines(keepends=True)
    for name in sorted(bodies, key=lambda name: defined[name].lineno, reverse=True):
        method = defined[name]
        assert ast.get_docstring(method) is not None, f"{name} has no docstring"
        start, end = method.body[0].end_lineno, method.end_lineno
        assert start is not None and end is not None
        body = "".join(f"        {line}\n" if line else "\n" for line in bodies[name].split("\n"))
        lines[start:end] = [body]
    text = "".join(lines).rstrip("\n") + "\n"
    if methods:
        text += "\n" + "".join(f"    {line}\n" if line else "\n" for line in methods.split("\n"))
    future = "from __future__ import annotations\n"
    assert future in text
    path.write_text(text.replace(future, future + imports, 1), encoding="utf-8")


MEMO_TRACKER = {
    "__init__": "super().__init__(output_path=output_path)\nself.path: str | None = None",
    "_init": """directory = os.path.join(self.output_path or os.getcwd(), "memo")
os.makedirs(directory, exist_ok=True)
self.path = os.path.join(directory, safe_component(run.run_id) + ".jsonl")
self._write({"record": "config", "config": run.config})""",
    "_log": (
        'self._write({"record": "log", "step": step, "values": values, "wall_time": wall_time})'
    ),
    "_update_summary": """self._write({"record": "summary", "values": values})""",
    "_close": """self._write({"record": "close", "status": status})""",
}
MEMO_WRITE = """def _write(self, record):
    assert self.path is not None
    with open(self.path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record, default=dict) + "\\n")"""
MEMO_READ_BACK = {
    "read_back": """assert isinstance(tracker, MemoTracker) and tracker.path is not None
stored = StoredRun(texts={}, config={}, summary={})
with open(tracker.path, encoding="utf-8") as stream:
    for record in map(json.loads, stream):
        if record["record"] == "config":
            stored.config = record["config"]
        elif record["record"] == "summary":
            stored.summary.update(record["values"])
        elif record["record"] == "log":
            # when the user called log(): a time.time() of this run
            assert abs(record["wall_time"] - time.time()) < 600, record
            for key, value in record["values"].items():
                points = stored.texts if isinstance(value, str) else stored.scalars
                points.setdefault(key, []).append((record["step"], value))
return stored"""
}


def fill_memo(distribution: Path) -> None:
    """Write the ``memo`` backend into the generated ``noether-trackers-memo``: one JSON-lines
    file per run in the output path, and a ``read_back`` that parses it."""
    fill(
        distribution / "src" / "noether_trackers_memo" / "tracker.py",
        MEMO_TRACKER,
        imports="import json\n\nfrom noether.core.trackers.plugin import safe_component\n",
        methods=MEMO_WRITE,
    )
    fill(
        distribution / "tests" / "test_conformance.py",
        MEMO_READ_BACK,
        imports="import json\nimport time\n",
    )


# ---- installing and running it -------------------------------------------------------------------


@dataclass
class Installed:
    """Generated distributions, installed (not editable) into ``site``."""

    site: Path
    memo: Path  # noether-trackers-memo, filled in
    stub: Path  # noether-trackers-stub, as generated


def isolated(root: Path) -> dict[str, str]:
    """This environment with HOME and the backends' directories inside ``root`` (for what runs
    before the suite's per-test isolation does)."""
    env = dict(os.environ)
    for variable, relative in ISOLATED_DIRS.items():
        (root / relative).mkdir(parents=True, exist_ok=True)
        env[variable] = str(root / relative)
    return env


def pip_install(target: Path, distributions: list[Path], env: dict[str, str]) -> None:
    """Build the wheels of ``distributions`` with their own build backend and install them,
    without their dependencies (the core is here), into ``target``. With hatchling installed
    here nothing is downloaded; otherwise pip fetches it from the configured package index
    into an isolated build environment, as for any user's install."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target)]
    if importlib.util.find_spec("hatchling") is not None:
        command += ["--no-index", "--no-build-isolation"]
    done = subprocess.run(
        [*command, *map(str, distributions)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``new-plugin memo`` (filled in) and ``new-plugin stub`` (as generated), installed."""
    root = tmp_path_factory.mktemp("new-plugin")
    plugins = root / "plugins"
    for name in ("memo", "stub"):
        assert new_plugin_command(name, "--dest", str(plugins)) == 0
    fill_memo(plugins / "noether-trackers-memo")
    site = root / "site"
    pip_install(
        site,
        [plugins / "noether-trackers-memo", plugins / "noether-trackers-stub"],
        isolated(root / "env"),
    )
    return Installed(site, plugins / "noether-trackers-memo", plugins / "noether-trackers-stub")


def run_kit(distribution: Path, site: Path, env: dict[str, str], *options: str) -> tuple[int, str]:
    """Run the distribution's own tests (``pytest`` in its folder, outside this repository, so
    none of its configuration applies) with ``site`` on the path; exit status and output."""
    path = [str(site), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options, "tests"],
        capture_output=True,
        text=True,
        cwd=distribution,
        env={**env, "PYTHONPATH": os.pathsep.join(path)},
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def counts(output: str) -> dict[str, int]:
    """The counts of pytest's last line: ``{"passed": 12, "failed": 1, ...}``."""
    last = output.strip().splitlines()[-1]
    return {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", last)}


# ---- the tests -----------------------------------------------------------------------------------


def test_a_filled_in_plugin_passes_the_whole_kit_installed_from_its_wheel(
    installed: Installed, subprocess_env: dict[str, str]
) -> None:
    package = installed.site / "noether_trackers_memo"
    assert (package / "tracker.py").is_file() and (package / "plugin.py").is_file()
    [entry_points] = installed.site.glob("noether_trackers_memo-*.dist-info/entry_points.txt")
    assert "memo = noether_trackers_memo.plugin" in entry_points.read_text()
    assert not list(installed.site.glob("*.pth")), "installed editable"

    status, output = run_kit(installed.memo, installed.site, subprocess_env)

    assert status == 0, output
    passed = counts(output)
    assert set(passed) == {"passed"} and passed["passed"] >= len(KIT_TESTS), output


def test_the_generated_stubs_fail_the_kit_pointing_to_the_reference(
    installed: Installed, subprocess_env: dict[str, str]
) -> None:
    # -x: every kit test that starts the backend fails on the first stub, _init
    status, output = run_kit(installed.stub, installed.site, subprocess_env, "-x")

    assert status == 1, output
    assert counts(output)["failed"] == 1, output
    stub = "NotImplementedError: StubTracker._init: start the backend's run"
    assert f"{stub}; see {REFERENCE}_init" in output, output


def load_module(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_stub_raises_and_names_its_section_of_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distribution = new_plugin.write_plugin("stub", tmp_path)
    package = distribution / "src" / "noether_trackers_stub"
    tracker_module = load_module(package / "tracker.py", "noether_trackers_stub.tracker")
    monkeypatch.setitem(sys.modules, "noether_trackers_stub", types.ModuleType("x"))
    monkeypatch.setitem(sys.modules, "noether_trackers_stub.tracker", tracker_module)
    tests = load_module(distribution / "tests" / "test_conformance.py", "stub_conformance")
    tracker = tracker_module.StubTracker(output_path=tmp_path)
    assert tracker.plugin_api == noether.core.trackers.PLUGIN_API
    stubs: dict[str, Any] = {
        "_init": lambda: tracker._init(None),
        "_log": lambda: tracker._log({"loss": 1.0}, 0, wall_time=0.0),
        "_update_summary": lambda: tracker._update_summary({"loss": 1.0}),
        "_close": lambda: tracker._close("finished"),
        "trackerconformancetests": lambda: tests.TestStubTracker().read_back(tracker),
    }
    for anchor, call in stubs.items():
        with pytest.raises(NotImplementedError, match=re.escape(f"see {REFERENCE}{anchor}")):
            call()
    # the optional ones keep the core's defaults
    tracker._flush()
    assert tracker.run_location() is None


def test_every_link_to_the_reference_leads_to_a_section_of_it(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "plugin-reference.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", page, flags=re.MULTILINE)
    sections = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
    distribution = new_plugin.write_plugin("stub", tmp_path)
    links = {
        anchor
        for path in distribution.rglob("*")
        if path.is_file()
        for anchor in re.findall(re.escape(REFERENCE) + r"([\w-]+)", path.read_text())
    }
    assert len(links) >= 7 and links <= sections, links - sections


@pytest.mark.parametrize(
    ("name", "kind", "distribution", "package", "class_name"),
    [
        ("mlflow", None, "noether-trackers-mlflow", "noether_trackers_mlflow", "MlflowTracker"),
        ("my-db", None, "noether-trackers-my-db", "noether_trackers_my_db", "MyDbTracker"),
        (
            "neptune_ai",
            "neptune",
            "noether-trackers-neptune-ai",
            "noether_trackers_neptune_ai",
            "NeptuneAiTracker",
        ),
        ("s3", None, "noether-trackers-s3", "noether_trackers_s3", "S3Tracker"),
    ],
)
def test_the_names_come_from_the_backend_name(
    tmp_path: Path,
    name: str,
    kind: str | None,
    distribution: str,
    package: str,
    class_name: str,
) -> None:
    written = new_plugin.write_plugin(name, tmp_path, kind=kind)

    assert written == tmp_path / distribution
    project = tomllib.loads((written / "pyproject.toml").read_text())
    assert project["project"]["name"] == distribution
    entry_points = project["project"]["entry-points"]["noether.trackers"]
    assert entry_points == {kind or name: f"{package}.plugin"}
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [f"src/{package}"]
    assert project["project"]["dependencies"] == ["noether-trackers-core>=0.1.0,<1"]
    assert project["project"]["optional-dependencies"]["test"] == [
        "noether-trackers-core[testing]>=0.1.0,<1"
    ]
    assert (
        f"class {class_name}(BaseTracker):"
        in (written / "src" / package / "tracker.py").read_text()
    )
    assert (
        f'register({class_name}, kind="{kind or name}")'
        in (written / "src" / package / "plugin.py").read_text()
    )


def test_the_command_says_what_it_wrote_and_what_to_run_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert new_plugin_command("mlflow", "--dest", str(tmp_path)) == 0

    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'noether-trackers-mlflow'}/" in out
    for path in generated_files(tmp_path / "noether-trackers-mlflow"):
        assert f"  {path}\n" in out
    assert "-m pip install -e '.[test]'" in out and "-m pytest tests" in out


BAD_NAMES = {
    "": "it is empty",
    "   ": "it is empty",
    "../x": "lowercase ASCII letters and digits",
    "my plugin": "lowercase ASCII letters and digits",
    "a/b": "lowercase ASCII letters and digits",
    "1password": "it must start with a letter",
    "-x": "lowercase ASCII letters and digits",
    "x--y": "lowercase ASCII letters and digits",
    "x-": "lowercase ASCII letters and digits",
    "Mlflow": "use lowercase, e.g. 'mlflow'",
    "noether-trackers-mlflow": "without 'noether-trackers-', e.g. 'mlflow'",
    "mlflöw": "lowercase ASCII letters and digits",
    "a" * 25: "it is longer than 24 characters",
}


@pytest.mark.parametrize(("name", "why"), BAD_NAMES.items())
def test_a_bad_name_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, why: str
) -> None:
    message = re.escape(f"invalid plugin name {name!r}: ") + ".*" + re.escape(why)
    with pytest.raises(ValueError, match=message):
        new_plugin.write_plugin(name, tmp_path)
    assert new_plugin_command("--dest", str(tmp_path), "--", name) == 2
    assert f"invalid plugin name {name!r}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_bad_kind_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("invalid kind 'ml flow'")):
        new_plugin.write_plugin("mlflow", tmp_path, kind="ml flow")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "noether-trackers-mlflow"
    existing.mkdir()
    (existing / "tracker.py").write_text("mine")

    with pytest.raises(FileExistsError, match="noether-trackers-mlflow exists already"):
        new_plugin.write_plugin("mlflow", tmp_path)
    assert new_plugin_command("mlflow", "--dest", str(tmp_path)) == 2
    assert "exists already; not overwriting it" in capsys.readouterr().err

    assert [path.name for path in tmp_path.iterdir()] == [existing.name]
    assert [path.name for path in existing.iterdir()] == ["tracker.py"]
    assert (existing / "tracker.py").read_text() == "mine"


def test_the_generated_distribution_passes_ruff_and_mypy(tmp_path: Path) -> None:
    """With the repository's settings, and the longest name for the longest lines."""
    name = "a-long-backend-name-24ch"
    assert len(name) == new_plugin.MAX_NAME_LENGTH
    distribution = new_plugin.write_plugin(name, tmp_path, kind=name)
    config = str(ROOT / "pyproject.toml")
    for ruff in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *ruff, "--no-cache", "--config", config, "."],
            capture_output=True,
            text=True,
            cwd=distribution,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--explicit-package-bases",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "src",
            "tests",
        ],
        capture_output=True,
        text=True,
        cwd=distribution,
        env={**os.environ, "MYPYPATH": f"src{os.pathsep}{ROOT / 'noether-trackers-core' / 'src'}"},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the CSV example is the template, filled in --------------------------------------------------


def generated_files(distribution: Path) -> list[str]:
    """The distribution's files (what building or testing it leaves behind excepted)."""
    found = []
    for parent, folders, names in os.walk(distribution):
        folders[:] = [
            name for name in folders if name not in NOT_PART_OF_IT and ".egg-info" not in name
        ]
        found += [(Path(parent) / name).relative_to(distribution).as_posix() for name in names]
    return sorted(found)


@dataclass
class ClassShape:
    """A class of a module: its bases, its methods' signatures and its class attributes."""

    bases: list[str]
    methods: dict[str, str]  # name -> parameters and return annotation
    attributes: dict[str, Any]  # name -> value (a constant) or ``...``


def class_shapes(path: Path) -> dict[str, ClassShape]:
    """The classes defined in the module at ``path``, by name."""
    shapes = {}
    for cls in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(cls, ast.ClassDef):
            shape = shapes[cls.name] = ClassShape([ast.unparse(base) for base in cls.bases], {}, {})
            for node in cls.body:
                if isinstance(node, ast.FunctionDef):
                    returns = ast.unparse(node.returns) if node.returns else ""
                    shape.methods[node.name] = f"({ast.unparse(node.args)}) -> {returns}"
                elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    value = node.value
                    constant = value.value if isinstance(value, ast.Constant) else ...
                    shape.attributes[node.targets[0].id] = constant
    return shapes


def test_the_csv_example_is_the_template_filled_in(tmp_path: Path) -> None:
    template = new_plugin.write_plugin("csv", tmp_path)
    package = Path("src") / "noether_trackers_csv"

    assert generated_files(CSV_EXAMPLE) == generated_files(template)
    # nothing to fill in there
    for same in (package / "__init__.py", package / "plugin.py"):
        assert (CSV_EXAMPLE / same).read_text() == (template / same).read_text(), same

    ours = tomllib.loads((CSV_EXAMPLE / "pyproject.toml").read_text())
    generated = tomllib.loads((template / "pyproject.toml").read_text())
    assert ours["build-system"] == generated["build-system"]
    assert ours["tool"] == generated["tool"]
    for key in ("entry-points", "optional-dependencies", "dependencies", "requires-python"):
        assert ours["project"][key] == generated["project"][key], key
    assert set(generated["project"]) <= set(ours["project"])

    # every generated class, method and attribute is there, with the generated signature and
    # the generated values of plugin_api and kind; the CSV backend has options (parameters of
    # __init__) and may add methods and attributes of its own
    for module in (package / "tracker.py", Path("tests") / "test_conformance.py"):
        ours_shapes, generated_shapes = (
            class_shapes(path / module) for path in (CSV_EXAMPLE, template)
        )
        assert set(ours_shapes) == set(generated_shapes), module
        for name, generated_shape in generated_shapes.items():
            shape = ours_shapes[name]
            assert shape.bases == generated_shape.bases, (module, name)
            assert set(generated_shape.methods) <= set(shape.methods), (module, name)
            for method, signature in generated_shape.methods.items():
                if method != "__init__":
                    assert shape.methods[method] == signature, (module, name, method)
            assert set(generated_shape.attributes) <= set(shape.attributes), (module, name)
            for attribute in {"plugin_api", "kind"} & set(generated_shape.attributes):
                assert shape.attributes[attribute] == generated_shape.attributes[attribute]

    readme, generated_readme = (
        (path / "README.md").read_text().splitlines() for path in (CSV_EXAMPLE, template)
    )
    assert readme[0] == generated_readme[0]
    headings = [line for line in generated_readme if line.startswith("#")]
    assert [line for line in readme if line in headings] == headings
