"""Every backend says where its run went and how to look at it (``run_location``), through a
method third-party backends implement too; ``close()`` returns a report for every tracker."""

from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path

import pytest
from isolation import as_on_a_fresh_machine

from noether.core.trackers import FanoutTracker, RunLocation, Tracker, create_tracker
from noether.core.trackers.delivery import DeliveryReport
from noether.core.trackers.run_info import RunInfo
from noether.core.trackers.run_location import installed_command, shell_command, shown_path
from noether.core.trackers.tracker import BackendEntry
from recording_plugins import RecordingTracker


class LocatedTracker(RecordingTracker):
    """A third party's backend that says where its run went."""

    def _init(self, run: RunInfo) -> None:
        super()._init(run)
        self.where = f"https://example.invalid/runs/{run.run_id}"

    def run_location(self) -> RunLocation | None:
        return RunLocation("located", self.where)


class BrokenLocationTracker(RecordingTracker):
    def run_location(self) -> RunLocation | None:
        raise RuntimeError("no idea")


class FailingInit(RecordingTracker):
    def _init(self, run: RunInfo) -> None:
        raise RuntimeError("cannot start")

    def run_location(self) -> RunLocation | None:
        return RunLocation("failing", "nowhere")


def test_tensorboard_says_where_and_its_command_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, subprocess_env: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = create_tracker({"kind": "tensorboard"}, "runs/a")
    assert tracker.run_locations() == []  # not started
    tracker.init(run_name="where", stage_name="train")
    tracker.log({"loss": 1.0})
    tracker.close()
    [location] = tracker.run_locations()
    assert location.backend == "tensorboard" and location.action == "view it"
    assert location.where == "runs/a/tensorboard_logs/train"
    assert (
        location.command == f"{installed_command('tensorboard')} --logdir runs/a/tensorboard_logs"
    )
    assert location.describe() == (
        f"tensorboard: runs/a/tensorboard_logs/train; view it: {location.command}"
    )
    done = subprocess.run(
        f"{location.command} --help",
        shell=True,
        capture_output=True,
        text=True,
        env=as_on_a_fresh_machine(subprocess_env),
        timeout=120,
    )
    assert done.returncode == 0 and "--logdir" in done.stdout, done.stderr


def test_a_fanout_lists_every_backend_that_says_and_survives_one_that_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # FanoutTracker: the name of earlier versions for Tracker(backends), kept working
    tracker = FanoutTracker(
        [LocatedTracker(), BrokenLocationTracker(), RecordingTracker()], output_path=tmp_path
    )
    assert isinstance(tracker, Tracker) and len(tracker.trackers) == 3
    tracker.init(run_name="fan", run_id="f1")
    with caplog.at_level(logging.WARNING, logger="noether.trackers"):
        assert tracker.run_locations() == [
            RunLocation("located", "https://example.invalid/runs/f1")
        ]
    assert "BrokenLocationTracker.run_location() failed: RuntimeError('no idea')" in caplog.text
    tracker.close()
    assert [location.backend for location in tracker.run_locations()] == ["located"]


def test_a_backend_that_did_not_start_is_not_listed(tmp_path: Path) -> None:
    optional = BackendEntry(FailingInit(), required=False)
    tracker = Tracker([LocatedTracker(), optional], output_path=tmp_path)
    tracker.init(run_name="fan", run_id="f2")
    tracker.close()
    assert [location.backend for location in tracker.run_locations()] == ["located"]


def test_csv_example_plugin_says_where_its_file_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = create_tracker({"kind": "csv"}, "out")
    tracker.init(run_name="csv", run_id="c1")
    tracker.close()
    assert tracker.run_locations() == [RunLocation("csv", "out/csv_logs/c1.csv")]


def test_close_returns_a_report_for_every_tracker_the_no_op_one_included(
    tmp_path: Path,
) -> None:
    noop = create_tracker(None)
    assert isinstance(noop, Tracker) and noop.backends == ()
    noop.init(run_name="nothing")
    report = noop.close()
    assert isinstance(report, DeliveryReport) and report is noop.delivery_report
    assert (report.status, report.backends, report.complete) == ("finished", (), True)
    assert noop.close() is report  # a second close returns the first report
    assert noop.run_locations() == []
    never_started = create_tracker({"kind": "tensorboard"}, tmp_path)
    assert never_started.close(status="failed") == DeliveryReport("failed", ())
    started = create_tracker({"kind": "tensorboard"}, tmp_path / "run")
    started.init(run_name="r")
    report = started.close()
    assert [backend.backend for backend in report.backends] == ["TensorboardTracker"]


def test_commands_are_quoted_for_the_shell() -> None:
    command = shell_command("no-such-tool", ["sync", "a b"], {"TRACKIO_DIR": "/x y"})
    assert command == "TRACKIO_DIR='/x y' no-such-tool sync 'a b'"
    assert shlex.split(command) == ["TRACKIO_DIR=/x y", "no-such-tool", "sync", "a b"]


def test_paths_are_shown_relative_when_below_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "a" / "b") == "a/b"
    assert shown_path("/elsewhere/x") == "/elsewhere/x"


def test_a_command_not_installed_beside_python_is_named_bare() -> None:
    assert installed_command("no-such-console-script") == "no-such-console-script"
