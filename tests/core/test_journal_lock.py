"""One writer per run directory: a second process (or tracker) that opens a run whose journal
is being written fails at ``init()`` with a clear error, and the first run stays intact; a
process that died leaves no lock behind (issue 9, point 10)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stored_configs import user_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_process import signal_after, start_training

from noether.core.trackers import TrackerConfigError, create_tracker
from noether.core.trackers.journal import read_journal

CALLS = 5_000

# Logs half its calls, waits for a line on stdin (while a second process tries the same run),
# then logs the other half and closes.
FIRST_PROCESS = f"""
import sys
from noether.core.trackers import create_tracker

tracker = create_tracker({{"kind": "tensorboard", "flush_secs": 600}}, sys.argv[1])
tracker.init(run_name="first", run_id="job-1", config={{"owner": "first"}})
for step in range({CALLS // 2}):
    tracker.log({{"loss": float(step)}})
tracker.flush()
print("ready", flush=True)
sys.stdin.readline()
for step in range({CALLS // 2}, {CALLS}):
    tracker.log({{"loss": float(step)}})
report = tracker.close()
print("complete" if report.complete else report.describe(), flush=True)
"""

# The same job started twice by mistake: same output path, same run id.
SECOND_PROCESS = f"""
import sys
from noether.core.trackers import create_tracker

tracker = create_tracker({{"kind": "tensorboard", "flush_secs": 600}}, sys.argv[1])
tracker.init(run_name="second", run_id="job-1", config={{"owner": "second"}})
for step in range({CALLS}):
    tracker.log({{"loss": -1.0}})
tracker.close()
"""


def tensorboard_losses(log_dir: Path) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars("loss")]


def run_two_processes(run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start the first process, run the second while the first is half-way, finish the first;
    return what the second did."""
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_PROCESS, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert first.stdin is not None and first.stdout is not None
    try:
        assert first.stdout.readline().strip() == "ready"
        second = subprocess.run(
            [sys.executable, "-c", SECOND_PROCESS, str(run_dir)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        first.stdin.write("go\n")
        first.stdin.flush()
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, err
    assert out.strip() == "complete", err
    return second


def test_a_second_process_on_a_live_run_fails_at_init_and_the_first_run_is_intact(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    second = run_two_processes(tmp_path, subprocess_env)

    assert second.returncode != 0  # init() raised: the second process never logged a call
    last_line = second.stderr.strip().splitlines()[-1]
    assert last_line == (
        "noether.core.trackers.errors.JournalLockedError: invalid tracker configuration: "
        f"output_path {tmp_path}: another process is writing a run in this directory (its "
        "journal.jsonl is locked); wait until it ends, or give this run an output path of "
        "its own"
    )
    records = list(read_journal(tmp_path))
    assert [r["run_name"] for r in records if r["op"] == "init"] == ["first"]
    assert [r["values"]["loss"] for r in records if r["op"] == "log"] == [
        float(step) for step in range(CALLS)
    ]
    assert records[-1]["op"] == "close" and records[-1]["undelivered"] == {}
    assert tensorboard_losses(tmp_path / "tensorboard_logs") == [
        (step, float(step)) for step in range(CALLS)
    ]


def test_a_second_process_on_a_live_run_leaves_its_config_alone(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run_two_processes(tmp_path, subprocess_env)
    assert user_config(yaml.safe_load((tmp_path / "config.yaml").read_text())) == {"owner": "first"}


def test_the_same_directory_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    first = create_tracker({"kind": "tensorboard"}, tmp_path)
    first.init(run_name="first", run_id="job-1")
    second = create_tracker({"kind": "tensorboard"}, tmp_path)
    with pytest.raises(TrackerConfigError, match="another tracker of this process") as refused:
        second.init(run_name="second", run_id="job-1")
    assert str(tmp_path) in str(refused.value)
    assert type(refused.value).__name__ == "JournalLockedError"
    first.log({"loss": 1.0})
    first.close()

    again = create_tracker({"kind": "tensorboard"}, tmp_path)  # closed: the directory is free
    again.init(run_name="first", run_id="job-1")
    again.log({"loss": 2.0})
    again.close()
    assert again.run is not None and again.run.resumed
    records = list(read_journal(tmp_path))
    assert [r["run_name"] for r in records if r["op"] == "init"] == ["first", "first"]
    assert [(r["step"], r["values"]) for r in records if r["op"] == "log"] == [
        (0, {"loss": 1.0}),
        (1, {"loss": 2.0}),
    ]


def test_a_job_restarted_after_sigkill_resumes_normally(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    signal_after(start_training(tmp_path, "plain", subprocess_env), 0.5, signal.SIGKILL)
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)  # the lock died with it
    tracker.init(run_name="preempted", run_id="job-1")
    assert tracker.run is not None and tracker.run.resumed
    tracker.log({"loss": 0.0})
    assert tracker.close() is not None


# A training process with a forked worker (as a fork-started data loader has): it prints the
# worker's pid once the run is live, then trains until it is killed; the worker outlives it.
WITH_A_FORKED_WORKER = """
import os, sys, time
from noether.core.trackers import create_tracker

tracker = create_tracker({"kind": "tensorboard"}, sys.argv[1])
tracker.init(run_name="forking", run_id="job-1")
tracker.log({"loss": 1.0})
tracker.flush()
worker = os.fork()
if worker == 0:  # the worker: no tracking, just alive
    time.sleep(120)
    os._exit(0)
print(worker, flush=True)
while True:
    tracker.log({"loss": 0.5})
    time.sleep(0.01)
"""


def test_a_forked_worker_that_outlives_a_killed_job_does_not_lock_its_restart(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    job = subprocess.Popen(
        [sys.executable, "-c", WITH_A_FORKED_WORKER, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    assert job.stdout is not None
    worker = int(job.stdout.readline())
    try:
        job.send_signal(signal.SIGKILL)  # preempted hard; its worker lives on
        job.wait(timeout=30)
        os.kill(worker, 0)  # still alive
        restarted = create_tracker({"kind": "tensorboard"}, tmp_path)
        restarted.init(run_name="forking", run_id="job-1")  # no JournalLockedError
        assert restarted.run is not None and restarted.run.resumed
        restarted.log({"loss": 0.25})
        assert restarted.close().complete
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
        job.kill()
        job.wait()
