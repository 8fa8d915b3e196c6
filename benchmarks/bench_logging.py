"""How much noether-trackers costs the training thread, and how fast it gets data to disk.

    .venv/bin/python benchmarks/bench_logging.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench_logging.py --quick    # smaller counts, for a smoke test

Prints, in one run and so on the same machine state:
1. the training thread's cost per ``log()`` of 10 scalars (median, p99) with every installed
   local backend configured together, next to the direct library calls for the same data
   (torch-free TensorBoard event writing, ``wandb.log`` offline, ``trackio.log``);
2. throughput: 1,000,000 scalars into TensorBoard plus the journal until ``close()`` returns,
   next to ``torch.utils.tensorboard.SummaryWriter.add_scalar`` (when torch is installed) and
   to torch-free per-scalar event writing;
3. peak memory (RSS growth) while logging those 1,000,000 scalars, in a fresh process.
Ratios are against the direct calls measured in this same run: this machine is noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

SCALARS = [f"metric_{index}" for index in range(10)]


def values(step: int) -> dict[str, float]:
    return {key: step * 0.001 + index for index, key in enumerate(SCALARS)}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def isolate(directory: Path) -> None:
    """Keep every backend's files in ``directory``; never touch the network."""
    for variable, name in [
        ("HOME", "home"),
        ("WANDB_DIR", "wandb"),
        ("WANDB_CACHE_DIR", "wc"),
        ("WANDB_CONFIG_DIR", "wcfg"),
        ("WANDB_DATA_DIR", "wd"),
        ("TRACKIO_DIR", "trackio"),
        ("HF_HOME", "hf"),
    ]:
        (directory / name).mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(directory / name)
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", HF_HUB_OFFLINE="1")


def time_calls(
    call: Callable[[int, dict[str, float]], Any], count: int, *, training_step: bool = True
) -> list[float]:
    """Per-call wall time in microseconds. With ``training_step``, a small matrix product
    stands in for the training between calls: real compute that releases the interpreter lock,
    as torch does, while the delivery threads work. Without it, calls come back to back."""
    import numpy as np

    matrix = np.random.default_rng(0).random((96, 96))
    timings = []
    for step in range(count):
        data = values(step)
        if training_step:
            matrix @ matrix
        started = time.perf_counter_ns()
        call(step, data)
        timings.append((time.perf_counter_ns() - started) / 1000)
    return timings


def log_at(tracker: Any, step: int, data: dict[str, float]) -> None:
    tracker.log(data, step=step)


def describe(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99)]


def tracker_config() -> list[dict[str, Any]]:
    config: list[dict[str, Any]] = [{"kind": "tensorboard", "flush_secs": 60}]
    if installed("noether_trackers_wandb"):
        config.append({"kind": "wandb", "project": "bench", "mode": "offline"})
    if installed("noether_trackers_trackio"):
        config.append({"kind": "trackio", "project": "bench"})
    return config


def direct_tensorboard(directory: Path) -> tuple[Callable[..., None], Callable[[], None]]:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(directory), flush_secs=60)

    def log(step: int, data: dict[str, float]) -> None:
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in data.items()]
        )
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    return log, writer.close


def latency(count: int, root: Path) -> None:
    from noether.core.trackers import create_tracker

    config = tracker_config()
    kinds = " + ".join(entry["kind"] for entry in config)
    print(
        f"\n1. training-thread cost per log() of 10 scalars ({count:,} calls, a 96x96 "
        "matrix product of 'training' between calls)"
    )
    rows: list[tuple[str, float, float]] = []
    for training_step, label in ((True, ""), (False, ", calls back to back")):
        tracker = create_tracker(config, root / f"noether-{training_step}")
        tracker.init(run_name="bench")
        timings = time_calls(partial(log_at, tracker), count, training_step=training_step)
        rows.append((f"noether-trackers [{kinds}] + journal{label}", *describe(timings)))
        tracker.close(timeout=300)

    log, close = direct_tensorboard(root / "direct-tb")
    rows.append(("direct TensorBoard event writing (no torch)", *describe(time_calls(log, count))))
    close()
    if installed("wandb"):
        import wandb

        run = wandb.init(project="bench", mode="offline", dir=str(root / "direct-wandb"))
        rows.append(
            (
                "direct wandb.log (offline)",
                *describe(time_calls(lambda step, data: run.log(data, step=step), count)),
            )
        )
        run.finish()
    if installed("trackio"):
        import trackio

        trackio.init(project="bench-direct", name="direct")
        rows.append(
            (
                "direct trackio.log",
                *describe(time_calls(lambda step, data: trackio.log(data, step=step), count)),
            )
        )
        trackio.finish()
    ours = rows[0]
    print(f"   {'':52s} {'median':>10s} {'p99':>10s}   ratio of medians to ours")
    for name, median, p99 in rows:
        ratio = "" if name == ours[0] else f"   {median / ours[1]:.1f}x"
        print(f"   {name:52s} {median:8.2f}us {p99:8.2f}us{ratio}")
    for name, median, p99 in rows[:2]:
        case = name.split(" + journal")[1].lstrip(", ") or "the training loop"
        print(
            f"   targets (median < 5 us, p99 < 100 us), {case}:"
            f" median {'MET' if median < 5 else 'MISSED'}, p99 {'MET' if p99 < 100 else 'MISSED'}"
        )


def throughput(total_scalars: int, root: Path) -> None:
    from noether.core.trackers import create_tracker

    calls = total_scalars // len(SCALARS)
    print(f"\n2. throughput: {total_scalars:,} scalars until close() returns and all is on disk")
    started = time.perf_counter()
    tracker = create_tracker({"kind": "tensorboard"}, root / "throughput")
    tracker.init(run_name="throughput")
    for step in range(calls):
        tracker.log(values(step), step=step)
    report = tracker.close(timeout=600)
    ours = time.perf_counter() - started
    assert report is not None and report.complete, report
    rows = [("noether-trackers [tensorboard] + journal", ours)]

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    started = time.perf_counter()
    writer = EventFileWriter(str(root / "per-scalar"), flush_secs=60)
    for step in range(calls):
        for key, value in values(step).items():
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=key, simple_value=value)]
            )
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()
    rows.append(("direct per-scalar event writing (no torch)", time.perf_counter() - started))
    if installed("torch"):
        from torch.utils.tensorboard import SummaryWriter

        started = time.perf_counter()
        summary_writer = SummaryWriter(str(root / "torch"))
        for step in range(calls):
            for key, value in values(step).items():
                summary_writer.add_scalar(key, value, step)
        summary_writer.close()
        rows.append(("torch SummaryWriter.add_scalar", time.perf_counter() - started))
    else:
        print("   (torch is not installed: SummaryWriter not measured; pip install torch==2.13.0)")
    for name, seconds in rows:
        ratio = "" if name == rows[0][0] else f"   ours is {seconds / ours:.1f}x faster"
        print(f"   {name:52s} {total_scalars / seconds:12,.0f} scalars/s ({seconds:6.2f} s){ratio}")


def memory(total_scalars: int) -> None:
    print(f"\n3. peak memory while logging {total_scalars:,} scalars (RSS, fresh process)")
    code = f"""
import os, sys, tempfile, threading, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from bench_logging import values
from noether.core.trackers import create_tracker
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * page
peak, done = [0], threading.Event()
def sample():
    while not done.wait(0.005):
        peak[0] = max(peak[0], rss())
tracker = create_tracker({{"kind": "tensorboard"}}, tempfile.mkdtemp())
tracker.init(run_name="memory")
tracker.log(values(0), step=0)
tracker.flush()
baseline = rss()
threading.Thread(target=sample, daemon=True).start()
for step in range(1, {total_scalars // len(SCALARS)}):
    tracker.log(values(step), step=step)
tracker.close(timeout=600)
done.set()
print(baseline, max(peak[0], rss()))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    baseline, peak = (int(x) / 2**20 for x in output.stdout.split())
    print(
        f"   RSS after start-up {baseline:.1f} MB, peak while logging {peak:.1f} MB: "
        f"+{peak - baseline:.1f} MB for {total_scalars:,} scalars (the queues are bounded)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    args = parser.parse_args()
    count, total = (2_000, 100_000) if args.quick else (20_000, 1_000_000)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        isolate(root)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores; backends: "
            f"{json.dumps([entry['kind'] for entry in tracker_config()])}"
        )
        latency(count, root=root)
        throughput(total, root)
        memory(total)


if __name__ == "__main__":
    main()
