"""What tracking costs the training loop: the loop's own time with and without tracking.

    .venv/bin/python benchmarks/bench_loop.py            # every loop, median of 3 (minutes)
    .venv/bin/python benchmarks/bench_loop.py --quick    # fewer steps, one repeat

Each loop logs 10 scalars every step, with every installed local backend configured together
(TensorBoard, W&B offline, Trackio, as ``bench_logging.py`` configures them), in three modes:
no tracking, noether-trackers (plus its journal), and the three libraries called directly.
``--baseline PYTHONPATH`` adds a fourth mode, noether-trackers from another build (its source
directories first on ``PYTHONPATH``), for a paired comparison of two builds in one run.
Every measurement runs in a fresh process, the modes alternating, and the figure is the loop's
wall time from its first step to its last ``log()`` (start-up and ``close()`` excluded; close
is printed apart). Steps are pure-Python work of 2 ms and 20 ms (calibrated once, the same
work in every process) and, when torch is installed, a CPU MLP (4 x Linear, batch 64, one
thread). Ratios are against "no tracking" of the same run: this machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_logging import direct_tensorboard, installed, isolate, tracker_config, values

Log = Callable[[int, dict[str, float]], None]


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


def start_logging(mode: str, root: Path) -> tuple[Log, Callable[[], None]]:
    """The ``log(step, data)`` and ``close()`` of ``mode``."""
    if mode == "none":
        return (lambda step, data: None), (lambda: None)
    if mode == "noether":
        from noether.core.trackers import create_tracker

        tracker = create_tracker(tracker_config(), root / "noether")
        tracker.init(run_name="bench-loop")

        def close() -> None:
            tracker.close(timeout=600)

        return (lambda step, data: tracker.log(data, step=step)), close
    return start_direct(root)


def start_direct(root: Path) -> tuple[Log, Callable[[], None]]:
    """The same backends, each library called directly on the training thread."""
    log_tensorboard, close_tensorboard = direct_tensorboard(root / "direct-tb")
    logs, closes = [log_tensorboard], [close_tensorboard]
    if installed("wandb"):
        import wandb

        run = wandb.init(project="bench", mode="offline", dir=str(root / "direct-wandb"))
        logs.append(lambda step, data: run.log(data, step=step))
        closes.append(run.finish)
    if installed("trackio"):
        import trackio

        trackio.init(project="bench-direct", name="direct")
        logs.append(lambda step, data: trackio.log(data, step=step))
        closes.append(trackio.finish)

    def log(step: int, data: dict[str, float]) -> None:
        for one in logs:
            one(step, data)

    def close() -> None:
        for one in closes:
            one()

    return log, close


def run_child(spec: dict[str, Any]) -> dict[str, float]:
    """Run one loop in one mode; the loop's time and the close's time in seconds."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        isolate(root)
        kind, size = spec["loop"]
        step = python_step(size) if kind == "python" else torch_step(size)
        log, close = start_logging(spec["mode"], root)
        step()  # warm up outside the timed loop
        started = time.perf_counter()
        for index in range(spec["steps"]):
            step()
            log(index, values(index))
        loop = time.perf_counter() - started
        started = time.perf_counter()
        close()
        return {"loop": loop, "close": time.perf_counter() - started}


# ---- the parent: calibrate, alternate fresh processes, print ---------------------------------


def calibrate(milliseconds: float) -> int:
    """Iterations of :func:`python_step` that take about ``milliseconds`` here."""
    iterations = 10_000
    while True:
        step = python_step(iterations)
        started = time.perf_counter()
        for _ in range(5):
            step()
        took = (time.perf_counter() - started) / 5
        if took > 0.002:
            return max(1, int(iterations * milliseconds / 1000 / took))
        iterations *= 4


def measure(spec: dict[str, Any], pythonpath: str | None = None) -> dict[str, float]:
    """Run :func:`run_child` in a fresh process (with ``pythonpath`` first on its path)."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark process failed ({spec}):\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def loops(quick: bool) -> list[tuple[str, list[Any], int]]:
    """(label, loop spec, steps) of every loop to measure."""
    scale = 4 if quick else 1
    chosen: list[tuple[str, list[Any], int]] = [
        ("2 ms of pure-Python work", ["python", calibrate(2.0)], 2000 // scale),
        ("20 ms of pure-Python work", ["python", calibrate(20.0)], 500 // scale),
    ]
    if installed("torch"):
        chosen += [
            ("torch CPU MLP, 4 x Linear(256), batch 64", ["torch", 256], 2000 // scale),
            ("torch CPU MLP, 4 x Linear(512), batch 64", ["torch", 512], 500 // scale),
        ]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    repeats = 1 if args.quick else args.repeats
    # (column, mode in the child, PYTHONPATH of the build)
    modes = [("no tracking", "none", None), ("noether", "noether", None)]
    if args.baseline:
        modes.append(("baseline", "noether", args.baseline))
    modes.append(("direct", "direct", None))
    kinds = " + ".join(entry["kind"] for entry in tracker_config())
    print(f"backends: {kinds}; 10 scalars logged every step; median of {repeats} fresh processes")
    if args.baseline:
        print(f"baseline: noether-trackers from PYTHONPATH={args.baseline}")
    columns = "".join(f" {name:>12s}" for name, _, _ in modes)
    print(f"{'loop':44s} {'steps':>6s}{columns} {'noether close':>14s}")
    for label, loop, steps in loops(args.quick):
        times: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in modes}
        for _ in range(repeats):
            for name, mode, pythonpath in modes:  # alternating: drift hits every mode alike
                spec = {"mode": mode, "loop": loop, "steps": steps}
                times[name].append(measure(spec, pythonpath))
        median = {name: statistics.median(t["loop"] for t in times[name]) for name in times}
        close = statistics.median(t["close"] for t in times["noether"])
        base = median["no tracking"]
        cells = [f"{base:11.2f}s"]
        cells += [f"{100 * (median[name] / base - 1):+11.0f}%" for name, _, _ in modes[1:]]
        print(f"{label:44s} {steps:6d} {' '.join(cells)} {close:13.2f}s")


if __name__ == "__main__":
    main()
