"""Names of earlier versions that the core redesign moved or renamed keep working.

Until the redesign, the object ``create_tracker`` returned was a ``BaseTracker`` (a
``NoopTracker`` for ``tracker: null``, a ``FanoutTracker`` for a list), and users called
``init``/``log``/``close`` on backend objects directly. Code written that way must go on
working; these tests use the old names as such code does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from noether.core.trackers import BaseTracker, FanoutTracker, NoopTracker, Tracker
from noether.core.trackers.base import FanoutTracker as FanoutTrackerFromBase
from noether.core.trackers.base import status_for_exception
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.journal import JournalLockedError, read_journal
from noether.core.trackers.resume import PreviousRun, RunDirectoryInUseError, kept_log_records
from recording_plugins import RecordingTracker


def test_a_backend_used_alone_is_a_run_of_its_own(tmp_path: Path) -> None:
    backend = RecordingTracker(output_path=tmp_path)
    with backend:
        backend.init(run_name="alone", run_id="a1", config={"lr": 0.1})
        assert backend.run is not None and backend.run.run_id == "a1"
        backend.log({"loss": 1.0})
        backend.set_summary("best", 1)
    assert backend.status == "finished" and backend.delivery_report is not None
    assert backend.delivery_report.complete
    assert backend.logged() == [({"loss": 1.0}, 0)]
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["best"] == 1
    assert [r["op"] for r in read_journal(tmp_path)][-1] == "close"


def test_fanout_tracker_is_a_run_of_several_backends(tmp_path: Path) -> None:
    first, second = RecordingTracker(), RecordingTracker()
    fanout = FanoutTracker([first, second], output_path=tmp_path)
    assert FanoutTrackerFromBase is FanoutTracker and isinstance(fanout, Tracker)
    assert fanout.trackers == [first, second]
    fanout.init(run_name="fan")
    fanout.log({"x": 1})
    fanout.close()
    assert first.logged() == second.logged() == [({"x": 1}, 0)]


def test_a_noop_tracker_alone_checks_input_and_stores_nothing(tmp_path: Path) -> None:
    noop = NoopTracker(output_path=tmp_path)
    assert isinstance(noop, BaseTracker)
    noop.init(run_name="off")
    noop.log({"a": 1})
    with pytest.raises(TypeError):
        noop.log([1])  # type: ignore[arg-type]
    assert noop.close().backends == ()
    assert list(tmp_path.iterdir()) == []


def test_moved_helpers_are_importable_from_their_old_modules(tmp_path: Path) -> None:
    assert status_for_exception(KeyboardInterrupt()) == "interrupted"
    assert callable(hookimpl) and RegisterTracker is not None
    assert issubclass(JournalLockedError, Exception) and issubclass(
        RunDirectoryInUseError, Exception
    )
    tracker = Tracker([RecordingTracker()], output_path=tmp_path)
    tracker.init(run_name="r", run_id="k1", resume_step=None)
    for step in range(3):
        tracker.log({"loss": float(step)})
    tracker.close()
    records = list(read_journal(tmp_path))
    kept = kept_log_records(records, "k1", rewind_to=2)
    assert [(record["op"], record["step"]) for record in kept] == [("log", 0), ("log", 1)]
    assert PreviousRun().last_step is None


def test_a_callback_annotated_with_the_old_type_still_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from noether.core.callbacks import CallbackBase

    class OldStyle(CallbackBase):
        tracker: BaseTracker  # type: ignore[assignment]  # the hint earlier READMEs gave

    callback = OldStyle()
    with caplog.at_level(logging.WARNING):
        callback.tracker.log({"loss": 1.0})  # a started run without backends
    assert caplog.records == []
