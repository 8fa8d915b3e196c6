"""``_flush``: what the TensorBoard backend took survives a SIGKILL of the process it runs in,
and a replacement process (``RunInfo.resumed``) continues the run in a new event file.

The backend runs in a real child process, driven directly (``_receive_start``,
``_receive_log``, ``_flush``) as a delivery process drives it; the test kills it and reads the
event files back with TensorBoard's own reader. ``flush_secs`` is long: nothing but ``_flush``
hands the events to the OS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from child_lines import end, start_script, wait_for
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

CHILD = """
import sys, time
from pathlib import Path
from noether.core.trackers.run_info import RunInfo
from noether_trackers_tensorboard import TensorboardTracker

output, first, count, resumed, how = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \\
    sys.argv[4] == "resumed", sys.argv[5]
backend = TensorboardTracker(flush_secs=600, output_path=output)
backend._receive_start(RunInfo("tb", "run-1", None, {"lr": 0.1}, output, resumed=resumed))
for step in range(first, first + count):
    backend._receive_log({"loss": float(step), "acc": step / 100}, step)
if how != "no-flush":
    backend._flush()
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

TAGS = ("loss", "acc")


def start_child(
    tmp_path: Path, first: int, count: int, resumed: bool, how: str
) -> subprocess.Popen[bytes]:
    start = "resumed" if resumed else "new"
    return start_script(
        tmp_path, CHILD, [str(tmp_path / "out"), str(first), str(count), start, how]
    )


def steps(log_dir: Path) -> dict[str, list[int]]:
    """Every tag's steps, as TensorBoard's reader finds them in ``log_dir`` now."""
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    found = accumulator.Tags()["scalars"]
    return {tag: [event.step for event in accumulator.Scalars(tag)] for tag in TAGS if tag in found}


def idle_seconds(lines: list[str]) -> float:
    (line,) = [line for line in lines if line.startswith("idle ")]
    return float(line.split()[1])


def test_what_was_flushed_survives_a_sigkill_and_the_resumed_run_continues(
    tmp_path: Path,
) -> None:
    log_dir = tmp_path / "out" / "tensorboard_logs"
    child = start_child(tmp_path, 0, 50, resumed=False, how="flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        end(child)
    assert steps(log_dir) == {tag: list(range(50)) for tag in TAGS}
    assert idle_seconds(lines) < 1e-3  # no system call when nothing is new

    # the replacement: a new event file in the same directory, nothing purged
    child = start_child(tmp_path, 50, 30, resumed=True, how="close")
    try:
        wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 2
    assert steps(log_dir) == {tag: list(range(80)) for tag in TAGS}


@pytest.mark.parametrize("flush", [False, True], ids=["without-flush", "with-flush"])
def test_without_flush_a_sigkill_loses_the_buffered_events(tmp_path: Path, flush: bool) -> None:
    # What _flush is for: the event file's buffer is handed to the OS only every flush_secs
    # (or when 8 KiB are buffered); a killed process takes the rest with it.
    child = start_child(tmp_path, 0, 5, resumed=False, how="flush" if flush else "no-flush")
    try:
        wait_for(child, "flushed")
    finally:
        end(child)
    expected = {tag: list(range(5)) for tag in TAGS} if flush else {}
    assert steps(tmp_path / "out" / "tensorboard_logs") == expected
