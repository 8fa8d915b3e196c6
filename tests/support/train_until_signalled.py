"""A training process for the preemption tests: logs a step every millisecond or so, prints
each step it logged (flushed), and never closes its tracker itself.

    python train_until_signalled.py OUTPUT_DIR MODE [TRACKER_JSON]

MODE ``plain``: just train until killed. ``user-handler``: install a SIGTERM handler first
that writes ``user_handler_ran`` into OUTPUT_DIR and exits with status 7. ``exit``: log 100
steps and fall off the end without closing. ``crash``: log 100 steps, then raise.
TRACKER_JSON is the ``tracker:`` section as JSON (default: TensorBoard).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from noether.core.trackers import create_tracker

output, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "user-handler":

    def handler(signum: int, frame: object) -> None:
        (output / "user_handler_ran").write_text("yes")
        sys.exit(7)

    signal.signal(signal.SIGTERM, handler)

section = (
    json.loads(sys.argv[3]) if len(sys.argv) > 3 else {"kind": "tensorboard", "flush_secs": 600}
)
tracker = create_tracker(section, output)
tracker.init(run_name="preempted", run_id="job-1")
print("ready", flush=True)
step = 0
while True:
    tracker.log({"loss": 1.0 / (step + 1), "step_copy": step}, step=step)
    print(step, flush=True)
    step += 1
    if mode in ("exit", "crash") and step == 100:
        if mode == "crash":
            raise RuntimeError("training diverged")
        break
    time.sleep(0.001)
