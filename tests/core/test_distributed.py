"""Distributed jobs: only rank 0 talks to backends, all ranks share a run id, metrics reduce
across ranks. Real processes: torchrun with torch.distributed (gloo, CPU) and plain
launcher environments (torchrun's RANK/WORLD_SIZE, SLURM's SLURM_PROCID/SLURM_NTASKS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from local_port import free_port
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import reduce_metrics
from noether.core.trackers.journal import read_journal

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "distributed_training.py"


def run_ids(output: str) -> dict[int, str]:
    ids = {}
    for line in output.splitlines():
        if line.startswith("RUN_ID "):
            _, rank, run_id = line.split()
            ids[int(rank)] = run_id
    return ids


def scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_torchrun_job_logs_once_from_rank_zero_with_reduced_metrics(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(SCRIPT),
        str(tmp_path),
        "torch",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ids = run_ids(done.stdout)
    assert set(ids) == {0, 1} and ids[0] == ids[1]  # one run id, drawn by rank 0
    log_dir = tmp_path / "tensorboard_logs"
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1  # only rank 0 wrote
    assert scalars(log_dir, "loss") == [(0, 1.5), (1, 2.5), (2, 3.5)]  # mean of rank 1 and 2
    assert scalars(log_dir, "max_loss") == [(0, 2.0), (1, 3.0), (2, 4.0)]
    assert scalars(log_dir, "total_correct") == [(0, 10.0), (1, 10.0), (2, 10.0)]
    inits = [record for record in read_journal(tmp_path) if record["op"] == "init"]
    assert len(inits) == 1 and inits[0]["run_id"] == ids[0]


@pytest.mark.parametrize(
    "launcher",
    [
        {"RANK": "{rank}", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "elastic-7"},
        {"SLURM_PROCID": "{rank}", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "elastic-7"},
    ],
    ids=["torchrun-env", "slurm"],
)
def test_launcher_environment_without_torch_distributed(
    launcher: dict[str, str], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    outputs = {}
    for rank in (1, 0):  # rank 1 first: it must leave the output directory untouched
        env = {
            **subprocess_env,
            **{name: value.format(rank=rank) for name, value in launcher.items()},
        }
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(tmp_path), "env"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[rank] = run_ids(done.stdout)[rank]
        if rank == 1:
            assert list(tmp_path.iterdir()) == []
    assert outputs == {0: "elastic-7", 1: "elastic-7"}
    assert scalars(tmp_path / "tensorboard_logs", "loss") == [(0, 1.0), (1, 2.0), (2, 3.0)]


def test_reduce_metrics_in_a_single_process_returns_the_metrics() -> None:
    assert reduce_metrics({"loss": 1, "acc": 0.5}, "max") == {"acc": 0.5, "loss": 1.0}
    with pytest.raises(ValueError, match="mean, sum, max or min"):
        reduce_metrics({"loss": 1.0}, "median")  # type: ignore[arg-type]
