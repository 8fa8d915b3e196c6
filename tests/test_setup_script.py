"""``scripts/setup`` says what it does and installs nothing when nothing changed.

The suite runs inside the .venv that setup installs into, so no test here makes setup
install into it: the real script runs only when its stamp says the .venv is current (the test
fails, asking for ``scripts/setup``, otherwise); the install path runs in a scratch tree with
a stand-in Python that records what it is asked to do, and the stamp logic is tested on a
scratch tree too.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup"
STAMP = ROOT / ".venv" / ".setup-stamp"
FAST_PATH_STEPS = [
    "setup: workspace (editable), CSV example plugin and dev tools already installed",
    "setup: torch (CPU) already installed",
    "setup: checking dependencies (pip check)",
    "setup: done",
]


def load_setup_stamp() -> ModuleType:
    """``scripts/setup_stamp.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("setup_stamp", ROOT / "scripts/setup_stamp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_stamp = load_setup_stamp()


def test_setup_with_everything_installed_installs_nothing_and_says_so(
    subprocess_env: dict[str, str],
) -> None:
    reason = setup_stamp.stale_reason(STAMP, ROOT)
    assert reason is None, f".venv is not current ({reason}): run scripts/setup, then the tests"
    started = time.monotonic()
    result = subprocess.run(
        [str(SETUP)], env=subprocess_env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"setup: using .venv (Python {sys.version.split()[0]})"
    assert lines[1:] == FAST_PATH_STEPS, result.stdout
    assert elapsed < 20  # a liveness bound: it took about 1 s where the full install takes 26


def make_tree(root: Path) -> Path:
    """A scratch repository with every kind of file setup installs from, and others."""
    files = {
        "pyproject.toml": "[project]\nname = 'workspace'\n",
        "scripts/setup": "#!/bin/sh\n",
        "scripts/setup_stamp.py": "# the stamp\n",
        "noether-trackers-core/pyproject.toml": "[project]\nname = 'core'\n",
        "noether-trackers-core/src/core.py": "VALUE = 1\n",
        "examples/noether-trackers-csv/pyproject.toml": "[project]\nname = 'csv'\n",
        "examples/noether-trackers-csv/README.md": "# csv\n",
        "examples/noether-trackers-csv/src/noether_trackers_csv/tracker.py": "VALUE = 1\n",
        "examples/noether-trackers-csv/tests/test_csv.py": "VALUE = 1\n",
        "docs/index.md": "# docs\n",
    }
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    return root


@pytest.mark.parametrize(
    "changed",
    [
        "pyproject.toml",
        "noether-trackers-core/pyproject.toml",
        "noether-trackers-new/pyproject.toml",  # a new workspace member
        "examples/noether-trackers-csv/pyproject.toml",
        "examples/noether-trackers-csv/README.md",
        "examples/noether-trackers-csv/src/noether_trackers_csv/tracker.py",  # not editable
        "examples/noether-trackers-csv/src/noether_trackers_csv/new.py",
        "scripts/setup",
        "scripts/setup_stamp.py",
    ],
)
def test_a_change_to_what_setup_installs_from_changes_the_digest(
    tmp_path: Path, changed: str
) -> None:
    root = make_tree(tmp_path)
    before = setup_stamp.digest(root)
    (root / changed).parent.mkdir(parents=True, exist_ok=True)
    (root / changed).write_text("# changed\n")
    assert setup_stamp.digest(root) != before


@pytest.mark.parametrize(
    "changed",
    [
        "noether-trackers-core/src/core.py",  # editable: its source is read where it is
        "examples/noether-trackers-csv/tests/test_csv.py",  # tests are not installed
        "examples/noether-trackers-csv/src/noether_trackers_csv/__pycache__/tracker.pyc",
        "examples/noether-trackers-csv/build/lib/noether_trackers_csv/tracker.py",
        "examples/noether-trackers-csv/src/noether_trackers_csv.egg-info/PKG-INFO",
        "docs/index.md",
    ],
)
def test_files_setup_does_not_install_from_leave_the_digest(tmp_path: Path, changed: str) -> None:
    root = make_tree(tmp_path)
    before = setup_stamp.digest(root)
    (root / changed).parent.mkdir(parents=True, exist_ok=True)
    (root / changed).write_text("# changed\n")
    assert setup_stamp.digest(root) == before


def test_deleting_an_input_changes_the_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    before = setup_stamp.digest(root)
    (root / "scripts/setup_stamp.py").unlink()
    assert setup_stamp.digest(root) != before


def test_the_stamp_goes_stale_when_a_pyproject_changes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "repo")
    stamp = tmp_path / "stamp"
    assert setup_stamp.stale_reason(stamp, root) == "no record of a finished install"
    assert setup_stamp.main(["write", str(stamp), "--root", str(root)]) == 0
    assert setup_stamp.stale_reason(stamp, root) is None  # this venv has every key module
    (root / "noether-trackers-core/pyproject.toml").write_text("[project]\nname = 'other'\n")
    assert "changed" in str(setup_stamp.stale_reason(stamp, root))
    assert setup_stamp.main(["check", str(stamp), "--root", str(root)]) == 1


def test_a_module_that_does_not_import_makes_the_stamp_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path / "repo")
    stamp = tmp_path / "stamp"
    setup_stamp.main(["write", str(stamp), "--root", str(root)])
    monkeypatch.setattr(setup_stamp, "KEY_IMPORTS", ("noether_no_such_module",))
    assert setup_stamp.stale_reason(stamp, root) == "cannot import noether_no_such_module"


#: Stands in for python (and for .venv/bin/python, which `-m venv` copies it to): it records
#: its arguments, reports no stamp and no torch, and fails a pip install naming $STUB_FAIL_ON.
STUB_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$1 ${2:-}" in
  "--version "*) echo "Python 3.99.0" ;;
  "scripts/setup_stamp.py check") echo "no record of a finished install"; exit 1 ;;
  "scripts/setup_stamp.py write") echo stamp > "$3" ;;
  "-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
  "-c import torch") exit 1 ;;
  "-m pip")
    if [ "$3" = install ] && [ -n "${STUB_FAIL_ON:-}" ] && [[ "$*" == *"$STUB_FAIL_ON"* ]]; then
      echo "ERROR: No matching distribution found" >&2; exit 1
    fi ;;
esac
"""


def scratch_setup(root: Path, with_venv: bool) -> dict[str, str]:
    """A scratch tree holding the real setup scripts, two members and the example plugin;
    returns the environment for running it with the stand-in Python."""
    (root / "scripts").mkdir(parents=True)
    for name in ("setup", "setup_stamp.py"):
        shutil.copy2(ROOT / "scripts" / name, root / "scripts" / name)
    for member in ("noether-trackers-a", "noether-trackers-b", "examples/noether-trackers-csv"):
        (root / member).mkdir(parents=True)
    stub = root / "stub-python"
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    if with_venv:
        (root / ".venv/bin").mkdir(parents=True)
        shutil.copy2(stub, root / ".venv/bin/python")
    return {"PATH": "/usr/bin:/bin", "PYTHON": str(stub), "STUB_LOG": str(root / "calls.log")}


def run_scratch_setup(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the scratch tree's copy of setup."""
    return subprocess.run(
        [str(root / "scripts/setup")], env=env, capture_output=True, text=True, timeout=60
    )


def test_on_a_fresh_machine_setup_says_each_step_and_installs_as_before(tmp_path: Path) -> None:
    env = scratch_setup(tmp_path, with_venv=False)
    result = run_scratch_setup(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"setup: creating .venv with {env['PYTHON']}",
        "setup: install needed: no record of a finished install",
        "setup: upgrading pip (pip >= 25.1 understands --group)",
        "setup: installing torch 2.13.0 (CPU)",
        "setup: installing the workspace (editable), the CSV example plugin, dev tools and the "
        "training frameworks (minutes on a fresh machine)",
        "setup: checking dependencies (pip check)",
        "setup: done",
    ]
    pip_calls = [
        line for line in (tmp_path / "calls.log").read_text().splitlines() if "-m pip" in line
    ]
    assert pip_calls == [
        "-m pip install --quiet --upgrade pip>=25.1",
        "-m pip install --quiet torch==2.13.0",  # pinned: pip takes the local CPU wheel ...
        "-m pip install --quiet -e ./noether-trackers-a -e ./noether-trackers-b "
        "./examples/noether-trackers-csv --group dev --group frameworks "  # (not editable)
        "torch==2.13.0",  # ... first, and the frameworks must not replace it
        "-m pip check",
    ]
    assert (tmp_path / ".venv/.setup-stamp").is_file()  # written after pip check passed


@pytest.mark.parametrize("failing", ["--group dev", "torch==2.13.0"])
def test_a_failing_install_fails_setup_and_leaves_no_stamp(tmp_path: Path, failing: str) -> None:
    env = scratch_setup(tmp_path, with_venv=True)
    (tmp_path / ".venv/.setup-stamp").write_text("an older install\n")
    result = run_scratch_setup(tmp_path, {**env, "STUB_FAIL_ON": failing})
    assert result.returncode != 0
    assert "No matching distribution found" in result.stdout + result.stderr
    assert "setup: done" not in result.stdout
    assert not (tmp_path / ".venv/.setup-stamp").exists()
