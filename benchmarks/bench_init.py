"""What recording the run's environment adds to ``init()`` (the budget: 50 ms without torch).

    .venv/bin/python benchmarks/bench_init.py             # 15 runs of each, from this directory
    .venv/bin/python benchmarks/bench_init.py --runs 31 --torch

Every measurement runs in a fresh process: it builds a TensorBoard tracker with
``create_tracker`` (plugins loaded, not timed), then times ``init()`` alone, in one of two
modes, alternating: "with" (as shipped: the environment is collected, the collection timed on
its own too) and "without" (the collection replaced by nothing). The figure is the difference
of the medians of ``init()``, and the median of the collection itself. Run it from a git
checkout to include the git probes (the working directory is the children's); ``--torch``
imports torch first (what a torch training program has done by ``init``), otherwise the child
checks that torch was never imported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET_MS = 50.0


def child(mode: str, output: Path, with_torch: bool) -> None:
    """One measurement: print ``{"init_ms": ..., "collect_ms": ...}``."""
    if with_torch:
        import torch  # noqa: F401

    import noether.core.trackers.tracker as tracker_module
    from noether.core.trackers import create_tracker, run_environment

    collected: list[float] = []
    collect = run_environment.collect_run_environment

    def timed(tracker_classes: Any) -> dict[str, Any]:
        started = time.perf_counter()
        environment = collect(tracker_classes)
        collected.append(time.perf_counter() - started)
        return environment

    # init() calls the name tracker.py imported
    tracker_module.__dict__["collect_run_environment"] = (
        timed if mode == "with" else lambda classes: {}
    )
    tracker = create_tracker({"kind": "tensorboard"}, output)
    started = time.perf_counter()
    tracker.init(run_name="bench", config={"lr": 0.1})
    init_seconds = time.perf_counter() - started
    tracker.close()
    environment = tracker.run.config.get("run_environment", {}) if tracker.run else {}
    if not with_torch:
        assert "torch" not in sys.modules, "init() imported torch"
    print(
        json.dumps(
            {
                "init_ms": init_seconds * 1e3,
                "collect_ms": collected[0] * 1e3 if collected else 0.0,
                "fields": sorted(environment),
            }
        )
    )


def measure(mode: str, root: Path, index: int, with_torch: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, str(root / f"{mode}-{index}")]
    if with_torch:
        command.append("--torch")
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per mode")
    parser.add_argument("--torch", action="store_true", help="import torch before init()")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "OUTPUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child[0], Path(arguments.child[1]), arguments.torch)
        return
    results: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    with tempfile.TemporaryDirectory() as directory:
        for index in range(arguments.runs):
            for mode in ("with", "without") if index % 2 else ("without", "with"):
                results[mode].append(measure(mode, Path(directory), index, arguments.torch))
    with_init = statistics.median(r["init_ms"] for r in results["with"])
    without_init = statistics.median(r["init_ms"] for r in results["without"])
    collect = statistics.median(r["collect_ms"] for r in results["with"])
    added = with_init - without_init
    print(f"torch imported: {arguments.torch}; {arguments.runs} fresh processes per mode")
    print(f"recorded fields: {', '.join(results['with'][0]['fields'])}")
    print(f"init() median, environment recorded:     {with_init:7.1f} ms")
    print(f"init() median, environment not recorded: {without_init:7.1f} ms")
    print(f"added to init() (difference of medians): {added:7.1f} ms")
    print(f"collect_run_environment() median:        {collect:7.1f} ms")
    worst = max(added, collect)
    verdict = "within" if worst < BUDGET_MS else "OVER"
    print(f"{verdict} the {BUDGET_MS:.0f} ms budget")


if __name__ == "__main__":
    main()
