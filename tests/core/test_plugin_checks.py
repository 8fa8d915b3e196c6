"""Issue 13, points 1, 2 and 8: ``validate`` runs the plugins' own option checks as a run does,
``OptionError`` blames one option by its YAML path, and a plugin written for a plugin API this
core cannot serve is named by ``list`` and refused before training.

The plugins are real distributions (dist-info and modules) in a folder on ``PYTHONPATH``, found
through their entry points by the real ``noether-trackers`` command run as a subprocess.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from fake_distribution import fake_distribution

from noether.core.trackers import PLUGIN_API, TrackerConfigError
from noether.core.trackers.plugin import PLUGIN_API as PLUGIN_MODULE_API
from noether.core.trackers.plugin import OptionError
from noether.core.trackers.plugin_api import parse_plugin_api, plugin_api_problem

CHECKING_PLUGIN = """
    import os

    from noether.core.trackers.plugin import BaseTracker, OptionError, hookimpl

    class CheckingTracker(BaseTracker):
        plugin_api = "1.0"

        def __init__(self, *, experiment: str = "default", shards: int = 1,
                     output_path: str | os.PathLike[str] | None = None) -> None:
            if not experiment.strip():
                raise OptionError("experiment", "must not be empty")
            if shards > 4:
                raise ValueError("shards above 4 need a paid plan")
            if experiment == "legacy":
                raise ValueError("this experiment name is reserved")
            super().__init__(output_path=output_path)

        def _init(self, run):
            open(os.environ["CHECKING_STARTED"], "w").close()  # proves validate starts nothing

        def _log(self, values, step):
            pass

    @hookimpl
    def register_trackers(register):
        register(CheckingTracker, kind="checking")
"""

FUTURE_PLUGIN = """
    from noether.core.trackers.plugin import BaseTracker, hookimpl

    class FutureTracker(BaseTracker):
        plugin_api = "{api}"

        def _log(self, values, step):
            pass

    @hookimpl
    def register_trackers(register):
        register(FutureTracker, kind="future")
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding the two plugin distributions."""
    folder = tmp_path / "site"
    fake_distribution(
        folder,
        "noether-trackers-checking",
        "checking = checking_plugin",
        {"checking_plugin.py": CHECKING_PLUGIN},
    )
    major, minor = parse_plugin_api(PLUGIN_API)
    fake_distribution(
        folder,
        "noether-trackers-future",
        "future = future_plugin",
        {"future_plugin.py": FUTURE_PLUGIN.format(api=f"{major}.{minor + 1}")},
    )
    return folder


def cli(
    site: Path, env: dict[str, str], tmp_path: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """The real ``noether-trackers`` command, with the plugins of ``site`` installed."""
    return subprocess.run(
        [sys.executable, "-m", "noether.core.trackers.cli", *arguments],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(site), "CHECKING_STARTED": str(tmp_path / "started")},
        timeout=60,
    )


def validate(
    site: Path, env: dict[str, str], tmp_path: Path, yaml: str
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml)
    return cli(site, env, tmp_path, "validate", str(config))


def test_validate_reports_a_plugins_own_checks_with_their_yaml_paths(
    site: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    done = validate(
        site,
        subprocess_env,
        tmp_path,
        "tracker:\n"
        "  - kind: checking\n"
        "    experiment: '  '\n"
        "  - kind: checking\n"
        "    shards: 9\n"
        "  - kind: checking\n"
        "    experiment: legacy\n",
    )
    assert done.returncode == 1, done.stdout
    assert done.stdout == ""
    # every entry's problem, each under its YAML path: OptionError names the option; a
    # ValueError starting with an option's name is put under it; any other under the entry
    assert "tracker[0].experiment: must not be empty" in done.stderr
    assert "tracker[1].shards: above 4 need a paid plan" in done.stderr
    assert "tracker[2]: this experiment name is reserved" in done.stderr
    assert not (tmp_path / "started").exists(), "validate started a backend"


def test_validate_still_accepts_a_valid_config_without_starting_it(
    site: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    done = validate(site, subprocess_env, tmp_path, "tracker:\n  kind: checking\n  shards: 2\n")
    assert done.returncode == 0, done.stderr
    assert "OK (trackers: checking)" in done.stdout
    assert not (tmp_path / "started").exists(), "validate started a backend"


def test_a_run_reports_an_option_error_the_same_way(
    site: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "from noether.core.trackers import TrackerConfigError, create_tracker\n"
        "try:\n"
        "    create_tracker({'kind': 'checking', 'experiment': ''})\n"
        "except TrackerConfigError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**subprocess_env, "PYTHONPATH": str(site)},
        timeout=60,
    )
    assert done.stdout.strip() == (
        "invalid tracker configuration: tracker.experiment: must not be empty"
    ), done.stderr


def test_an_option_error_names_its_option_and_pickles() -> None:
    error = OptionError("experiment", "must not be empty")
    assert isinstance(error, ValueError)
    assert (error.option, error.message, str(error)) == (
        "experiment",
        "must not be empty",
        "experiment: must not be empty",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.option, copy.message) == (OptionError, "experiment", error.message)


def test_list_warns_about_a_plugin_written_for_a_newer_plugin_api(
    site: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    major, minor = parse_plugin_api(PLUGIN_API)
    done = cli(site, subprocess_env, tmp_path, "list")
    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stdout.splitlines() if line.startswith("WARNING")]
    assert "kind 'future' (noether-trackers-future 0.0.1)" in warning
    assert f"written for plugin API {major}.{minor + 1}" in warning
    assert f"provides only {PLUGIN_API}: upgrade noether-trackers-core" in warning
    # the kind is still listed, with the API it asks for
    report = json.loads(cli(site, subprocess_env, tmp_path, "list", "--json").stdout)
    by_kind = {tracker["kind"]: tracker for tracker in report["trackers"]}
    assert report["plugin_api"] == PLUGIN_API
    assert by_kind["future"]["plugin_api"] == f"{major}.{minor + 1}"
    assert by_kind["checking"]["plugin_api_problem"] is None
    assert by_kind["tensorboard"]["plugin_api"] == PLUGIN_API


def test_a_run_with_such_a_plugin_stops_before_training(
    site: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    done = validate(site, subprocess_env, tmp_path, "tracker:\n  - kind: future\n")
    assert done.returncode == 1
    assert "tracker[0].kind: kind 'future' (noether-trackers-future 0.0.1) is written for" in (
        done.stderr
    )


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        (None, None),
        ("1.0", None),
        ("2.0", "another major version"),
        ("1.1", "upgrade noether-trackers-core"),
        ("one", "is not 'MAJOR.MINOR'"),
    ],
)
def test_which_plugin_api_versions_a_core_serves(declared: str | None, problem: str | None) -> None:
    found = plugin_api_problem(declared, provided="1.0")
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_the_plugin_api_version_is_one_name_in_both_modules() -> None:
    assert PLUGIN_API == PLUGIN_MODULE_API
    parse_plugin_api(PLUGIN_API)
    with pytest.raises(TrackerConfigError):  # still a ValueError users catch
        raise TrackerConfigError(["x"])
