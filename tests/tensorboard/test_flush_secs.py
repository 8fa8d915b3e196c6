"""``flush_secs``: events reach disk within that time of being logged, even when nothing
follows them, and the flusher thread that sees to it ends with the tracker."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import create_tracker
from noether_trackers_tensorboard.event_file import FLUSHER_THREAD_NAME, EventFile


def logged_steps(log_dir: Path, tag: str) -> list[int]:
    """The steps of ``tag`` that TensorBoard's own reader finds in ``log_dir`` now."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return []
    return [event.step for event in accumulator.Scalars(tag)]


def flusher_threads() -> list[threading.Thread]:
    """The flusher threads of open event files in this process."""
    return [t for t in threading.enumerate() if t.name.startswith(FLUSHER_THREAD_NAME)]


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_the_last_point_reaches_disk_within_flush_secs_without_close(tmp_path: Path) -> None:
    tracker = create_tracker(
        {"kind": "noether.core.trackers.TensorboardTracker", "flush_secs": 1}, tmp_path
    )
    tracker.init(run_name="tb", run_id="flush")
    try:
        tracker.log({"loss": 0.5}, step=3)  # the last point of a long epoch: nothing follows
        assert len(flusher_threads()) == 1
        # flush_secs is 1: the point is on disk after about a second (not flush(), not close())
        deadline = time.monotonic() + 5
        while logged_steps(tmp_path / "tensorboard_logs", "loss") != [3]:
            assert time.monotonic() < deadline, "the point never reached the event file"
            time.sleep(0.2)
    finally:
        tracker.close()
    assert flusher_threads() == []


def test_close_stops_the_flusher_thread_at_once(tmp_path: Path) -> None:
    tracker = create_tracker(
        {"kind": "noether.core.trackers.TensorboardTracker", "flush_secs": 600}, tmp_path
    )
    tracker.init(run_name="tb", run_id="close")
    tracker.log({"loss": 0.5})
    started = time.monotonic()
    tracker.close()
    # the thread waits on an event, not a 600 s sleep: close() does not wait out the period
    assert time.monotonic() - started < 5
    assert flusher_threads() == []
    assert logged_steps(tmp_path / "tensorboard_logs", "loss") == [0]


def test_an_event_file_needs_a_positive_period(tmp_path: Path) -> None:
    # a zero period would make the flusher thread spin; the schema rejects it in YAML, and
    # the event file whoever constructs it
    for period in (0, -1.0):
        with pytest.raises(ValueError, match="flush_secs must be positive"):
            EventFile(tmp_path, flush_secs=period)
    assert flusher_threads() == [] and list(tmp_path.iterdir()) == []
