"""The Trackio backend says where its run went: the store, and a ``trackio show`` command that
opens the dashboard on it when run as printed (``TRACKIO_DIR=...`` in front when the store is
not the one ``trackio show`` reads by default)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from isolation import as_on_a_fresh_machine
from trackio_dashboard import ask, running_dashboard

from noether.core.trackers import Tracker

Make = Callable[..., Tracker]


def test_a_store_of_its_own_is_named_in_a_show_command_that_opens_it(
    make_tracker: Make, subprocess_env: dict[str, str], tmp_path: Path, store: Any
) -> None:
    custom = tmp_path / "my store"
    tracker = make_tracker(trackio_dir=str(custom))
    tracker.init(run_name="shown")
    tracker.log({"loss": 0.5})
    tracker.close()
    [location] = tracker.run_locations()
    assert (location.backend, Path(location.where).resolve()) == ("trackio", custom.resolve())
    assert location.command is not None and location.action == "view it"
    assert location.command.startswith(f"TRACKIO_DIR='{custom.resolve()}' ")
    assert location.command.endswith("trackio show --project proj")
    # as printed, in a shell that knows nothing of this store or of the virtual environment
    env = as_on_a_fresh_machine(subprocess_env)
    env.pop("TRACKIO_DIR")
    with running_dashboard(location.command, env, tmp_path / "show.log") as url:
        runs = ask(f"{url}/api/get_runs_for_project", {"project": "proj"})
    assert [run["name"] for run in runs] == ["shown"]  # the run, from its own store


def test_the_default_store_needs_no_prefix(
    make_tracker: Make, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACKIO_DIR")  # the store trackio show reads by default
    tracker = make_tracker()
    tracker.init(run_name="default")
    tracker.close()
    [location] = tracker.run_locations()
    assert location.command is not None and "TRACKIO_DIR" not in location.command
    env = {k: v for k, v in as_on_a_fresh_machine(subprocess_env).items() if k != "TRACKIO_DIR"}
    done = subprocess.run(
        f"{location.command} --help", shell=True, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "--project" in done.stdout, done.stderr
