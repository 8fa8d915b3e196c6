"""The delivery process under real processes, real signals and real backends.

A run's backends and journal run in a delivery process of the run's own. These tests kill the
training process or the delivery process with SIGKILL and read every store back (the journal,
TensorBoard with its own ``EventAccumulator``, W&B's offline ``.wandb`` files as ``wandb sync``
would upload them, Trackio through its own ``SQLiteStorage``): every step must be there exactly
once, and the run must end with the status it deserves. They also check that runs leave no
process, thread or descriptor behind, that there is one delivery process per run, and that a
forked data-loader worker neither logs into nor closes its parent's run.

The training processes are ``tests/support/delivery_trainer.py`` (see its docstring). Every
process a test starts, it kills in a ``finally``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import child_lines
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

from noether.core.trackers.journal import read_journal

TRAINER = Path(__file__).resolve().parent / "support" / "delivery_trainer.py"
PROJECT = "delivery-process"
SECTION: list[dict[str, Any]] = [
    {"kind": "tensorboard"},
    {"kind": "wandb", "mode": "offline"},
    {"kind": "trackio", "project": PROJECT},
]
#: What the W&B plugin finishes a failed run with (``EXIT_CODES["failed"]``).
WANDB_FAILED = 1
#: The longest a training process may take to start a run with every backend (W&B and
#: Trackio import and start slowly on a loaded machine).
START_TIMEOUT = 120.0
#: How long an orphan that exited may stay a zombie before whoever adopted it (init, which is
#: slow to reap in some containers: 1.5 s here) reaps it.
REAP_TIMEOUT = 15.0
#: What a test that failed with its trainer running gives that trainer's delivery processes to
#: close their runs (as they do when their trainer dies) before it kills them.
LEFTOVER_GRACE = 10.0


# ---- processes --------------------------------------------------------------------------------


@contextmanager
def trainer(
    mode: str, output: Path, options: dict[str, Any], env: dict[str, str], logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``delivery_trainer.py MODE OUTPUT OPTIONS`` (its stderr goes to ``logs``); kill it
    when the block ends, whatever happened, and then, after a grace period to close their runs
    as they should, the processes it started that still run."""
    with logs.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(TRAINER), mode, str(output), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        yield process
    finally:
        left = []
        if process.poll() is None:
            left = [(pid, start_time(pid)) for pid in descendants(process.pid)]
            process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()
        for pid, started in left:
            if wait_exited(pid, started, LEFTOVER_GRACE)[1] not in (None, "Z"):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_exited(pid, started, 5.0)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):  # the thread ended meanwhile
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def wait_for(
    process: subprocess.Popen[bytes], word: str, logs: Path, timeout: float = START_TIMEOUT
) -> list[str]:
    """The lines ``process`` prints up to the one starting with ``word`` (fails, with its
    stderr, after ``timeout`` seconds or when it ends first)."""
    return child_lines.wait_for(process, word, timeout, lambda: tail(logs))


def said(lines: list[str], name: str) -> str:
    """The value of the one ``name value`` line."""
    (line,) = [line for line in lines if line.split(" ", 1)[0] == name]
    return line.split(" ", 1)[1] if " " in line else ""


def tail(logs: Path, size: int = 4000) -> str:
    """The end of a training process's stderr, for failure messages."""
    try:
        return "stderr:\n" + logs.read_text(errors="replace")[-size:]
    except OSError:
        return "(no stderr)"


def state_of(pid: int, started: str | None = None) -> str | None:
    """Process ``pid``'s state letter (``Z`` for a zombie), None once it is gone (or its pid
    went to another process than the one that started at ``started``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if started is not None and fields[19] != started:
        return None
    return fields[0]


def start_time(pid: int) -> str | None:
    """Process ``pid``'s start time in clock ticks (tells it from a later one of that pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def wait_until(
    pid: int, started: str | None, done: set[str | None], timeout: float
) -> tuple[float, str | None]:
    """Wait until process ``pid``'s state is one of ``done`` (None: gone); the seconds it
    took and its state at the end."""
    began = time.monotonic()
    deadline = began + timeout
    state = state_of(pid, started)
    while state not in done and time.monotonic() < deadline:
        time.sleep(0.01)
        state = state_of(pid, started)
    return time.monotonic() - began, state


def wait_exited(pid: int, started: str | None, timeout: float) -> tuple[float, str | None]:
    """Wait until process ``pid`` has exited: a zombie (``Z``) or gone."""
    return wait_until(pid, started, {None, "Z"}, timeout)


def wait_reaped(pid: int, started: str | None, timeout: float = REAP_TIMEOUT) -> str | None:
    """Wait until process ``pid`` is gone, reaped by its parent; its state then (None)."""
    return wait_until(pid, started, {None}, timeout)[1]


def result_of(lines: list[str]) -> dict[str, Any]:
    """The ``result`` line a training process printed."""
    result: dict[str, Any] = json.loads(said(lines, "result"))
    return result


# ---- reading the stores back ------------------------------------------------------------------


def journal_records(output: Path, op: str) -> list[dict[str, Any]]:
    """The journal's records of one kind (``log``, ``summary``, ``close``...)."""
    return [record for record in read_journal(output) if record["op"] == op]


def journal_steps(output: Path) -> list[int]:
    """The step of every log record in the journal, in order."""
    return [record["step"] for record in journal_records(output, "log")]


def tensorboard_steps(output: Path, tag: str = "loss") -> list[int]:
    """The steps of every point of ``tag``, as TensorBoard reads the run's event files."""
    events = tensorboard_events(output)
    return [event.step for event in events.Scalars(tag)]


def tensorboard_events(output: Path) -> EventAccumulator:
    events = EventAccumulator(str(output / "tensorboard_logs"), size_guidance={"scalars": 0})
    events.Reload()
    return events


def wandb_files(output: Path) -> list[WandbRunFile]:
    """The ``.wandb`` files of the run (one per delivery process that started it: a replacement
    resumes the run in a directory of its own), oldest first."""
    paths = sorted(
        output.glob("wandb/offline-run-*/run-*.wandb"), key=lambda path: path.stat().st_mtime
    )
    return [WandbRunFile.read(path) for path in paths]


def wandb_steps(files: Iterable[WandbRunFile]) -> list[int]:
    """The step of every W&B history row that holds a logged value, over every file."""
    return [row["global_step"] for file in files for row in file.history() if "loss" in row]


def trackio_logs(run_name: str) -> list[dict[str, Any]]:
    from trackio.sqlite_storage import SQLiteStorage

    from noether_trackers_trackio import use_trackio_dir

    with use_trackio_dir(Path(os.environ["TRACKIO_DIR"])):
        logs: list[dict[str, Any]] = SQLiteStorage.get_logs(PROJECT, run_name)
    return logs


def trackio_summary(run_name: str) -> dict[str, Any]:
    from trackio.sqlite_storage import SQLiteStorage

    from noether_trackers_trackio import use_trackio_dir

    with use_trackio_dir(Path(os.environ["TRACKIO_DIR"])):
        config = SQLiteStorage.get_run_config(PROJECT, run_name)
    assert config is not None, f"Trackio stored no config for run {run_name!r}"
    summary: dict[str, Any] = config["summary"]
    return summary


def trackio_steps(run_name: str) -> list[int]:
    return [row["step"] for row in trackio_logs(run_name) if "loss" in row]


def summary_yaml(output: Path) -> dict[str, Any]:
    summary: dict[str, Any] = yaml.safe_load((output / "summary.yaml").read_text())
    return summary


def spans(steps: Iterable[int]) -> str:
    """``steps`` as ranges: ``0-9, 12``."""
    parts: list[str] = []
    ordered = sorted(set(steps))
    while ordered:
        first = last = ordered.pop(0)
        while ordered and ordered[0] == last + 1:
            last = ordered.pop(0)
        parts.append(str(first) if first == last else f"{first}-{last}")
    return ", ".join(parts)


def not_exactly_once(steps: list[int], expected: int) -> str | None:
    """None when ``steps`` holds each of ``0..expected-1`` exactly once; else what is wrong
    (which steps are duplicated, missing or unexpected)."""
    counts = Counter(steps)
    duplicated = sorted(step for step, count in counts.items() if count > 1)
    missing = sorted(set(range(expected)) - set(counts))
    extra = sorted(set(counts) - set(range(expected)))
    if not (duplicated or missing or extra):
        return None
    times = Counter(counts[step] for step in duplicated)
    return (
        f"{len(steps)} points for {expected} steps; {len(duplicated)} duplicated "
        f"[{spans(duplicated)}] (times: {dict(times)}), {len(missing)} missing "
        f"[{spans(missing)}], {len(extra)} unexpected [{spans(extra)}]"
    )


def wandb_detail(output: Path) -> str:
    """Per ``.wandb`` file: its directory, the steps it holds and its exit code."""
    lines = []
    for path in sorted(output.glob("wandb/offline-run-*/run-*.wandb"), key=os.path.getmtime):
        file = WandbRunFile.read(path)
        held = wandb_steps([file])
        lines.append(f"{path.parent.name}: {len(held)} rows [{spans(held)}], exit {file.exit_code}")
    return "\n".join(lines)


def every_store(output: Path, run_name: str) -> dict[str, list[int]]:
    """The logged steps as each store holds them."""
    return {
        "journal": journal_steps(output),
        "tensorboard": tensorboard_steps(output),
        "wandb": wandb_steps(wandb_files(output)),
        "trackio": trackio_steps(run_name),
    }


# ---- 1. the training process is SIGKILLed -----------------------------------------------------


def test_a_killed_trainers_delivery_process_delivers_everything_and_closes_the_run_failed(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    steps, close_timeout = 200, 20.0
    output, logs = tmp_path / "out", tmp_path / "trainer.log"
    options = {"section": SECTION, "steps": steps, "close_timeout": close_timeout}
    with trainer("handed", output, options, subprocess_env, logs) as process:
        lines = wait_for(process, "handed", logs)
        delivery = int(said(lines, "delivery"))
        started = start_time(delivery)
        below = [
            (p["pid"], start_time(p["pid"]), p["name"]) for p in json.loads(said(lines, "tree"))
        ]
        assert delivery in [pid for pid, _, _ in below]
        time.sleep(0.15)  # the sender hands queued calls over every 5 ms
        assert state_of(delivery, started) not in (None, "Z"), "the delivery process died early"
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
        took, state = wait_exited(delivery, started, close_timeout + 5.0)
    assert state in (None, "Z"), (
        f"the delivery process {delivery} of the killed trainer is still running "
        f"(state {state}) {took:.1f}s after the kill\n{tail(logs)}"
    )
    assert wait_reaped(delivery, started) is None, "the delivery process was left a zombie"
    # nothing of the run is left running: W&B's service processes ended with it
    running = [
        (pid, name, state)
        for pid, start, name in below
        if (state := wait_exited(pid, start, 10.0)[1]) not in (None, "Z")
    ]
    assert running == [], f"processes of the killed trainer's run still running: {running}"

    # everything it was handed, in every store
    wrong = {
        store: problem
        for store, found in every_store(output, "killed-trainer").items()
        if (problem := not_exactly_once(found, steps)) is not None
    }
    assert not wrong, f"steps not exactly once: {wrong}\nW&B files:\n{wandb_detail(output)}"
    # ... and the run closed as failed everywhere
    assert summary_yaml(output)["_status"] == "failed"
    assert [record["status"] for record in journal_records(output, "close")] == ["failed"]
    (run_file,) = wandb_files(output)
    assert run_file.exit_code == WANDB_FAILED
    assert trackio_summary("killed-trainer")["_status"] == "failed"


# ---- 2. the delivery process is SIGKILLed mid-run ---------------------------------------------


@pytest.mark.parametrize("flush", [True, False], ids=["after-flush", "calls-flowing"])
def test_a_killed_delivery_process_is_replaced_and_every_step_arrives_exactly_once(
    tmp_path: Path, subprocess_env: dict[str, str], flush: bool
) -> None:
    # a step every ~0.6 ms: W&B's backend, the slowest, is busy all the time, and wandb-core
    # writes several 32 KiB blocks of its .wandb file before the kill
    steps, kill_at = 1500, 1000
    output, logs = tmp_path / "out", tmp_path / "trainer.log"
    options = {
        "section": SECTION,
        "steps": steps,
        "kill_at": kill_at,
        "pause": 0.0005,
        "flush": flush,
    }
    with trainer("kill-delivery", output, options, subprocess_env, logs) as process:
        result = result_of(wait_for(process, "result", logs))
        assert process.wait(60) == 0, tail(logs)
    # the killed delivery process's wandb-core quits (without writing) once it sees it gone
    for core in result["wandb_core_of_killed"]:
        _, state = wait_exited(core, None, 30.0)
        assert state in (None, "Z"), f"the killed delivery process's wandb-core {core} runs on"

    # training went on: no log() call around the kill waited (starting the replacement takes
    # about 0.4 s; 0.2 s leaves room for a busy machine's scheduling, and no more)
    durations = result["durations"]
    around = range(kill_at - 10, steps)
    slowest = max(around, key=lambda step: durations[step])
    assert durations[slowest] < 0.2, (
        f"log() at step {slowest} took {durations[slowest] * 1000:.1f} ms (kill at {kill_at})"
    )
    if flush:
        assert result["flushed"] is True
    # one warning, a new delivery process, the killed one reaped, none left after close
    deaths = [
        message
        for message in result["warnings"]
        if "the delivery process of run" in message and "died" in message
    ]
    assert len(deaths) == 1, result["warnings"]
    assert result["after"] != result["before"]
    assert result["killed_still_there"] is None
    assert result["children_after_close"] == []
    assert result["complete"], result["report"]

    # every step exactly once, in the journal and in every backend
    wrong = {
        store: problem
        for store, found in every_store(output, "killed-delivery").items()
        if (problem := not_exactly_once(found, steps)) is not None
    }
    assert not wrong, (
        f"steps not exactly once: {wrong}\nW&B files:\n{wandb_detail(output)}\n"
        f"kill at step {kill_at}; progress board then (calls): {result['progress_at_kill']}"
    )
    assert summary_yaml(output)["_status"] == "finished"
    assert [record["status"] for record in journal_records(output, "close")] == ["finished"]
    files = wandb_files(output)
    assert len(files) >= 2, "the replacement did not resume the W&B run in a new directory"
    assert files[-1].exit_code == 0
    assert trackio_summary("killed-delivery")["_status"] == "finished"


# ---- 3. no orphans, no leaks, one delivery process per run ------------------------------------


def test_a_hundred_runs_leave_no_process_thread_or_descriptor_behind(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    runs = 100
    output, logs = tmp_path / "runs", tmp_path / "trainer.log"
    options = {"section": {"kind": "tensorboard"}, "runs": runs}
    with trainer("many-runs", output, options, subprocess_env, logs) as process:
        result = result_of(wait_for(process, "result", logs, timeout=300.0))
        assert process.wait(30) == 0, tail(logs)
    before, after = result["before"], result["after"]
    assert len(set(result["pids"])) == runs  # one delivery process per run
    assert result["left"] == [], f"delivery processes left: {result['left']}"
    assert after["children"] == [] == before["children"], after["children"]
    assert after["threads"] == before["threads"], (before["thread_names"], after["thread_names"])
    assert after["fds"] == before["fds"]
    for number in (0, runs - 1):
        assert journal_steps(output / f"run-{number:03d}") == [0]
        assert summary_yaml(output / f"run-{number:03d}")["_status"] == "finished"


def test_the_delivery_process_never_outlives_a_killed_trainer_by_more_than_the_close_timeout(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # a backend whose close hangs (600 s): only the close timeout ends the delivery process
    steps, close_timeout = 50, 1.5
    output, logs = tmp_path / "out", tmp_path / "trainer.log"
    options = {
        "section": [{"kind": "tensorboard"}, {"kind": "slow-close", "close_seconds": 600}],
        "registry": "faults",
        "steps": steps,
        "close_timeout": close_timeout,
    }
    with trainer("handed", output, options, subprocess_env, logs) as process:
        lines = wait_for(process, "handed", logs)
        delivery = int(said(lines, "delivery"))
        started = start_time(delivery)
        time.sleep(0.15)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        took, state = wait_exited(delivery, started, close_timeout + 10.0)
    # it notices the trainer is gone at once (its socket ends), closes within the close
    # timeout, and exits: 1 s of slack for a loaded machine
    assert state in (None, "Z"), f"the delivery process still runs ({state}) after {took:.1f}s"
    assert took <= close_timeout + 1.0, f"it outlived the trainer by {took:.2f}s"
    assert wait_reaped(delivery, started) is None, "the delivery process was left a zombie"
    assert journal_steps(output) == list(range(steps))
    assert tensorboard_steps(output) == list(range(steps))
    assert summary_yaml(output)["_status"] == "failed"


def test_one_delivery_process_per_run(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    # two runs open at once: W&B's service process belongs to the first one's delivery process
    output, logs = tmp_path / "out", tmp_path / "trainer.log"
    options = {
        "sections": [[{"kind": "tensorboard"}, {"kind": "wandb", "mode": "offline"}], SECTION[0]]
    }
    with trainer("children", output, options, subprocess_env, logs) as process:
        lines = wait_for(process, "after", logs)
        assert process.wait(30) == 0, tail(logs)
    result, after = result_of(lines), json.loads(said(lines, "after"))
    trainer_pid = process.pid
    children = [p for p in result["tree"] if p["ppid"] == trainer_pid]
    grandchildren = [p for p in result["tree"] if p["ppid"] != trainer_pid]
    assert sorted(p["pid"] for p in children) == sorted(result["deliveries"]), children
    assert len(set(result["deliveries"])) == 2
    for child in children:
        assert child["cmdline"][0] == sys.executable
        assert any("delivery_process import main" in part for part in child["cmdline"])
    wandb_delivery = result["deliveries"][0]
    cores = [p for p in grandchildren if p["name"] == "wandb-core"]
    assert [core["ppid"] for core in cores] == [wandb_delivery], result["tree"]
    # nothing else below the trainer but W&B's own processes, all under the W&B run's delivery
    others = [p for p in grandchildren if not p["name"].startswith("wandb-")]
    assert others == [], others
    assert after == [], f"left after close: {after}"


# ---- 4. forked data-loader workers ------------------------------------------------------------


@pytest.mark.parametrize("workers", ["log", "exit"])
def test_forked_data_loader_workers_neither_log_to_nor_close_the_run(
    tmp_path: Path, subprocess_env: dict[str, str], workers: str
) -> None:
    output, logs = tmp_path / "out", tmp_path / "trainer.log"
    exits = tmp_path / "exits"
    options = {"section": {"kind": "tensorboard"}, "workers": workers, "exits": str(exits)}
    with trainer("dataloader", output, options, subprocess_env, logs) as process:
        result = result_of(wait_for(process, "result", logs))
        assert process.wait(60) == 0, tail(logs)
    stderr = logs.read_text(errors="replace")
    steps = result["steps"]
    assert result["complete"] and result["status"] == "finished", stderr
    assert len(result["workers"]) == 4  # two workers per epoch, two epochs

    # only the parent's values, in the journal and in TensorBoard
    assert journal_steps(output) == list(range(steps))
    logged_names = {name for record in journal_records(output, "log") for name in record["values"]}
    assert "from_worker" not in logged_names and "batch_sum" in logged_names
    assert journal_records(output, "summary") == []
    assert tensorboard_steps(output) == list(range(steps))
    assert "from_worker" not in tensorboard_events(output).Tags()["scalars"]
    # closed once, by the parent, as finished
    assert [record["status"] for record in journal_records(output, "close")] == ["finished"]
    summary = summary_yaml(output)
    assert summary["_status"] == "finished" and "worker_summary" not in summary
    assert "ended without closing it" not in stderr and "died" not in stderr, stderr

    ignored = Counter(
        int(match.group(1))
        for match in re.finditer(r"^(\d+) WARNING .*log\(\) in a forked process", stderr, re.M)
    )
    if workers == "log":
        # each worker that logged was told once that its calls are ignored
        assert ignored and set(ignored) <= set(result["workers"]), stderr
        assert set(ignored.values()) == {1}, ignored
    else:
        assert not ignored, stderr
        # the workers did run the exit handlers (the one that closes open runs among them)
        ran = {int(pid) for pid in exits.read_text().split()}
        assert set(result["workers"]) <= ran, (result["workers"], ran)
