"""``_flush``: the rows an offline W&B backend took survive a SIGKILL of the process it runs in,
and a replacement process (``RunInfo.resumed``) logs the lost ones again, each once.

``wandb-core`` writes the ``.wandb`` file in whole 32 KiB blocks and, when the process that
started it dies, quits without writing the last, partly filled one: without ``_flush`` a
SIGKILL loses every row of that block (in a short run, all of them). ``_flush`` keeps the rows
the file may lack in the plugin's file of unsaved rows; the resumed run logs them again. The
backend runs in real child processes, driven directly as a delivery process drives it; the
``.wandb`` files are read back as ``wandb sync`` would upload them.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from child_lines import end, start_script, wait_for
from wandb_file import WandbRunFile

from noether_trackers_wandb.unsaved import _frames, file_name, lost_rows

CHILD = """
import dataclasses, os, sys, time
from pathlib import Path
import numpy as np
from noether.core.trackers import Image
from noether.core.trackers.run_info import RunInfo
from noether_trackers_wandb import WandBTracker, unsaved

if "COMPACT_AFTER_BYTES" in os.environ:
    unsaved.COMPACT_AFTER_BYTES = int(os.environ["COMPACT_AFTER_BYTES"])
output, first, count, start, how = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \\
    sys.argv[4], sys.argv[5]
backend = WandBTracker(project="durable", mode="offline", output_path=output)
run = RunInfo("wb", "run-1", None, {"lr": 0.1}, output, resumed=start != "new")
if start == "redelivery":  # a delivery process taking over from a killed one
    run = dataclasses.replace(run, redelivery=True)
backend._receive_start(run)
print("dir", backend.run_dir, flush=True)
for entry in Path("/proc").iterdir():
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        continue
    name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
    if name == "wandb-core" and int(rest.split()[1]) == os.getpid():
        print("core", entry.name, flush=True)
for step in range(first, first + count):
    values = {"loss": float(step)}
    if step == 2:
        values["picture"] = Image(np.full((4, 6, 3), 200, dtype=np.uint8))
    backend._receive_log(values, step)
    if how == "flush-each" or how == f"flush-at:{step - first + 1}":
        backend._flush()
if how == "no-flush" or how.startswith("flush-at:"):
    pass
else:
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
    tmp_path: Path, first: int, count: int, resumed: bool | str, how: str, **env: str
) -> subprocess.Popen[bytes]:
    """A process that starts the backend (``resumed``: True, False or "redelivery"), gives it
    ``count`` rows from step ``first`` and flushes (``how``: "flush", "flush-each" row,
    "flush-at:N" after the N-th row only, "no-flush"), then says "flushed" and waits to be
    killed; or ("close") flushes and closes the run."""
    start = resumed if isinstance(resumed, str) else "resumed" if resumed else "new"
    arguments = [str(tmp_path / "out"), str(first), str(count), start, how]
    return start_script(tmp_path, CHILD, arguments, env)


def said(lines: list[str], name: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"{name} ")]
    return line.split(" ", 1)[1]


def kill_and_wait_for_its_core(child: subprocess.Popen[bytes], lines: list[str]) -> None:
    """SIGKILL ``child``; its wandb-core (now an orphan) sees its parent gone and quits without
    writing: wait for that, so that its .wandb file is final."""
    core = int(said(lines, "core"))
    end(child)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{core}").exists() and "(wandb-core) Z" not in _stat(core):
        assert time.monotonic() < deadline, "the killed process's wandb-core did not quit"
        time.sleep(0.05)


def _stat(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "(wandb-core) Z"


def history(run_file: Path) -> list[dict[str, Any]]:
    return WandbRunFile.read(run_file).history()


def steps_in(run_dir: Path) -> list[int]:
    return [row["global_step"] for row in history(run_dir / "run-run-1.wandb")]


def test_rows_of_a_run_killed_before_its_first_block_are_all_kept_for_the_resumed_run(
    sandbox: Any, tmp_path: Path
) -> None:
    child = start_child(tmp_path, 0, 5, resumed=False, how="flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        kill_and_wait_for_its_core(child, lines)
    killed = Path(said(lines, "dir"))
    # wandb-core wrote no record at all: the five rows are in the file of unsaved rows only
    assert WandbRunFile.read(killed / "run-run-1.wandb").records == []
    unsaved = killed.parent / file_name("run-1")
    assert [step for _, step in lost_rows(unsaved)[0]] == [0, 1, 2, 3, 4]
    assert float(said(lines, "idle")) < 1e-3  # nothing new: nothing to do

    resumed = resume(tmp_path, 5, 3)
    assert resumed != killed
    rows = history(resumed / "run-run-1.wandb")
    assert [row["global_step"] for row in rows] == list(range(8))
    assert [row["loss"] for row in rows] == [float(step) for step in range(8)]
    assert rows[2]["picture"]["_type"] == "image-file"  # the image, logged again
    (picture,) = resumed.glob("files/media/images/picture_*.png")
    assert picture.stat().st_size > 0
    assert not unsaved.exists()  # the resumed run finished: every row is in its file


def test_only_the_rows_missing_from_the_killed_runs_file_are_logged_again(
    sandbox: Any, tmp_path: Path
) -> None:
    # 400 rows fill several blocks: wandb-core wrote most of them, not those of the last block
    # (unless other records, such as system metrics, happened to fill it: none then)
    child = start_child(tmp_path, 0, 400, resumed=False, how="flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        kill_and_wait_for_its_core(child, lines)
    killed = Path(said(lines, "dir"))
    written = steps_in(killed)
    assert 0 < len(written) <= 400 and written == list(range(len(written)))

    resumed = resume(tmp_path, 400, 10)
    again = steps_in(resumed)
    assert again == list(range(len(written), 410))  # each row once, across both files


def test_a_resumed_run_whose_directory_name_is_taken_gets_its_own(
    sandbox: Any, tmp_path: Path
) -> None:
    # W&B names an offline run's directory after the second it starts in; a replacement that
    # starts within the same second as the run it resumes (or any other of that id) finds the
    # name taken, and wandb gives it a "-1" suffix. Taking the names of the coming seconds
    # makes that happen here for sure.
    child = start_child(tmp_path, 0, 5, resumed=False, how="flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        kill_and_wait_for_its_core(child, lines)
    killed = Path(said(lines, "dir"))
    now = time.time()
    taken = set()
    for second in range(-1, 30):
        moment = time.strftime("%Y%m%d_%H%M%S", time.gmtime(now + second))
        name = killed.parent / f"offline-run-{moment}-run-1"
        if not name.exists():
            name.mkdir()
            taken.add(name)

    resumed = resume(tmp_path, 5, 3)
    assert resumed.name.endswith("-run-1-1") and resumed.with_name(resumed.name[:-2]) in taken
    assert steps_in(resumed) == list(range(8))


def test_two_kills_in_a_row_with_a_flush_after_every_row_keep_every_row_once(
    sandbox: Any, tmp_path: Path
) -> None:
    # A flush per row (the backend's calls run dry after each), the file of unsaved rows
    # written anew whenever 2 KiB of it are rows the .wandb file has; the first replacement
    # is killed too, after logging the rows it took over and more.
    small = {"COMPACT_AFTER_BYTES": "2048"}
    killed = []
    for first, count, resumed in ((0, 600, False), (600, 150, True)):
        child = start_child(tmp_path, first, count, resumed, "flush-each", **small)
        try:
            lines = wait_for(child, "flushed")
        finally:
            kill_and_wait_for_its_core(child, lines)
        killed.append(Path(said(lines, "dir")))
        if not resumed:
            # The file was written anew without the rows the .wandb file had then: its header
            # says how many that was, and it holds fewer rows than were logged. (How many it
            # still holds depends on how far wandb-core got before the last flush: on a busy
            # machine, hardly any farther than the last rewrite.)
            unsaved = killed[-1].parent / file_name("run-1")
            header, *frames = _frames(unsaved.read_bytes())
            rows_saved_at_rewrite = header[4]
            assert rows_saved_at_rewrite > 0, header
            assert sum(len(frame[2]) for frame in frames) <= 600 - rows_saved_at_rewrite
    last = resume(tmp_path, 750, 10)
    everything = [step for run_dir in (*killed, last) for step in steps_in(run_dir)]
    assert sorted(everything) == list(range(760))  # each row once
    assert all(steps_in(run_dir) for run_dir in killed)


def all_steps(*run_dirs: Path) -> list[int]:
    return sorted(step for run_dir in run_dirs for step in steps_in(run_dir))


def killed_after(tmp_path: Path, first: int, count: int, start: bool | str, how: str) -> Path:
    child = start_child(tmp_path, first, count, start, how)
    try:
        lines = wait_for(child, "flushed")
    finally:
        kill_and_wait_for_its_core(child, lines)
    return Path(said(lines, "dir"))


def test_a_replacement_skips_the_calls_given_again_that_the_killed_file_holds(
    sandbox: Any, tmp_path: Path
) -> None:
    # flushed after 200 rows, killed after 400: wandb-core wrote most of the 200 after the
    # flush, which a replacement delivery process is given again
    killed = killed_after(tmp_path, 0, 400, False, "flush-at:200")
    assert len(steps_in(killed)) > 200
    child = start_child(tmp_path, 200, 210, "redelivery", "close")
    try:
        lines = wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    assert all_steps(killed, Path(said(lines, "dir"))) == list(range(410))


def test_a_replacement_killed_in_turn_passes_on_what_to_skip(sandbox: Any, tmp_path: Path) -> None:
    first = killed_after(tmp_path, 0, 400, False, "flush-at:200")
    # the replacement is given steps 200-399 again, flushes after step 299 (while it still
    # skips what the first file holds) and is killed after step 449
    second = killed_after(tmp_path, 200, 250, "redelivery", "flush-at:100")
    # the next one is given again what came after that flush: steps 300-449
    child = start_child(tmp_path, 300, 160, "redelivery", "close")
    try:
        lines = wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    assert all_steps(first, second, Path(said(lines, "dir"))) == list(range(460))


@pytest.mark.parametrize("flush", [False, True], ids=["without-flush", "with-flush"])
def test_without_flush_a_sigkill_loses_every_row_of_the_last_block(
    sandbox: Any, tmp_path: Path, flush: bool
) -> None:
    child = start_child(tmp_path, 0, 5, resumed=False, how="flush" if flush else "no-flush")
    try:
        lines = wait_for(child, "flushed")
    finally:
        kill_and_wait_for_its_core(child, lines)
    killed = Path(said(lines, "dir"))
    assert steps_in(killed) == []
    kept = [step for _, step in lost_rows(killed.parent / file_name("run-1"))[0]]
    assert kept == ([0, 1, 2, 3, 4] if flush else [])


def resume(tmp_path: Path, first: int, count: int) -> Path:
    """Run a resumed process that logs ``count`` rows from step ``first`` and finishes;
    return its W&B run directory."""
    child = start_child(tmp_path, first, count, resumed=True, how="close")
    try:
        lines = wait_for(child, "closed")
        assert child.wait(60) == 0
    finally:
        end(child)
    return Path(said(lines, "dir"))


def test_the_file_of_unsaved_rows_holds_every_kind_of_value(tmp_path: Path) -> None:
    from noether.core.trackers import Histogram, Image, Table
    from noether.core.trackers.plugin import Value
    from noether_trackers_wandb.unsaved import UnsavedRows

    path = tmp_path / file_name("x")
    rows = UnsavedRows(path, tmp_path / "missing.wandb", [])
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    values: dict[str, Value] = {
        "loss": 1.5,
        "nan": float("nan"),
        "count": 3,
        "text": "hello",
        "picture": Image(pixels, caption="c"),
        "histogram": Histogram(np.linspace(0.0, 1.0, 50), bins=5),
        "table": Table(["a", "b"], [[1, None], [2.5, "x"]]),
    }
    rows.add(values, 7)
    rows.flush()
    rows.close(finished=False)
    ((back, step),), skip = lost_rows(path)
    assert skip == 0
    assert step == 7 and set(back) == set(values)
    assert back["loss"] == 1.5 and back["count"] == 3 and back["text"] == "hello"
    assert isinstance(back["nan"], float) and np.isnan(back["nan"])
    picture, histogram, table = back["picture"], back["histogram"], back["table"]
    assert isinstance(picture, Image) and picture.caption == "c"
    assert (picture.pixels == pixels).all()
    assert isinstance(histogram, Histogram) and isinstance(values["histogram"], Histogram)
    assert list(histogram.counts) == list(values["histogram"].counts)
    assert isinstance(table, Table) and list(table.rows) == [[1, None], [2.5, "x"]]


def test_a_planted_file_of_unsaved_rows_runs_no_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the file lies in the run's directory: whoever can write there must not get to run code
    # in the process that resumes the run
    import pickle
    import struct
    import zlib

    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / file_name("x")
    frames = b""
    for content in (("header", 1, str(tmp_path / "x.wandb"), 7, 0, 0, 0), ("rows", 1, [Exploit()])):
        payload = pickle.dumps(content)
        frames += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    path.write_bytes(frames)
    assert lost_rows(path) == ([], 0)
    assert not marker.exists()
    assert "cannot read" in caplog.text
