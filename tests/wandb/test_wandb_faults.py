"""The W&B plugin under the delivery engine's fault tests: a failing neighbour, preemption."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from backends_of import backend_of
from fault_plugins import fault_registry
from training_process import start_training, terminate_after

from noether.core.trackers import create_tracker
from noether.core.trackers.journal import read_journal
from noether_trackers_wandb import WandBTracker

OFFLINE = {"kind": "wandb", "project": "faults", "mode": "offline"}


def history_steps(helpers: Any, run_dir: Path, key: str) -> list[int]:
    return [row["global_step"] for row in helpers.run_file(run_dir).history() if key in row]


def test_a_raising_neighbour_does_not_touch_the_wandb_run(
    sandbox: Any, helpers: Any, tmp_path: Path
) -> None:
    tracker = create_tracker([{"kind": "raising"}, OFFLINE], tmp_path, registry=fault_registry())
    tracker.init(run_name="faults", run_id="faults-1")
    for step in range(100):
        tracker.log({"loss": float(step)})
    report = tracker.close(timeout=60)
    assert report is not None and [r.failed for r in report.backends] == [100, 0]
    wandb_tracker = backend_of(tracker, WandBTracker, index=1)
    assert wandb_tracker.run_dir is not None
    assert history_steps(helpers, wandb_tracker.run_dir, "loss") == list(range(100))
    assert helpers.run_file(wandb_tracker.run_dir).exit_code == 0


def test_sigterm_finishes_the_wandb_run_as_terminated(
    sandbox: Any, helpers: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start_training(tmp_path, "plain", subprocess_env, tracker=OFFLINE)
    assert terminate_after(process, seconds=1.0) == -signal.SIGTERM
    journaled = [record["step"] for record in read_journal(tmp_path) if record["op"] == "log"]
    [run_dir] = (tmp_path / "wandb").glob("offline-run-*")
    assert history_steps(helpers, run_dir, "loss") == journaled and len(journaled) > 50
    assert helpers.run_file(run_dir).exit_code == 143  # W&B shows it as not successful
    assert helpers.wandb_processes() == {}
