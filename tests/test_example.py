"""The README's first command: the example training with TensorBoard, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]


def test_example_training_with_tensorboard(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    output = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--output", str(output)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"tensorboard --logdir {output / 'tensorboard_logs'}" in done.stdout
    summary = yaml.safe_load((output / "summary.yaml").read_text())
    assert summary["_status"] == "finished" and summary["val/loss/min"] < 0.1
    events = EventAccumulator(str(output / "tensorboard_logs"), size_guidance={"scalars": 0})
    events.Reload()
    assert len(events.Scalars("train/loss")) == 50 and len(events.Scalars("val/accuracy")) == 5
