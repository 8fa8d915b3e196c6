"""Where runs land: the configured directory although trackio read TRACKIO_DIR long ago, and by
default where ``trackio show`` looks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trackio_dashboard import ask, running_dashboard

from noether.core.trackers import Tracker, TrackerConfigError, create_tracker
from noether_trackers_trackio import default_trackio_dir

Make = Callable[..., Tracker]
#: Trackio's command line, as installed next to this interpreter.
TRACKIO_CLI = str(Path(sys.executable).with_name("trackio"))


def _log_one_run(tracker: Tracker, run_name: str = "r") -> None:
    tracker.init(run_name=run_name, config={"lr": 0.1})
    tracker.log({"loss": 0.5}, step=1)
    tracker.close()


def test_configured_directory_wins_over_the_one_trackio_was_imported_with(
    make_tracker: Make, tmp_path: Path, store: Any
) -> None:
    import trackio.utils

    imported_with = trackio.utils.TRACKIO_DIR  # from an earlier test's environment
    custom = tmp_path / "custom-store"
    _log_one_run(make_tracker(trackio_dir=str(custom)))

    assert (custom / "proj.db").is_file()
    assert not (store.directory / "proj.db").exists()
    assert imported_with == trackio.utils.TRACKIO_DIR  # put back at close
    reader = type(store)(custom)
    assert reader.logs("proj", "r") == [{"loss": 0.5, "step": 1}]
    assert reader.config("proj", "r")["summary"]["loss/last"] == 0.5


def test_media_of_a_configured_directory_go_there_too(make_tracker: Make, tmp_path: Path) -> None:
    from noether.core.trackers import Image

    custom = tmp_path / "media-store"
    tracker = make_tracker(trackio_dir=str(custom))
    tracker.init(run_name="pictures")
    tracker.log({"img": Image([[0, 255], [255, 0]])})
    tracker.close()

    assert len(list((custom / "media" / "proj" / "pictures").rglob("*.png"))) == 1


def test_a_relative_directory_is_taken_from_the_working_directory(
    make_tracker: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = make_tracker(trackio_dir="trackio-relative")
    _log_one_run(tracker)
    assert (tmp_path / "trackio-relative" / "proj.db").is_file()


def test_default_directory_follows_trackio_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKIO_DIR", "/data/trackio-store")
    assert default_trackio_dir() == Path("/data/trackio-store")
    monkeypatch.delenv("TRACKIO_DIR")
    monkeypatch.setenv("HF_HOME", "/data/hf")
    assert default_trackio_dir() == Path("/data/hf/trackio")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", "/data/cache")
    assert default_trackio_dir() == Path("/data/cache/huggingface/trackio")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_trackio_dir() == Path.home() / ".cache" / "huggingface" / "trackio"


def test_without_trackio_dir_the_run_lands_under_hf_home(
    make_tracker: Make, subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACKIO_DIR")
    _log_one_run(make_tracker(), run_name="under-hf-home")

    # Trackio's own CLI, started afresh without TRACKIO_DIR, finds it.
    env = {key: value for key, value in subprocess_env.items() if key != "TRACKIO_DIR"}
    listing = subprocess.run(
        [TRACKIO_CLI, "list", "runs", "--project", "proj", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(listing.stdout)["runs"] == ["under-hf-home"]
    assert (Path(os.environ["HF_HOME"]) / "trackio" / "proj.db").is_file()


def test_trackio_show_displays_the_run(
    make_tracker: Make, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    tracker = make_tracker()
    tracker.init(run_name="shown", config={"lr": 0.1})
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)})
    tracker.close()

    # `trackio show` exactly as a user starts it, in the same environment (TRACKIO_DIR set by
    # the suite's isolation); its dashboard API is what the browser page reads.
    show = [TRACKIO_CLI, "show", "--project", "proj"]
    with running_dashboard(show, subprocess_env, tmp_path / "show.log") as url:
        runs = ask(f"{url}/api/get_runs_for_project", {"project": "proj"})
        summary = ask(f"{url}/api/get_run_summary", {"project": "proj", "run": "shown"})
    assert [run["name"] for run in runs] == ["shown"]
    assert summary["num_logs"] == 3 and summary["last_step"] == 2
    assert summary["config"]["lr"] == 0.1
    assert summary["config"]["summary"]["loss/min"] == pytest.approx(1 / 3)


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_a_second_directory_while_a_run_is_open_is_refused(
    make_tracker: Make, tmp_path: Path, store: Any
) -> None:
    first = make_tracker()
    first.init(run_name="first")
    second = make_tracker(trackio_dir=str(tmp_path / "other"))
    with pytest.raises(TrackerConfigError, match="one storage directory per process"):
        second.init(run_name="second")
    first.log({"loss": 1.0})
    first.close()

    assert store.logs("proj", "first") == [{"loss": 1.0, "step": 0}]
    assert not (tmp_path / "other" / "proj.db").exists()


def test_two_trackio_backends_of_one_run_each_get_their_run(tmp_path: Path, store: Any) -> None:
    tracker = create_tracker(
        [{"kind": "trackio", "project": "alpha"}, {"kind": "trackio", "project": "beta"}],
        tmp_path,
    )
    tracker.init(run_name="fanout")
    tracker.log({"loss": 0.5})
    tracker.close()

    assert store.logs("alpha", "fanout") == [{"loss": 0.5, "step": 0}]
    assert store.logs("beta", "fanout") == [{"loss": 0.5, "step": 0}]
    assert store.config("beta", "fanout")["summary"]["loss/last"] == 0.5
