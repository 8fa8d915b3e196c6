"""How a run ends under Lightning and the Hugging Face Trainer when training does not finish
(issue 14): an error, Ctrl+C and preemption, each for real in a process of its own (an
uncaught exception, SIGINT, SIGTERM), read back from the run's summary and W&B's own file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from wandb_file import WandbRunFile

SCRIPT = Path(__file__).parent / "support" / "framework_endings.py"

ENDINGS = {
    # ending: (the run's status, the process's exit status; None: any but 0)
    "raise": ("failed", 1),
    "sigint": ("interrupted", None),
    "sigterm": ("terminated", None),
}


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("framework", ["lightning", "transformers"])
def test_a_run_ends_with_the_status_of_what_stopped_training(
    framework: str, ending: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    status, exit_status = ENDINGS[ending]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), framework, ending, str(tmp_path)],
        env={**subprocess_env, "PYTHONPATH": str(SCRIPT.parent)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    expected = done.returncode != 0 if exit_status is None else done.returncode == exit_status
    assert expected, f"exit status {done.returncode}\n{output}"
    if ending == "sigterm" and framework == "transformers":
        # nothing of the program handles SIGTERM: the core closes the run, then SIGTERM ends
        # the process as it would have without tracking
        assert done.returncode == -signal.SIGTERM
    [summary] = tmp_path.glob("noether/*/summary.yaml")
    assert yaml.safe_load(summary.read_text())["_status"] == status, output
    [wandb_file] = summary.parent.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.exit_code not in (None, 0)
    # every step before the ending reached W&B (Lightning counts steps from 0, the Trainer
    # logs after each step, from 1)
    logged = [row["global_step"] for row in stored.history() if "train/loss" in row]
    assert logged == ([0, 1, 2] if framework == "lightning" else [1, 2, 3])
