"""``_flush``: the rows the Trackio backend took survive a SIGKILL of the process it runs in,
and a replacement process (``RunInfo.resumed``) continues the same Trackio run.

Trackio's ``Run.log`` only queues a row; its writer thread writes the queue every half second
(``BATCH_SEND_INTERVAL``), so a killed process loses what is still queued. Here the interval
is a minute: nothing but ``_flush`` writes the rows before the kill. The backend runs in a real
child process, driven directly as a delivery process drives it; the store is read back with
Trackio's own ``SQLiteStorage``. The plugin's hold on the store (``storage_dir.acquire``) is
state of the killed process: the replacement is not locked out.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from child_lines import end, start_script, wait_for

CHILD = """
import sys, time
from pathlib import Path
import trackio.run
from noether.core.trackers.run_info import RunInfo
from noether_trackers_trackio import TrackioTracker

from noether_trackers_trackio import compat

output, first, count, start, how = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \\
    sys.argv[4], sys.argv[5]
trackio.run.BATCH_SEND_INTERVAL = 60.0  # the writer thread sleeps through the test
backend = TrackioTracker(project="proj", output_path=output)
backend._receive_start(RunInfo("durable", "run-1", None, {"lr": 0.1}, output,
    resumed=start != "new", redelivery=start == "redelivery"))
for step in range(first, first + count):
    backend._receive_log({"loss": float(step), "acc": step / 100}, step)
if how == "writer-wrote":
    # what Trackio's writer thread does every half second, unknown to _flush
    compat.write_queued_rows(backend.trackio_run, 10.0)
    print("flushed", flush=True)
    time.sleep(600)
if how != "no-flush":
    started = time.perf_counter()
    backend._flush()
    print("first", time.perf_counter() - started, flush=True)
    started = time.perf_counter()
    for _ in range(1000):
        backend._flush()  # nothing new: nothing to do
    print("idle", (time.perf_counter() - started) / 1000, flush=True)
if how == "close":
    backend._close("finished")
    print("closed", flush=True)
else:
    print("flushed", flush=True)
    time.sleep(600)
"""


def start_child(
    tmp_path: Path, first: int, count: int, resumed: bool, how: str, redelivery: bool = False
) -> subprocess.Popen[bytes]:
    start = "redelivery" if redelivery else "resumed" if resumed else "new"
    return start_script(
        tmp_path, CHILD, [str(tmp_path / "out"), str(first), str(count), start, how]
    )


def rows(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {"step": step, "loss": float(step), "acc": step / 100}
        for step in range(first, first + count)
    ]


def seconds(lines: list[str], name: str) -> float:
    (line,) = [line for line in lines if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_what_was_flushed_survives_a_sigkill_and_the_resumed_run_continues(
    tmp_path: Path, store: Any
) -> None:
    child = start_child(tmp_path, 0, 40, resumed=False, how="flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        end(child)
    assert store.logs("proj", "durable") == rows(0, 40)
    assert seconds(lines, "idle") < 1e-3  # nothing new: no lock, no write

    child = start_child(tmp_path, 40, 25, resumed=True, how="close")
    try:
        wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    # one Trackio run, continued: every row once
    (run,) = store.runs("proj")
    assert run["name"] == "durable"
    assert store.logs("proj", "durable") == rows(0, 65)
    assert store.config("proj", "durable")["summary"]["_status"] == "finished"


@pytest.mark.parametrize("flush", [False, True], ids=["without-flush", "with-flush"])
def test_without_flush_a_sigkill_loses_the_queued_rows(
    tmp_path: Path, store: Any, flush: bool
) -> None:
    # What _flush is for: rows wait in Trackio's queue for its writer thread.
    child = start_child(tmp_path, 0, 5, resumed=False, how="flush" if flush else "no-flush")
    try:
        wait_for(child, "flushed")
    finally:
        end(child)
    logged = store.logs("proj", "durable") if store.projects() else []
    assert logged == (rows(0, 5) if flush else [])


def test_a_replacement_delivery_process_does_not_write_again_what_the_writer_thread_wrote(
    tmp_path: Path, store: Any
) -> None:
    # Trackio's writer thread wrote steps 0-59 after the last _flush (at step 20), then the
    # process was killed: the replacement is sent every call from step 20 again.
    child = start_child(tmp_path, 0, 60, resumed=False, how="writer-wrote")
    try:
        wait_for(child, "flushed")
    finally:
        end(child)
    assert store.logs("proj", "durable") == rows(0, 60)

    child = start_child(tmp_path, 20, 45, resumed=True, how="close", redelivery=True)
    try:
        wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    assert store.logs("proj", "durable") == rows(0, 65)
    assert store.config("proj", "durable")["summary"]["_status"] == "finished"


def test_a_replacement_delivery_process_writes_what_the_store_does_not_hold(
    tmp_path: Path, store: Any
) -> None:
    # Nothing was written before the kill: every call sent again is written, once.
    child = start_child(tmp_path, 0, 10, resumed=False, how="flush")
    try:
        wait_for(child, "flushed")
    finally:
        end(child)
    child = start_child(tmp_path, 10, 15, resumed=True, how="close", redelivery=True)
    try:
        wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    assert store.logs("proj", "durable") == rows(0, 25)
