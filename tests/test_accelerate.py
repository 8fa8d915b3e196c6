"""``NoetherTracker``: ``Accelerator(log_with=...)`` drives a noether-trackers run
(``init_trackers``, ``log``, ``end_training``); a tiny model trained on CPU, read back from
TensorBoard and W&B offline (issue 14, point 3)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from child_lines import run_job
from local_port import free_port
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

from noether.core.trackers.accelerate import NoetherTracker

SUPPORT = Path(__file__).parent / "support"
SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "accel", "mode": "offline"}]


def test_an_accelerate_loop_logs_through_the_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "accel-1"
    accelerator = Accelerator(
        cpu=True,
        log_with=NoetherTracker(SECTION, run_name="accel", run_id="accel-1", save_dir=tmp_path),
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


def test_a_two_process_job_logs_once_from_the_main_process(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # Accelerate calls trackers on the main process only: the run id must not need the others
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(SUPPORT / "accelerate_ddp.py"), str(tmp_path),
    ]  # fmt: skip
    job = run_job(command, subprocess_env, timeout=180)  # a rank left waiting would hang here
    assert job.returncode == 0, job.stderr[-3000:]
    assert sorted(job.stdout.split()) == ["0", "1", "DONE", "DONE"]
    run_dir = tmp_path / "ddp"
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    assert len(list((run_dir / "tensorboard_logs").glob("events.out.tfevents.*"))) == 1
    assert [event.step for event in events.Scalars("train/loss")] == [0, 1, 2, 3]
    assert {event.value for event in events.Scalars("processes")} == {2.0}
    assert yaml.safe_load((run_dir / "summary.yaml").read_text())["_status"] == "finished"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ddp"]  # only the main wrote
