"""``noether-trackers replay``: a run's journal pushed into another backend later."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_process import signal_after, start_training

from noether.core.trackers import Image, create_tracker
from noether.core.trackers.cli import main

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def read_events(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_replay_into_tensorboard_reproduces_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    tracker = create_tracker(
        {"kind": "csv"}, run
    )  # logged with a backend that cannot show images ...
    tracker.init(run_name="offline", run_id="r-1", config={"lr": 0.1})
    for step in range(5):
        tracker.log({"loss": 1.0 / (step + 1)})
    tracker.log({"eval/loss": 0.3}, step=2)
    tracker.log({"sample": Image(np.full((3, 3), 200, dtype=np.uint8))}, step=4)
    tracker.close()
    config = tmp_path / "tb.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")

    assert main(["replay", str(run), "--to", str(config)]) == 0  # ... replayed into another
    assert "9/9 records" in capsys.readouterr().err  # the progress bar
    events = read_events(run / "replay" / "tensorboard_logs")
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("loss")] == [
        (0, 1.0),
        (1, 0.5),
        (2, 0.3333),
        (3, 0.25),
        (4, 0.2),
    ]
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("eval/loss")] == [(2, 0.3)]
    assert events.Images("sample")[0].step == 4
    assert "loss/min" in (run / "replay" / "summary.yaml").read_text()


def test_replay_of_a_killed_run(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    signal_after(start_training(tmp_path, "plain", subprocess_env), 1.5, signal.SIGKILL)
    config = tmp_path / "tb.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")
    assert (
        main(["replay", str(tmp_path), "--to", str(config), "--output", str(tmp_path / "again")])
        == 0
    )
    steps = [e.step for e in read_events(tmp_path / "again" / "tensorboard_logs").Scalars("loss")]
    assert len(steps) > 100 and steps == list(range(len(steps)))
    assert "_status: failed" in (tmp_path / "again" / "summary.yaml").read_text()


def test_replay_needs_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tb.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")
    assert main(["replay", str(tmp_path), "--to", str(config)]) == 1
    assert "no journal.jsonl here" in capsys.readouterr().err
