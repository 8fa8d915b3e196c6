"""``examples/hydra``: a Hydra app whose config group ``tracker`` selects the tracker (issue 14,
point 4). Run as a user runs it, in a subprocess from a fresh working directory; the runs are
read back from TensorBoard's event files and W&B's offline ``.wandb`` file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

TRAIN = Path(__file__).resolve().parents[1] / "examples" / "hydra" / "train.py"


def hydra_app(cwd: Path, env: dict[str, str], *overrides: str) -> str:
    """Run the example with ``overrides`` in ``cwd``; its output (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(TRAIN), *overrides],
        cwd=cwd,
        env={**env, "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def losses_in(run_dir: Path) -> list[int]:
    """The steps of ``train/loss`` in the TensorBoard run under ``run_dir``."""
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    return [event.step for event in events.Scalars("train/loss")]


def test_the_default_tracker_writes_into_hydras_run_directory(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    output = hydra_app(tmp_path, subprocess_env, "steps=7")
    [run_dir] = (tmp_path / "outputs").glob("*/*")
    assert losses_in(run_dir) == list(range(7))
    assert "tensorboard: outputs/" in output


def test_an_override_selects_and_configures_another_tracker(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    hydra_app(tmp_path, subprocess_env, "tracker=wandb", "tracker.project=override", "steps=5")
    [run_dir] = (tmp_path / "outputs").glob("*/*")
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.run.project == "override"
    assert [row["_step"] for row in stored.history()] == list(range(5))
    assert stored.config()["steps"] == 5  # the whole Hydra config is the run's config


def test_every_job_of_a_multirun_is_a_run_of_its_own(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    hydra_app(tmp_path, subprocess_env, "-m", "tracker=tensorboard,'null'", "steps=3,4")
    jobs = sorted((tmp_path / "multirun").glob("*/*/[0-9]*"), key=lambda p: int(p.name))
    assert len(jobs) == 4
    # the sweep is tracker x steps: tensorboard with 3 and 4 steps, then no tracking
    assert losses_in(jobs[0]) == [0, 1, 2]
    assert losses_in(jobs[1]) == [0, 1, 2, 3]
    for job in jobs[2:]:
        assert not (job / "tensorboard_logs").exists() and not (job / "journal.jsonl").exists()
    journals = [(job / "journal.jsonl").read_text() for job in jobs[:2]]
    assert journals[0].split('"run_id":')[1][:30] != journals[1].split('"run_id":')[1][:30]
