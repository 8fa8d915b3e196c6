"""The Trackio plugin under the delivery engine's fault tests: a failing neighbour, preemption."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from fault_plugins import fault_registry
from training_process import start_training, terminate_after

from noether.core.trackers import create_tracker
from noether.core.trackers.journal import read_journal

TRACKIO = {"kind": "trackio", "project": "faults"}


def test_a_raising_neighbour_does_not_touch_the_trackio_run(store: Any, tmp_path: Path) -> None:
    tracker = create_tracker([{"kind": "raising"}, TRACKIO], tmp_path, registry=fault_registry())
    tracker.init(run_name="faults")
    for step in range(100):
        tracker.log({"loss": float(step)})
    report = tracker.close(timeout=60)
    assert report is not None and [r.failed for r in report.backends] == [100, 0]
    assert [row["step"] for row in store.logs("faults", "faults")] == list(range(100))
    assert store.config("faults", "faults")["summary"]["_status"] == "finished"


def test_sigterm_finishes_the_trackio_run_as_terminated(
    store: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start_training(tmp_path, "plain", subprocess_env, tracker=TRACKIO)
    assert terminate_after(process, seconds=1.0) == -signal.SIGTERM
    journaled = [record["step"] for record in read_journal(tmp_path) if record["op"] == "log"]
    assert [row["step"] for row in store.logs("faults", "preempted")] == journaled and len(
        journaled
    ) > 50
    assert store.config("faults", "preempted")["summary"]["_status"] == "terminated"
