"""Starting a run's delivery process: start-up errors stay as they are with thread delivery, a
plugin that cannot be imported in the delivery process is reported the same way, and runs that
cannot have a delivery process fall back to threads with one warning."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers import Tracker, create_tracker
from noether.core.trackers._engine.startup import BackendEntry
from noether.core.trackers.delivery import DeliverySettings
from noether.core.trackers.errors import TrackerConfigError
from recording_plugins import RecordingTracker


@pytest.fixture
def vanishing_backend() -> Iterator[type[RecordingTracker]]:
    """A backend class whose module this process has but no other can import (a plugin
    installed for this interpreter only, or imported from a path the delivery process lacks)."""
    module = types.ModuleType("vanishing_plugin")
    exec(
        "from recording_plugins import RecordingTracker\n"
        "class VanishingTracker(RecordingTracker):\n"
        "    pass\n",
        module.__dict__,
    )
    sys.modules["vanishing_plugin"] = module
    yield module.VanishingTracker
    del sys.modules["vanishing_plugin"]


def test_a_backend_the_delivery_process_cannot_import_is_a_start_error_naming_it(
    vanishing_backend: type[RecordingTracker], tmp_path: Path
) -> None:
    tracker = Tracker(
        [BackendEntry(vanishing_backend(), config_path="tracker[0]")], output_path=tmp_path
    )
    with pytest.raises(TrackerConfigError) as raised:
        tracker.init(run_name="r")
    message = str(raised.value)
    assert "tracker[0] (VanishingTracker): failed to start: ImportError" in message
    assert "cannot load the backend in the delivery process" in message
    assert "vanishing_plugin" in message
    assert "required: false" in message


def test_an_optional_backend_the_delivery_process_cannot_import_is_left_out(
    vanishing_backend: type[RecordingTracker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = RecordingTracker()
    tracker = Tracker(
        [
            BackendEntry(vanishing_backend(), config_path="tracker[0]", required=False),
            BackendEntry(recorder, config_path="tracker[1]"),
        ],
        output_path=tmp_path,
    )
    tracker.init(run_name="r")
    assert tracker.delivery_mode == "process"
    tracker.log({"loss": 1.0})
    report = tracker.close()
    assert report.complete, report.describe()
    assert [backend.backend for backend in report.backends] == ["RecordingTracker"]
    assert recorder.logged() == [({"loss": 1.0}, 0)]  # state copied back from the process
    assert any(
        "tracker[0] (VanishingTracker): failed to start" in record.getMessage()
        and "required: false" in record.getMessage()
        for record in caplog.records
    )


class _Unpicklable(RecordingTracker):
    """A backend holding something that cannot be pickled (a lambda)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.hook = lambda: None


def test_a_backend_that_cannot_be_pickled_runs_on_threads_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _Unpicklable()
    tracker = Tracker([backend], output_path=tmp_path)
    tracker.init(run_name="r")
    tracker.log({"loss": 1.0})
    tracker.close()
    assert tracker.delivery_mode == "thread"
    assert backend.logged() == [({"loss": 1.0}, 0)]
    warnings = [r.getMessage() for r in caplog.records if "uses thread delivery" in r.getMessage()]
    assert len(warnings) == 1 and "cannot be pickled" in warnings[0], warnings


def test_yaml_chooses_thread_delivery_and_two_entries_must_agree(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker(
        [{"kind": "recorder", "delivery": "thread"}, {"kind": "recorder"}],
        tmp_path / "a",
        registry=registry,
    )
    tracker.init(run_name="r")
    tracker.close()
    assert tracker.delivery_mode == "thread"
    with pytest.raises(TrackerConfigError, match=r"tracker\[0\].delivery: thread, tracker\[1\]"):
        create_tracker(
            [
                {"kind": "recorder", "delivery": "thread"},
                {"kind": "recorder", "delivery": "process"},
            ],
            tmp_path / "b",
            registry=registry,
        )
    with pytest.raises(TrackerConfigError, match=r"tracker.delivery: expected 'process'"):
        create_tracker(
            {"kind": "recorder", "delivery": "threads"}, tmp_path / "c", registry=registry
        )


def test_code_and_environment_choose_the_delivery(
    registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOETHER_TRACKERS_DELIVERY", "thread")
    by_environment = create_tracker({"kind": "recorder"}, tmp_path / "a", registry=registry)
    by_code = create_tracker(
        {"kind": "recorder", "delivery": "thread"},
        tmp_path / "b",
        registry=registry,
        delivery=DeliverySettings(mode="process"),
    )
    for tracker in (by_environment, by_code):
        tracker.init(run_name="r")
        tracker.close()
    assert (by_environment.delivery_mode, by_code.delivery_mode) == ("thread", "process")
    monkeypatch.setenv("NOETHER_TRACKERS_DELIVERY", "fork")
    bad = create_tracker({"kind": "recorder"}, tmp_path / "c", registry=registry)
    with pytest.raises(ValueError, match="NOETHER_TRACKERS_DELIVERY='fork': expected one of"):
        bad.init(run_name="r")
    with pytest.raises(ValueError, match="mode must be one of"):
        DeliverySettings(mode="fork")  # type: ignore[arg-type]


def test_no_tracking_starts_no_process(tmp_path: Path) -> None:
    tracker = create_tracker(None, tmp_path)
    tracker.init(run_name="r")
    tracker.log({"loss": 1.0})
    tracker.close()
    assert tracker.delivery_mode is None and not list(tmp_path.iterdir())
