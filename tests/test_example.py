"""The README's first command: the example training, end to end, with every example config."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
#: Addresses that refuse connections: the seed configs ask for W&B online and a Trackio Space.
NO_SERVERS = {"WANDB_BASE_URL": "http://127.0.0.1:9", "HF_ENDPOINT": "http://127.0.0.1:9"}


def train_example(output: Path, env: dict[str, str], *arguments: str) -> str:
    """Run ``examples/train.py`` into ``output``; its stdout."""
    command = [sys.executable, str(ROOT / "examples" / "train.py"), "--output", str(output)]
    done = subprocess.run(
        [*command, *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=output.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def config(name: str) -> str:
    return str(ROOT / "examples" / "configs" / name)


def test_example_training_with_tensorboard(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    output = tmp_path / "run"
    stdout = train_example(output, subprocess_env)
    [view] = [line.removeprefix("view it: ") for line in stdout.splitlines() if "view it" in line]
    assert view.endswith(f"tensorboard --logdir {output / 'tensorboard_logs'}")
    # the printed command runs as printed, without an activated virtual environment
    done = subprocess.run(
        [*shlex.split(view), "--help"], capture_output=True, text=True, env=subprocess_env
    )
    assert done.returncode == 0 and "--logdir" in done.stdout, done.stderr
    summary = yaml.safe_load((output / "summary.yaml").read_text())
    assert summary["_status"] == "finished" and summary["val/loss/min"] < 0.1
    events = EventAccumulator(str(output / "tensorboard_logs"), size_guidance={"scalars": 0})
    events.Reload()
    assert len(events.Scalars("train/loss")) == 50 and len(events.Scalars("val/accuracy")) == 5


def test_example_training_with_the_third_party_csv_plugin(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The example plugin, installed as a user would, is selected from YAML by its kind."""
    output = tmp_path / "run"
    train_example(output, subprocess_env, "--config", config("csv.yaml"), "--run-id", "csv-run")
    with (output / "csv_logs" / "csv-run.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert sum(1 for row in rows if row["key"] == "train/loss") == 50
    assert {"record": "summary", "step": "", "key": "_status", "value": '"finished"'} in rows


def test_list_shows_the_installed_example_plugin(subprocess_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "noether.core.trackers.cli", "list", "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
        check=True,
    )
    [csv_kind] = [entry for entry in json.loads(done.stdout)["trackers"] if entry["kind"] == "csv"]
    assert csv_kind["distribution"] == "noether-trackers-csv" and csv_kind["version"] == "0.1.0"


@pytest.mark.parametrize("name", ["wandb.yaml", "trackio.yaml", "fanout.yaml"])
def test_example_training_with_the_seed_configs(
    name: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The seed's W&B and Trackio YAML run unchanged here: no account, no network (W&B falls
    back to offline, Trackio to its local store), and the fan-out config feeds all three."""
    output = tmp_path / "run"
    train_example(output, {**subprocess_env, **NO_SERVERS}, "--config", config(name))
    summary = yaml.safe_load((output / "summary.yaml").read_text())
    assert summary["_status"] == "finished" and summary["train/loss/last"] < 0.1
    if name != "trackio.yaml":
        assert list((output / "wandb").glob("offline-run-*/run-*.wandb"))


def test_example_with_tracking_disabled_claims_no_files(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    output = tmp_path / "run"
    stdout = train_example(output, subprocess_env, "--config", config("disabled.yaml"))
    assert "finished" in stdout and "summary:" not in stdout and not output.exists()
