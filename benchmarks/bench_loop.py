"""What tracking costs the training loop: the loop's own time with and without tracking.

    .venv/bin/python benchmarks/bench_loop.py              # every loop, median of 3 (minutes)
    .venv/bin/python benchmarks/bench_loop.py --repeats 5  # median of 5
    .venv/bin/python benchmarks/bench_loop.py --quick      # fewer steps, one repeat
    .venv/bin/python benchmarks/bench_loop.py --baseline ../other/noether-trackers-core/src

Each loop logs 10 scalars every step, with every installed local backend configured together
(TensorBoard, W&B offline, Trackio, as ``bench_logging.py`` configures them), in these modes:

- no tracking (``log`` does nothing);
- process: noether-trackers with ``DeliverySettings(mode="process")``, a delivery process
  running every backend and the journal;
- thread: noether-trackers with ``DeliverySettings(mode="thread")``, delivery threads in the
  training process;
- direct: the three libraries called directly on the training thread;
- baseline (with ``--baseline PYTHONPATH``): noether-trackers from another build, its source
  directories first on ``PYTHONPATH``, with its default delivery, for a paired comparison of
  two builds in one run.

Every measurement runs in a fresh process, the modes alternating (their order rotating from
one repeat to the next), and each figure is the median of ``--repeats`` processes (default 3).
The loop time runs from the loop's first step to its last ``log()`` (start-up and ``close()``
excluded). Steps are pure-Python work of 2 ms and 20 ms (calibrated once, the same work in
every process) and, when torch is installed, a CPU MLP (4 x Linear(256) or Linear(512),
batch 64, one thread). Printed per loop: the no-tracking loop time (and per step: the
calibration is only as good as this machine is quiet), each mode's slowdown against it, the
loop-time ratios process / direct and process / thread, and, for each mode that tracks (direct
too, for reference):

- close(): from the last ``log()`` returning until ``close()`` returns (every call delivered),
  and in parentheses the run end to end, from calling ``create_tracker`` until then;
- start-up: what the user waits for before training, from calling ``create_tracker`` (the
  library already imported; direct: the first library's ``init``) until the first ``log()``
  returns, ``init`` included;
- log(): what ``log()`` costs the training thread, the median over the loop's calls of each
  call's own wall time (``perf_counter_ns`` around the call, in every mode alike), in us.

A warning follows when a run's ``close()`` report says calls did not reach a backend (its
close time then means little). Then one line per loop says whether process delivery met its
target, a loop slowdown of at most 3 % for the 2 ms steps (pure Python, Linear(256)) and at
most 1 % for the 20 ms and Linear(512) steps, and by how much it missed. A table of close(),
start-up and log() for thread against process delivery follows. Ratios are against modes of
the same run: this machine is noisy.

Every benchmark process gets a temporary directory of its own (its ``HOME``, ``TMPDIR`` and the
backends' directories), removed once it has ended. This process adopts the processes a
benchmark process leaves behind (Linux ``PR_SET_CHILD_SUBREAPER``): those still running 5 s
after it ended are killed, and the run ends with a line saying what outlived its process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_logging import direct_tensorboard, installed, isolate, tracker_config, values
from fresh_processes import Cleanup, run_fresh

Log = Callable[[int, dict[str, float]], None]
#: Close the logging of one mode; what did not reach a backend ("" when all did, as far as it
#: can tell: only noether-trackers says).
Close = Callable[[], str]


# ---- the child process: one loop in one mode --------------------------------------------------


def python_step(iterations: int) -> Callable[[], None]:
    """Pure-Python work that holds the interpreter lock, like the Python side of a GPU loop."""

    def step() -> None:
        total = 0
        for index in range(iterations):
            total += index * index

    return step


def torch_step(width: int) -> Callable[[], None]:
    """One SGD step of a 4-layer MLP on the CPU, one thread."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(4):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs = torch.randn(64, width)

    def step() -> None:
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()

    return step


def import_libraries(mode: str) -> None:
    """Import what ``mode`` uses, so that start-up does not time the imports."""
    if mode == "noether":
        importlib.import_module("noether.core.trackers")
        importlib.import_module("noether.core.trackers.delivery")
    elif mode == "direct":
        importlib.import_module("tensorboard.summary.writer.event_file_writer")
        for library in ("wandb", "trackio"):
            if installed(library):
                importlib.import_module(library)


def start_logging(spec: dict[str, Any], root: Path) -> tuple[Log, Close, str | None]:
    """The ``log(step, data)`` and ``close()`` of ``spec["mode"]``, and the delivery that
    noether-trackers chose (None when not noether-trackers or the build does not say)."""
    if spec["mode"] == "none":
        return (lambda step, data: None), (lambda: ""), None
    if spec["mode"] == "noether":
        from noether.core.trackers import create_tracker

        if spec["delivery"] is None:  # the build's default (a baseline build may predate modes)
            tracker = create_tracker(tracker_config(), root / "noether")
        else:
            from noether.core.trackers.delivery import DeliverySettings

            tracker = create_tracker(
                tracker_config(), root / "noether", delivery=DeliverySettings(mode=spec["delivery"])
            )
        tracker.init(run_name="bench-loop")

        def close() -> str:
            report = tracker.close(timeout=600)
            if report is None or getattr(report, "complete", True):
                return ""
            return str(report.describe()) or "incomplete"

        def log(step: int, data: dict[str, float]) -> None:
            tracker.log(data, step=step)

        return log, close, getattr(tracker, "delivery_mode", None)
    return (*start_direct(root), None)


def start_direct(root: Path) -> tuple[Log, Close]:
    """The same backends, each library called directly on the training thread."""
    log_tensorboard, close_tensorboard = direct_tensorboard(root / "direct-tb")
    logs, closes = [log_tensorboard], [close_tensorboard]
    if installed("wandb"):
        import wandb

        run = wandb.init(project="bench", mode="offline", dir=str(root / "direct-wandb"))
        logs.append(lambda step, data: run.log(data, step=step))
        closes += [run.finish, wandb.teardown]  # teardown: the wandb-core service ends too
    if installed("trackio"):
        import trackio

        trackio.init(project="bench-direct", name="direct")
        logs.append(lambda step, data: trackio.log(data, step=step))
        closes.append(trackio.finish)

    def log(step: int, data: dict[str, float]) -> None:
        for one in logs:
            one(step, data)

    def close() -> str:
        for one in closes:
            one()
        return ""

    return log, close


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one loop in one mode, in ``spec["root"]``; its times in seconds (log() in us)."""
    root = Path(spec["root"])
    isolate(root)
    kind, size = spec["loop"]
    step = python_step(size) if kind == "python" else torch_step(size)
    step()  # warm up outside the timed loop
    import_libraries(spec["mode"])
    started = time.perf_counter()
    log, close, delivered_by = start_logging(spec, root)
    log(0, values(0))
    startup = time.perf_counter() - started
    calls: list[int] = []
    loop_started = time.perf_counter()
    for index in range(1, spec["steps"] + 1):
        step()
        data = values(index)
        before = time.perf_counter_ns()
        log(index, data)
        calls.append(time.perf_counter_ns() - before)
    loop_ended = time.perf_counter()
    undelivered = close()
    ended = time.perf_counter()
    return {
        "loop": loop_ended - loop_started,
        "close": ended - loop_ended,
        "end_to_end": ended - started,
        "startup": startup,
        "log_us": statistics.median(calls) / 1000,
        "delivered_by": delivered_by,
        "undelivered": undelivered,
    }


# ---- the parent: fresh processes that leave nothing behind ------------------------------------


def measure(spec: dict[str, Any], mode: Mode, cleanup: Cleanup) -> dict[str, Any]:
    """Run :func:`run_child` in a fresh process (with the build of ``mode`` first on its path)
    in a temporary directory of its own; remove the directory and what the process left
    running."""
    return run_fresh(__file__, spec, cleanup, mode.name, mode.pythonpath)


# ---- the parent: calibrate, alternate, print --------------------------------------------------


@dataclass(frozen=True)
class Mode:
    name: str  # the column
    mode: str  # the child's mode: none, noether or direct
    delivery: str | None = None  # noether-trackers' DeliverySettings.mode; None: its default
    pythonpath: str | None = None  # of the build, first on the child's PYTHONPATH

    @property
    def tracks(self) -> bool:
        return self.mode != "none"


@dataclass(frozen=True)
class Loop:
    label: str
    spec: list[Any]  # ["python", iterations] or ["torch", width]
    steps: int
    target: float  # the most slowdown, in %, process delivery may cost this loop


def calibrate(milliseconds: float) -> int:
    """Iterations of :func:`python_step` that take about ``milliseconds`` here (the fastest
    of 10 steps: what other processes take from this one does not count)."""
    iterations = 10_000
    while True:
        step = python_step(iterations)
        took = []
        for _ in range(10):
            started = time.perf_counter()
            step()
            took.append(time.perf_counter() - started)
        if min(took) > 0.002:
            return max(1, int(iterations * milliseconds / 1000 / min(took)))
        iterations *= 4


def loops(quick: bool) -> list[Loop]:
    """Every loop to measure."""
    scale = 4 if quick else 1
    chosen = [
        Loop("2 ms of pure-Python work", ["python", calibrate(2.0)], 2000 // scale, 3.0),
        Loop("20 ms of pure-Python work", ["python", calibrate(20.0)], 500 // scale, 1.0),
    ]
    if installed("torch"):
        chosen += [
            Loop("torch CPU MLP, 4 x Linear(256), batch 64", ["torch", 256], 2000 // scale, 3.0),
            Loop("torch CPU MLP, 4 x Linear(512), batch 64", ["torch", 512], 500 // scale, 1.0),
        ]
    return chosen


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(result[key]) for result in results)


def slowdown(seconds: float, base: float) -> float:
    return 100 * (seconds / base - 1)


def verdict(loop: Loop, process: float, base: float) -> str:
    """Whether process delivery's loop time ``process`` met the loop's target."""
    percent = slowdown(process, base)
    head = f"    process delivery, target slowdown <= {loop.target:.0f} %: {percent:+.1f} %"
    margin = percent - loop.target
    per_step = (process - base * (1 + loop.target / 100)) / loop.steps * 1000
    if margin <= 0:
        return f"{head}, MET ({-margin:.1f} points to spare)"
    return f"{head}, MISSED by {margin:.1f} points ({per_step:.3f} ms per step too many)"


def costs(results: list[dict[str, Any]]) -> str:
    return (
        f"close() {median_of(results, 'close'):6.2f} s "
        f"(run end to end {median_of(results, 'end_to_end'):6.2f} s), "
        f"start-up {median_of(results, 'startup'):5.2f} s, "
        f"log() {median_of(results, 'log_us'):7.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer steps, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per mode")
    parser.add_argument(
        "--baseline", metavar="PYTHONPATH", help="also measure the build on this PYTHONPATH"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return
    cleanup = Cleanup()
    cleanup.adopt_orphans()
    repeats = 1 if args.quick else args.repeats
    modes = [
        Mode("no tracking", "none"),
        Mode("process", "noether", "process"),
        Mode("thread", "noether", "thread"),
        Mode("direct", "direct"),
    ]
    if args.baseline:
        modes.append(Mode("baseline", "noether", pythonpath=args.baseline))
    kinds = " + ".join(entry["kind"] for entry in tracker_config())
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores; backends: {kinds}; "
        f"10 scalars logged every step; median of {repeats} fresh process(es) per mode"
    )
    if args.baseline:
        print(f"baseline: noether-trackers from PYTHONPATH={args.baseline}, default delivery")
    print("slowdown: loop time against no tracking; ratios: of loop times\n")
    header = "".join(f" {mode.name:>9s}" for mode in modes[1:])
    head = f"{'loop':42s} {'steps':>5s} {'no tracking':>11s} {'ms/step':>7s}"
    print(f"{head}{header} {'proc/dir':>9s} {'proc/thr':>9s}")
    table: list[tuple[Loop, dict[str, list[dict[str, Any]]]]] = []
    chosen: dict[str, Counter[str | None]] = {mode.name: Counter() for mode in modes}
    for loop in loops(args.quick):
        runs: dict[str, list[dict[str, Any]]] = {mode.name: [] for mode in modes}
        for repeat in range(repeats):
            shift = repeat % len(modes)  # alternating, each mode first in turn
            for mode in modes[shift:] + modes[:shift]:
                spec = {
                    "mode": mode.mode,
                    "delivery": mode.delivery,
                    "loop": loop.spec,
                    "steps": loop.steps,
                }
                result = measure(spec, mode, cleanup)
                runs[mode.name].append(result)
                chosen[mode.name][result["delivered_by"]] += 1
        table.append((loop, runs))
        loop_time = {name: median_of(results, "loop") for name, results in runs.items()}
        base = loop_time["no tracking"]
        cells = "".join(f" {slowdown(loop_time[mode.name], base):+8.1f}%" for mode in modes[1:])
        ratios = (
            f" {loop_time['process'] / loop_time['direct']:8.2f}x"
            f" {loop_time['process'] / loop_time['thread']:8.2f}x"
        )
        per_step = 1000 * base / loop.steps
        print(f"{loop.label:42s} {loop.steps:5d} {base:10.2f}s {per_step:7.2f}{cells}{ratios}")
        for mode in modes:
            if mode.tracks:
                print(f"    {mode.name + ':':9s} {costs(runs[mode.name])}")
        for mode in modes:
            missing = [result["undelivered"] for result in runs[mode.name] if result["undelivered"]]
            if missing:
                print(
                    f"    warning, {mode.name}: not every call delivered at close() in "
                    f"{len(missing)} of {repeats} runs; the first: {missing[0].splitlines()[0]}"
                )
        print(verdict(loop, loop_time["process"], base))

    for mode in modes:
        if mode.delivery and set(chosen[mode.name]) != {mode.delivery}:
            ran = ", ".join(f"{got} x{count}" for got, count in chosen[mode.name].items())
            print(f"note: {mode.name} delivery was asked for, the runs used: {ran}")

    print("\nnoether-trackers, thread against process delivery (medians; ratio: process / thread)")
    groups = [
        ("close() (s)", "close", 2),
        ("start-up (s)", "startup", 2),
        ("log() (us)", "log_us", 1),
    ]
    print(f"{'':42s}" + "".join(f" {title:>23s}" for title, _, _ in groups))
    trio = f" {'thread':>7s} {'process':>7s} {'ratio':>7s}"
    print(f"{'loop':42s}{trio * len(groups)}")
    for loop, runs in table:
        cells = ""
        for _, key, digits in groups:
            thread, process = median_of(runs["thread"], key), median_of(runs["process"], key)
            ratio = f"{process / thread:6.2f}x" if thread > 0 else f"{'-':>7s}"
            cells += f" {thread:7.{digits}f} {process:7.{digits}f} {ratio}"
        print(f"{loop.label:42s}{cells}")
    print("\n" + cleanup.describe())


if __name__ == "__main__":
    main()
