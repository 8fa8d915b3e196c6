"""A replayed run keeps the times it was logged at: ``noether-trackers replay`` gives every
backend the wall time of each original ``log()`` call (the journal's ``t``), which TensorBoard
stores as the event's ``wall_time`` and W&B as the row's ``_timestamp``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

from noether.core.trackers import create_tracker
from noether.core.trackers.cli import main
from noether.core.trackers.journal import JournalReader
from noether.core.trackers.records import LogRecord
from noether.core.trackers.replay import replay_journal


def log_a_run(run_dir: Path) -> dict[int, float]:
    """Log three steps, 0.3 s apart, into a TensorBoard run; the journaled time of each."""
    tracker = create_tracker({"kind": "tensorboard"}, run_dir)
    tracker.init(run_name="timed", run_id="timed-1")
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(0.3)
    tracker.close()
    times = {
        record.step: record.t
        for record in JournalReader(run_dir).records()
        if isinstance(record, LogRecord) and record.t is not None
    }
    assert sorted(times) == [0, 1, 2]
    return times


def tensorboard_times(log_dir: Path) -> dict[int, float]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {event.step: event.wall_time for event in events.Scalars("loss")}


def wandb_times(output: Path) -> dict[int, float]:
    (path,) = output.glob("wandb/offline-run-*/run-*.wandb")
    rows = WandbRunFile.read(path).history()
    return {row["global_step"]: row["_timestamp"] for row in rows if "loss" in row}


def test_replay_keeps_the_original_times_in_tensorboard_and_wandb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    logged = log_a_run(run)
    time.sleep(2.0)  # the replay's own clock is now clearly later than every call
    config = tmp_path / "replay.yaml"
    config.write_text("tracker:\n  - kind: tensorboard\n  - kind: wandb\n    mode: offline\n")
    replay_started = time.time()

    assert main(["replay", str(run), "--to", str(config)]) == 0
    assert "records" in capsys.readouterr().err  # the progress bar

    output = run / "replay"
    for stored in (tensorboard_times(output / "tensorboard_logs"), wandb_times(output)):
        assert sorted(stored) == [0, 1, 2]
        for step, wall_time in stored.items():
            assert wall_time == pytest.approx(logged[step], abs=1e-3)
            assert wall_time < replay_started - 1.5
        # the gaps between the calls are there too
        assert stored[2] - stored[0] == pytest.approx(logged[2] - logged[0], abs=1e-3)


def test_replay_with_a_journal_without_times_uses_the_replay_time(tmp_path: Path) -> None:
    """A journal line without ``t`` (or with one no backend could show) is replayed at the
    time of the replay."""
    run = tmp_path / "run"
    log_a_run(run)
    journal = run / "journal.jsonl"
    lines = journal.read_text().splitlines()
    rewritten = []
    for line in lines:
        if '"op": "log"' in line or '"op":"log"' in line:
            if '"step": 0' in line or '"step":0' in line:
                line = line.replace('"t":', '"ignored":', 1)
            elif '"step": 1' in line or '"step":1' in line:
                line = line.replace('"t":', '"t": NaN, "ignored":', 1)
        rewritten.append(line)
    journal.write_text("\n".join(rewritten) + "\n")
    logged = {
        record.step: record.t
        for record in JournalReader(run).records()
        if isinstance(record, LogRecord)
    }
    assert logged[0] is None and logged[2] is not None  # the test changed what it meant to

    before = time.time()
    replay_journal(run, {"kind": "tensorboard"}, tmp_path / "out")
    stored = tensorboard_times(tmp_path / "out" / "tensorboard_logs")

    assert before <= stored[0] <= time.time()
    assert before <= stored[1] <= time.time()
    assert stored[2] == pytest.approx(logged[2], abs=1e-3)
