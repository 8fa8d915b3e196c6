"""``NoetherTracker``: ``Accelerator(log_with=...)`` drives a noether-trackers run
(``init_trackers``, ``log``, ``end_training``); a tiny model trained on CPU, read back from
TensorBoard and W&B offline (issue 14, point 3)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

from noether.core.trackers.accelerate import NoetherTracker

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "accel", "mode": "offline"}]


def test_an_accelerate_loop_logs_through_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    accelerator = Accelerator(
        cpu=True, log_with=NoetherTracker(SECTION, run_name="accel", output_path=run_dir)
    )
    accelerator.init_trackers("accel", config={"learning_rate": 0.05, "epochs": 2})
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = accelerator.prepare(model, optimizer)
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    for step in range(6):
        loss = torch.nn.functional.mse_loss(model(x), 2 * x)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        accelerator.log({"train/loss": loss.item()}, step=step)
    accelerator.end_training()

    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == list(range(6))
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert [row["_step"] for row in stored.history() if "train/loss" in row] == list(range(6))
    assert stored.config()["learning_rate"] == 0.05 and stored.exit_code == 0
    assert yaml.safe_load((run_dir / "summary.yaml").read_text())["_status"] == "finished"
