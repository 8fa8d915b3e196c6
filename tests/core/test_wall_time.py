"""``_log`` receives the wall time of the user's ``log()`` call (``wall_time``), not the time
the call reaches the backend: with thread and process delivery, and when a backend that fell
behind catches up from the journal. A plugin whose ``_log`` predates ``wall_time`` keeps
working, and is called without it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers import base
from noether.core.trackers._engine.worker import BackendWorker
from noether.core.trackers.base import BaseTracker
from noether.core.trackers.delivery import DeliverySettings
from noether.core.trackers.journal import JournalReader
from noether.core.trackers.records import JournalSpan, LogRecord
from noether.core.trackers.tracker import Tracker
from noether.core.trackers.values import Value


class OldStyleTracker(BaseTracker):
    """A plugin written before ``wall_time`` existed."""

    def __init__(self, *, output_path: Any = None) -> None:
        super().__init__(output_path=output_path)
        self.logged: list[tuple[dict[str, Value], int]] = []

    def _log(self, values: Mapping[str, Value], step: int) -> None:  # type: ignore[override]
        self.logged.append((dict(values), step))


class KeywordsTracker(BaseTracker):
    """A plugin whose ``_log`` takes ``**kwargs``: it gets ``wall_time`` among them."""

    def __init__(self, *, output_path: Any = None) -> None:
        super().__init__(output_path=output_path)
        self.logged: list[tuple[int, dict[str, Any]]] = []

    def _log(self, values: Mapping[str, Value], step: int, **kwargs: Any) -> None:  # type: ignore[override]
        self.logged.append((step, kwargs))


class TimedTracker(BaseTracker):
    """Keeps, per ``_log``, the step, the wall time it was given and when it ran; each
    ``_log`` takes ``delay`` seconds (a slow backend)."""

    def __init__(self, *, delay: float = 0.0, output_path: Any = None) -> None:
        super().__init__(output_path=output_path)
        self.delay = delay
        self.logged: list[tuple[int, float, float]] = []

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        self.logged.append((step, wall_time, time.time()))
        time.sleep(self.delay)


def journaled_times(run_dir: Path) -> dict[int, float]:
    """The wall time the journal recorded for each step logged."""
    times = {}
    for record in JournalReader(run_dir).records():
        if isinstance(record, LogRecord):
            assert record.t is not None
            times[record.step] = record.t
    return times


def log_timed(tracker: Tracker, steps: int, pause: float = 0.0) -> dict[int, tuple[float, float]]:
    """Log ``steps`` calls; per step, the wall time just before and just after its ``log()``."""
    called = {}
    for step in range(steps):
        before = time.time()
        tracker.log({"loss": float(step)}, step=step)
        called[step] = (before, time.time())
        time.sleep(pause)
    return called


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_plugin_with_the_old_log_signature_keeps_working(tmp_path: Path, mode: str) -> None:
    old, keywords = OldStyleTracker(), KeywordsTracker()
    tracker = Tracker([old, keywords], output_path=tmp_path, delivery=DeliverySettings(mode=mode))
    tracker.init(run_name="old", run_id="old-1")
    assert tracker.delivery_mode == mode
    before = time.time()
    tracker.log({"loss": 0.5})
    tracker.log({"loss": 0.25}, step=3)
    report = tracker.close()
    after = time.time()

    assert report.complete, report.describe()
    # the attributes a delivery process's backends set are copied back at close
    assert old.logged == [({"loss": 0.5}, 0), ({"loss": 0.25}, 3)]
    assert [step for step, _ in keywords.logged] == [0, 3]
    assert all(set(kwargs) == {"wall_time"} for _, kwargs in keywords.logged)
    assert all(before <= kwargs["wall_time"] <= after for _, kwargs in keywords.logged)


def test_the_signature_is_read_once_per_log_function(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    signature = base.inspect.signature

    def counting_signature(function: Any) -> Any:
        calls.append(function)
        return signature(function)

    monkeypatch.setattr(base.inspect, "signature", counting_signature)
    monkeypatch.setattr(base, "_LOG_TAKES_WALL_TIME", {})
    old, timed = OldStyleTracker(), TimedTracker()
    for step in range(3):
        old._receive_log({"loss": 1.0}, step, 123.0)
        timed._receive_log({"loss": 1.0}, step, 123.0)
    other = OldStyleTracker()  # another instance of a class already seen: no new look
    other._receive_log({"loss": 1.0}, 0, 123.0)

    assert len(calls) == 2
    assert [step for step, _, _ in timed.logged] == [0, 1, 2]
    assert {wall_time for _, wall_time, _ in timed.logged} == {123.0}
    assert [step for _, step in old.logged + other.logged] == [0, 1, 2, 0]


def test_without_a_wall_time_the_backend_gets_the_time_of_delivery() -> None:
    """A caller that has no time to give (a journal record without ``t``) passes None."""
    timed = TimedTracker()
    before = time.time()
    timed._receive_log({"loss": 1.0}, 7)
    (step, wall_time, _), *_ = timed.logged
    assert step == 7 and before <= wall_time <= time.time()


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_slow_backend_gets_the_time_of_the_log_call_not_of_delivery(
    tmp_path: Path, mode: str
) -> None:
    slow = TimedTracker(delay=0.25)
    tracker = Tracker([slow], output_path=tmp_path, delivery=DeliverySettings(mode=mode))
    tracker.init(run_name="slow", run_id="slow-1")
    assert tracker.delivery_mode == mode
    called = log_timed(tracker, 4)  # back to back: the backend falls a second behind
    tracker.close()

    assert [step for step, _, _ in slow.logged] == [0, 1, 2, 3]
    journal = journaled_times(tmp_path)
    for step, wall_time, _ in slow.logged:
        before, after = called[step]
        assert before <= wall_time <= after  # the time of the call ...
        assert wall_time == journal[step]  # ... the one the journal recorded
    # ... while the last call reached the backend after the three before it took 0.75 s
    step, wall_time, delivered_at = slow.logged[-1]
    assert delivered_at - wall_time >= 0.7


def test_calls_read_back_from_the_journal_keep_their_wall_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend more than ``queue_capacity`` calls behind reads the rest back from the
    journal: those calls carry the journal's ``t``."""
    read_back: list[int] = []
    original = BackendWorker._read_back

    def counting_read_back(self: BackendWorker, span: JournalSpan) -> None:
        read_back.append(span.calls)
        original(self, span)

    monkeypatch.setattr(BackendWorker, "_read_back", counting_read_back)
    slow = TimedTracker(delay=0.02)
    settings = DeliverySettings(mode="thread", queue_capacity=2)
    tracker = Tracker([slow], output_path=tmp_path, delivery=settings)
    tracker.init(run_name="behind", run_id="behind-1")
    called = log_timed(tracker, 30, pause=0.001)
    report = tracker.close()

    assert report.complete, report.describe()
    assert sum(read_back) > 0  # some calls did come from the journal
    assert [step for step, _, _ in slow.logged] == list(range(30))
    journal = journaled_times(tmp_path)
    for step, wall_time, _ in slow.logged:
        assert called[step][0] <= wall_time <= called[step][1]
        assert wall_time == journal[step]
