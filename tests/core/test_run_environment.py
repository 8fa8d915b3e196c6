"""The run's environment, recorded under ``run_environment`` in its config: in ``config.yaml``,
the journal and every real backend; host, versions, torch and GPUs, world size and nodes, job
ids and the git commit; never torch imported, never an error, replayed as it was recorded."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import stat
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_port import free_port
from run_every_backend import run_scenario
from stored_configs import tensorboard_config, trackio_config, user_config, wandb_config

from noether.core.trackers import create_tracker, run_environment
from noether.core.trackers.replay import replay_journal
from noether.core.trackers.run_environment import RUN_ENVIRONMENT_KEY, collect_run_environment
from noether_trackers_tensorboard.tracker import TensorboardTracker
from recording_plugins import RecordingTracker

SUPPORT = Path(__file__).resolve().parents[1] / "support"
#: Launcher variables the tests set; none may leak in from the machine running the tests.
LAUNCHER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_WORLD_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_NNODES",
    "SLURM_JOB_NUM_NODES",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "TORCHELASTIC_RUN_ID",
    "GIT_DIR",
)


@pytest.fixture(autouse=True)
def plain_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No launcher variables, a working directory outside any git checkout, and a program
    that has not imported torch (the torch tests put a stand-in in): another test in this
    process, a framework integration's, may have imported the real one."""
    for variable in LAUNCHER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    outside = tmp_path / "not-a-checkout"
    outside.mkdir()
    monkeypatch.chdir(outside)


def git(directory: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *arguments],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def git_checkout(directory: Path) -> str:
    """A git repository in ``directory`` with one commit on branch ``main``; its commit."""
    directory.mkdir(parents=True, exist_ok=True)
    git(directory, "init", "-q", "-b", "main")
    (directory / "train.py").write_text("print('training')\n")
    git(directory, "add", "train.py")
    git(directory, "commit", "-q", "-m", "first")
    return git(directory, "rev-parse", "HEAD")


def recorded_config(tmp_path: Path, **init: Any) -> dict[str, Any]:
    """The config a run of a recording backend stores in ``config.yaml``, checked to be what
    the backend and the journal got too."""
    output = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    tracker = RecordingTracker(output_path=output)
    tracker.init(run_name="env", **init)
    tracker.close()
    [(_, run)] = [call for call in tracker.calls if call[0] == "init"]
    [journaled] = [
        record["config"]
        for record in map(json.loads, (output / "journal.jsonl").read_text().splitlines())
        if record["op"] == "init"
    ]
    config: dict[str, Any] = yaml.safe_load((output / "config.yaml").read_text())
    assert config == run.config == journaled
    return config


def recorded(tmp_path: Path, **init: Any) -> dict[str, Any]:
    """The environment a run of a recording backend records (see :func:`recorded_config`)."""
    environment: dict[str, Any] = recorded_config(tmp_path, **init)[RUN_ENVIRONMENT_KEY]
    return environment


# ---- every real backend --------------------------------------------------------------------


def test_config_yaml_and_every_backend_store_the_run_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One real run with TensorBoard, W&B (offline) and Trackio, in a git checkout under a
    SLURM job: each stores the same environment as ``config.yaml`` and the journal."""
    sandbox = tmp_path / "sandbox"
    commit = git_checkout(sandbox)  # the run's working directory is sandbox/cwd
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    run = run_scenario(sandbox, tmp_path, "config-types")

    stored = yaml.safe_load((run.output / "config.yaml").read_text())
    environment = stored[RUN_ENVIRONMENT_KEY]
    [journaled] = [
        record["config"]
        for record in map(json.loads, (run.output / "journal.jsonl").read_text().splitlines())
        if record["op"] == "init"
    ]
    trackio = trackio_config(sandbox / "trackio", "every-backend", "typed")
    assert {
        "journal": journaled[RUN_ENVIRONMENT_KEY],
        "TensorBoard": tensorboard_config(run.output / "tensorboard_logs")[RUN_ENVIRONMENT_KEY],
        "W&B": wandb_config(run.output / "wandb")[RUN_ENVIRONMENT_KEY],
        "Trackio": trackio[RUN_ENVIRONMENT_KEY],
    } == dict.fromkeys(["journal", "TensorBoard", "W&B", "Trackio"], environment)

    assert environment["host"] == socket.gethostname()
    assert environment["python"] == platform.python_version()
    assert environment["platform"].startswith(f"{platform.system()}-{platform.release()}-")
    plugins_and_libraries = [
        "noether-trackers-core",
        "noether-trackers-tensorboard",
        "tensorboard",
        "noether-trackers-wandb",
        "wandb",
        "noether-trackers-trackio",
        "trackio",
    ]
    assert list(environment["versions"])[: len(plugins_and_libraries)] == plugins_and_libraries
    for name in plugins_and_libraries:
        assert environment["versions"][name] == importlib.metadata.version(name)
    assert (environment["world_size"], environment["nodes"]) == (1, 1)
    assert environment["job"] == {"slurm_job_id": "4242"}
    assert environment["git"] == {"commit": commit, "branch": "main", "dirty": False}


# ---- what is recorded ----------------------------------------------------------------------


def test_a_single_process_outside_git_records_host_versions_and_world(tmp_path: Path) -> None:
    environment = recorded(tmp_path, config={"lr": 0.1})
    assert environment == {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "platform": environment["platform"],
        "versions": {"noether-trackers-core": importlib.metadata.version("noether-trackers-core")},
        "world_size": 1,
        "nodes": 1,
    }


def test_the_environment_follows_the_users_config(tmp_path: Path) -> None:
    config = recorded_config(tmp_path, config={"b": 1, "a": {"c": 2}})
    assert list(config) == ["b", "a", RUN_ENVIRONMENT_KEY]
    assert user_config(config) == {"b": 1, "a": {"c": 2}}
    assert list(recorded_config(tmp_path)) == [RUN_ENVIRONMENT_KEY]  # config=None


def test_versions_name_each_backends_plugin_and_library(tmp_path: Path) -> None:
    class TunedTensorboard(TensorboardTracker):
        """A user's subclass: still provided by noether-trackers-tensorboard."""

    class Unpackaged(RecordingTracker):
        backend_library = "no-such-distribution-anywhere"

    environment = collect_run_environment([TunedTensorboard, Unpackaged])
    assert environment["versions"] == {
        name: importlib.metadata.version(name)
        for name in ("noether-trackers-core", "noether-trackers-tensorboard", "tensorboard")
    }


def test_git_commit_branch_and_dirty_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    commit = git_checkout(checkout)
    (checkout / "src").mkdir()
    monkeypatch.chdir(checkout / "src")  # found from below the top of the checkout too
    assert recorded(tmp_path)["git"] == {"commit": commit, "branch": "main", "dirty": False}

    (checkout / "notes.txt").write_text("untracked files do not make the tree dirty\n")
    assert collect_run_environment([])["git"]["dirty"] is False
    (checkout / "train.py").write_text("print('changed')\n")
    assert recorded(tmp_path)["git"] == {"commit": commit, "branch": "main", "dirty": True}

    git(checkout, "checkout", "-q", "--detach")
    assert collect_run_environment([])["git"] == {"commit": commit, "dirty": True}


def test_a_fresh_repository_without_commits_records_only_dirty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fresh").mkdir()
    git(tmp_path / "fresh", "init", "-q")
    monkeypatch.chdir(tmp_path / "fresh")
    assert collect_run_environment([])["git"] == {"dirty": False}


def test_no_git_key_outside_a_checkout_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "git" not in recorded(tmp_path)
    git_checkout(tmp_path / "checkout")
    monkeypatch.chdir(tmp_path / "checkout")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no git program at all
    assert "git" not in recorded(tmp_path)


def test_a_hanging_git_is_cut_off_and_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_checkout(tmp_path / "checkout")
    monkeypatch.chdir(tmp_path / "checkout")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_git = fake_bin / "git"
    fake_git.write_text('#!/bin/sh\necho $$ >> "$PIDS"\nexec sleep 30\n')
    fake_git.chmod(fake_git.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    monkeypatch.setattr(run_environment, "GIT_TIMEOUT", 0.3)
    started = time.monotonic()
    environment = collect_run_environment([])
    assert "git" not in environment and environment["world_size"] == 1
    assert time.monotonic() - started < 10  # not the 30 s the fake git would take
    pids = [int(line) for line in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in pids)


@pytest.mark.parametrize(
    ("launcher", "world_size", "nodes"),
    [
        ({"RANK": "0", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, 8, 2),
        ({"RANK": "0", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4", "GROUP_WORLD_SIZE": "2"}, 8, 2),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "16", "SLURM_NNODES": "4"}, 16, 4),
        ({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_NUM_NODES": "1"}, 4, 1),
        ({"SLURM_NNODES": "4"}, 1, 1),  # one process inside a four-node allocation
        ({"RANK": "0", "WORLD_SIZE": "4"}, 4, None),  # nothing says how many hosts
    ],
    ids=["torchrun", "torchrun-groups", "srun", "srun-one-node", "single", "unknown-nodes"],
)
def test_world_size_and_nodes_from_the_launcher(
    launcher: dict[str, str],
    world_size: int,
    nodes: int | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in launcher.items():
        monkeypatch.setenv(name, value)
    environment = recorded(tmp_path, run_id="job")
    assert environment["world_size"] == world_size
    assert environment.get("nodes") == nodes


def test_other_ranks_record_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(run_name="env", run_id="job", config={"lr": 0.1})
    assert tracker.run is not None and tracker.run.config == {"lr": 0.1}
    tracker.close()


def test_slurm_and_torchrun_job_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = {
        "SLURM_JOB_ID": "4243",
        "SLURM_ARRAY_JOB_ID": "4200",
        "SLURM_ARRAY_TASK_ID": "43",
        "TORCHELASTIC_RUN_ID": "elastic-9",
    }
    for name, value in job.items():
        monkeypatch.setenv(name, value)
    assert recorded(tmp_path)["job"] == {name.lower(): value for name, value in job.items()}
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's value outside rendezvous
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name)
    assert "job" not in recorded(tmp_path)


def test_a_resumed_run_records_the_environment_of_this_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job in ("100", "101"):
        monkeypatch.setenv("SLURM_JOB_ID", job)
        tracker = create_tracker({"kind": "tensorboard"}, tmp_path)
        tracker.init(run_name="env", run_id="same-run", config={"lr": 0.1})
        tracker.log({"loss": 1.0})
        tracker.close()
        assert tracker.run is not None and tracker.run.resumed == (job == "101")
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config[RUN_ENVIRONMENT_KEY]["job"] == {"slurm_job_id": "101"}


# ---- torch -----------------------------------------------------------------------------------


def test_gpu_names_and_cuda_version_come_from_the_programs_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in for torch on a GPU machine (this one has none): the names of the GPUs this
    process sees, and the CUDA version torch was built with."""
    names = {0: "NVIDIA H100 80GB HBM3", 1: "NVIDIA H100 80GB HBM3"}
    torch = types.SimpleNamespace(
        __version__="2.4.1+cu121",
        version=types.SimpleNamespace(cuda="12.1"),
        cuda=types.SimpleNamespace(
            is_available=lambda: True,
            is_initialized=lambda: True,
            device_count=lambda: 2,
            get_device_name=names.__getitem__,
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    environment = recorded(tmp_path)
    assert environment["versions"]["torch"] == "2.4.1+cu121"
    assert (environment["cuda"], environment["gpus"]) == ("12.1", list(names.values()))
    assert environment["gpu_count"] == 2


def test_gpu_names_never_initialise_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the program initialised CUDA only the count is recorded: asking for a name
    would initialise CUDA in the training process."""

    def initialising(index: int) -> str:
        raise AssertionError("get_device_name initialises CUDA")

    torch = types.SimpleNamespace(
        __version__="2.4.1+cu121",
        version=types.SimpleNamespace(cuda="12.1"),
        cuda=types.SimpleNamespace(
            is_available=lambda: True,
            is_initialized=lambda: False,
            device_count=lambda: 8,
            get_device_name=initialising,
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    environment = recorded(tmp_path)
    assert environment["gpu_count"] == 8 and "gpus" not in environment


def test_a_torch_that_fails_to_answer_leaves_its_fields_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed")

    torch = types.SimpleNamespace(
        __version__="2.4.1", cuda=types.SimpleNamespace(is_available=broken)
    )
    monkeypatch.setitem(sys.modules, "torch", torch)
    environment = recorded(tmp_path)
    assert environment["versions"]["torch"] == "2.4.1"
    assert "cuda" not in environment and "gpus" not in environment


def test_a_torchrun_job_records_world_size_nodes_torch_and_its_run_id(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Two ranks under torchrun with torch.distributed (gloo, CPU): rank 0 records the world
    from torch.distributed, torch's version and this CPU build's null CUDA and no GPUs."""
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
        "--rdzv_id",
        "ddp-job-7",
        str(SUPPORT / "distributed_training.py"),
        str(tmp_path / "out"),
        "torch",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    config = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    environment = config[RUN_ENVIRONMENT_KEY]
    assert (environment["world_size"], environment["nodes"]) == (2, 1)
    assert environment["versions"]["torch"] == importlib.metadata.version("torch")
    assert (environment["cuda"], environment["gpus"]) == (None, [])
    assert environment["job"] == {"torchelastic_run_id": "ddp-job-7"}


def test_importing_and_starting_a_run_never_imports_torch(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    program = (
        "import sys\n"
        "from noether.core.trackers import create_tracker\n"
        "tracker = create_tracker({'kind': 'tensorboard'}, sys.argv[1])\n"
        "tracker.init(run_name='no-torch', config={'lr': 0.1})\n"
        "tracker.log({'loss': 1.0})\n"
        "tracker.close()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    environment = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())[
        RUN_ENVIRONMENT_KEY
    ]
    assert "torch" not in environment["versions"] and "gpus" not in environment


# ---- the reserved key, failures, replay ------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [{RUN_ENVIRONMENT_KEY: {"host": "mine"}}, {RUN_ENVIRONMENT_KEY: None, "lr": 0.1}],
)
def test_a_config_holding_the_reserved_key_is_refused(tmp_path: Path, config: Any) -> None:
    tracker = RecordingTracker(output_path=tmp_path)
    with pytest.raises(ValueError, match="'run_environment' is reserved"):
        tracker.init(run_name="env", config=config)
    assert not (tmp_path / "config.yaml").exists()
    tracker.init(run_name="env", config={"nested": {RUN_ENVIRONMENT_KEY: "fine below the top"}})
    tracker.close()
    assert tracker.run is not None and RUN_ENVIRONMENT_KEY in tracker.run.config


def test_a_failing_probe_leaves_its_field_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_host() -> str:
        raise OSError("no hostname")

    monkeypatch.setattr(socket, "gethostname", no_host)
    environment = recorded(tmp_path)
    assert "host" not in environment and environment["world_size"] == 1


def test_a_run_without_output_or_backends_collects_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(tracker_classes: Any) -> dict[str, Any]:
        raise AssertionError("collected for a run that stores nothing")

    import noether.core.trackers.tracker as tracker_module

    monkeypatch.setattr(tracker_module, "collect_run_environment", refuse)
    tracker = create_tracker(None, None)
    tracker.init(run_name="disabled", config={"lr": 0.1})
    tracker.close()


def test_replay_pushes_the_environment_the_run_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying elsewhere (another job, another directory) keeps the original environment;
    a journal from before environments were recorded is replayed without one."""
    monkeypatch.setenv("SLURM_JOB_ID", "original-job")
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path / "run")
    tracker.init(run_name="env", run_id="r1", config={"lr": 0.1})
    tracker.log({"loss": 1.0})
    tracker.close()
    original = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())

    monkeypatch.setenv("SLURM_JOB_ID", "replaying-job")
    git_checkout(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "elsewhere")
    replay_journal(tmp_path / "run", {"kind": "tensorboard"}, tmp_path / "replayed")
    replayed = tensorboard_config(tmp_path / "replayed" / "tensorboard_logs")
    assert replayed == original and "git" not in replayed[RUN_ENVIRONMENT_KEY]
    assert replayed[RUN_ENVIRONMENT_KEY]["job"] == {"slurm_job_id": "original-job"}
    assert yaml.safe_load((tmp_path / "replayed" / "config.yaml").read_text()) == original

    journal = tmp_path / "run" / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    for record in records:
        if record["op"] == "init":
            del record["config"][RUN_ENVIRONMENT_KEY]  # as an older version journaled it
    journal.write_text("".join(json.dumps(record) + "\n" for record in records))
    replay_journal(tmp_path / "run", {"kind": "tensorboard"}, tmp_path / "replayed-old")
    assert tensorboard_config(tmp_path / "replayed-old" / "tensorboard_logs") == {"lr": 0.1}
