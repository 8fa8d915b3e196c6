"""``examples/frameworks``: each example runs as its docstring says, from a fresh working
directory, and its run is read back from TensorBoard's event files and W&B's offline file
(issue 14; the docs pages include these files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "frameworks"

#: example: (its command line after the interpreter, where its runs go, the steps of train/loss)
RUNS = {
    "lightning": (["lightning_train.py"], "outputs/lightning/noether", list(range(16))),
    "lightning-cli": (
        ["lightning_cli.py", "fit", "--config", str(EXAMPLES / "lightning_cli.yaml")],
        "outputs/lightning-cli/noether",
        list(range(16)),
    ),
    "transformers": (["transformers_train.py"], "outputs/transformers/noether", list(range(1, 21))),
    "accelerate": (["accelerate_train.py"], "outputs/accelerate", list(range(30))),
}


@pytest.mark.parametrize("example", RUNS)
def test_the_example_trains_and_its_run_reads_back(
    example: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    command, runs, steps = RUNS[example]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / command[0]), *command[1:]],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [run_dir] = (tmp_path / runs).iterdir()
    # it prints where each backend put the run, with the command to look at it
    assert f"tensorboard: {run_dir.relative_to(tmp_path)}/tensorboard_logs; view it:" in done.stdout
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == steps
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.run.project == "noether-frameworks" and stored.exit_code == 0
    assert yaml.safe_load((run_dir / "summary.yaml").read_text())["_status"] == "finished"
    if example == "transformers":
        assert [event.step for event in events.Scalars("eval/loss")] == [10, 20]
    if example.startswith("lightning"):  # checkpoints go beside the run, as Lightning puts them
        assert list((run_dir / "checkpoints").glob("*.ckpt"))
