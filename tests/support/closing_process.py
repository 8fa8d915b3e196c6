"""A training process for the tests of signals and faults around ``close()``.

    python closing_process.py OUTPUT_DIR MODE

MODE ``slow-close``: a backend whose ``_close`` takes 5 s next to TensorBoard; log 100 steps,
print ``closing``, close, print ``closed``, then wait to be signalled. ``ignored``: ignore
SIGTERM (``SIG_IGN``) before the run; log a step every millisecond, printing each, until
OUTPUT_DIR/stop exists; then close and exit 0. ``journal-limit``: a slow backend that keeps
what it gets in memory, 20,000 calls under the file size limit the test sets; print what the
backend received and the delivery report as JSON.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from fault_plugins import fault_registry

from noether.core.trackers import create_tracker
from noether.core.trackers.delivery import DeliverySettings

output, mode = Path(sys.argv[1]), sys.argv[2]


def slow_close() -> None:
    tracker = create_tracker(
        [{"kind": "slow-close", "close_seconds": 5.0}, {"kind": "tensorboard"}],
        output,
        registry=fault_registry(),
    )
    tracker.init(run_name="closing", run_id="job-1")
    for step in range(100):
        tracker.log({"loss": 1.0 / (step + 1)})
    print("closing", flush=True)
    tracker.close()
    print("closed", flush=True)
    time.sleep(60)


def ignored() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tracker = create_tracker({"kind": "tensorboard"}, output)
    tracker.init(run_name="ignoring", run_id="job-1")
    print("ready", flush=True)
    step = 0
    while not (output / "stop").exists():
        tracker.log({"loss": 1.0 / (step + 1)}, step=step)
        print(step, flush=True)
        step += 1
        time.sleep(0.001)
    tracker.close()
    sys.exit(0)


def journal_limit() -> None:
    tracker = create_tracker(
        {"kind": "slow-memory"},
        output,
        registry=fault_registry(),
        delivery=DeliverySettings(queue_capacity=500),
    )
    tracker.init(run_name="limited", run_id="job-1")
    [backend] = tracker.backends
    for step in range(20_000):
        tracker.log({"loss": 1.0 / (step + 1), "note": f"padding {step:>40}"}, step=step)
    report = tracker.close(timeout=60)
    assert report is not None
    [backend_report] = report.backends
    print(
        json.dumps(
            {
                "steps": [step for _, step in backend.logged()],  # type: ignore[attr-defined]
                "dropped": backend_report.dropped,
                "failed": backend_report.failed,
                "undelivered": backend_report.undelivered_at_close,
                "journal_error": report.journal_error,
                "dropped_at_handover": report.dropped_at_handover,
            }
        ),
        flush=True,
    )


{"slow-close": slow_close, "ignored": ignored, "journal-limit": journal_limit}[mode]()
