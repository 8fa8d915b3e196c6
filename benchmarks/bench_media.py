"""Images at 10 MB a second: what they cost the training process's memory, and whether every
one is delivered.

    .venv/bin/python benchmarks/bench_media.py             # 8 s of images per mode, 3 repeats
    .venv/bin/python benchmarks/bench_media.py --quick     # 4 s, one repeat

Each mode runs in a fresh process: a loop logs one 1 MB image (random RGB pixels, which PNG
cannot shrink) every 0.1 s into TensorBoard + W&B (offline) + Trackio with the journal, with
process delivery and with thread delivery. It prints the training process's peak memory (RSS)
over its memory just before the first image, how far the loop fell behind its 10 steps a
second, how long ``close()`` took, and whether every image reached every backend (the close
report). A pixel array crosses into the delivery process as a raw buffer (pickle protocol 5,
out of band), so the training process holds each image about as long as with threads.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_logging import isolate, tracker_config

IMAGE_SHAPE = (576, 576, 3)  # 995,328 bytes
RATE = 10  # images a second


def rss_kib() -> int:
    """This process's resident memory now, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_child(mode: str, seconds: float) -> dict[str, Any]:
    """Log images for ``seconds`` with ``mode`` delivery; the figures as a dict."""
    import numpy as np

    from noether.core.trackers import Image, create_tracker
    from noether.core.trackers.delivery import DeliverySettings

    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        isolate(root)
        tracker = create_tracker(
            tracker_config(),
            root / "run",
            delivery=DeliverySettings(mode=mode),  # type: ignore[arg-type]
        )
        tracker.init(run_name="bench-media")
        generator = np.random.default_rng(0)
        images = [generator.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8) for _ in range(4)]
        before = rss_kib()
        peak = before
        steps = int(seconds * RATE)
        started = time.perf_counter()
        for step in range(steps):
            tracker.log({"sample": Image(images[step % len(images)])}, step=step)
            peak = max(peak, rss_kib())
            wake = started + (step + 1) / RATE
            time.sleep(max(0.0, wake - time.perf_counter()))
        late = time.perf_counter() - started - seconds
        closing = time.perf_counter()
        report = tracker.close(timeout=600)
        close = time.perf_counter() - closing
        peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return {
            "mode": tracker.delivery_mode,
            "growth_mb": (peak - before) / 1024,
            "late_s": late,
            "close_s": close,
            "lost": {r.backend: r.lost for r in report.backends},
            "megabytes": steps * int(np.prod(IMAGE_SHAPE)) / 1e6,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per mode, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], float(args.child[1]))))
        return
    seconds, repeats = (4.0, 1) if args.quick else (8.0, args.repeats)
    kinds = " + ".join(entry["kind"] for entry in tracker_config())
    print(
        f"{kinds} + journal; one {IMAGE_SHAPE} uint8 image every {1 / RATE:.1f} s for {seconds} s"
    )
    results: dict[str, list[dict[str, Any]]] = {"process": [], "thread": []}
    for _ in range(repeats):
        for mode in results:
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(seconds)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{mode} failed:\n{done.stderr}")
            results[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{'delivery':10s} {'MB logged':>10s} {'peak RSS growth':>16s} {'loop late':>10s} "
        f"{'close()':>8s}  calls not delivered"
    )
    for mode, runs in results.items():
        growth = statistics.median(run["growth_mb"] for run in runs)
        late = statistics.median(run["late_s"] for run in runs)
        close = statistics.median(run["close_s"] for run in runs)
        lost = runs[-1]["lost"]
        used = {run["mode"] for run in runs}
        print(
            f"{mode:10s} {runs[0]['megabytes']:10.0f} {growth:13.1f} MB {late:9.2f}s "
            f"{close:7.2f}s  {lost}" + ("" if used == {mode} else f"  (ran as {used})")
        )


if __name__ == "__main__":
    main()
