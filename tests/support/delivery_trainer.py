"""Training processes for ``tests/test_delivery_process.py``: real runs delivered by a real
delivery process, which the test (or the training process itself) kills with real signals.

    python delivery_trainer.py MODE OUTPUT_DIR OPTIONS_JSON

Every mode prints ``name value`` lines (flushed) as it goes, and most end with one
``result JSON`` line. Modes:

``handed``
    Start the run (``section``, optional ``close_timeout``, ``registry: faults`` for the
    fault-injection plugins), print ``delivery PID`` and the process ``tree`` below this
    process, log steps ``0..steps-1``, print ``handed`` and sleep until killed.
``kill-delivery``
    Log steps ``0..steps-1`` (``pause`` seconds after each); at step ``kill_at`` (after
    ``tracker.flush()`` if ``flush``) SIGKILL the delivery process, then go on and close. The
    result holds each ``log()`` call's duration, the delivery process's pid before and after,
    the W&B service process of the killed one, the progress board right after the kill (what
    the replacement learns: calls kept by the journal, calls each backend took up to its last
    ``_flush``), and the warnings logged.
``children``
    Start one run per entry of ``sections`` (each in its own directory below OUTPUT_DIR),
    print the process tree below this process while they are open (``result``), close them,
    and print the tree again (``after``).
``many-runs``
    Create and close ``runs`` runs (each in its own directory below OUTPUT_DIR); the result
    holds this process's threads, descriptors and children before the first and after the
    last.
``dataloader``
    Iterate a real ``torch.utils.data.DataLoader`` with two forked workers, between steps the
    parent logs; the workers ``log`` into the parent's run (``workers: log``), or do not touch
    it and run the interpreter's exit handlers as they end (``workers: exit``). Every process
    that runs the exit handlers appends its pid to the file ``exits``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from noether.core.trackers import Tracker, create_tracker
from noether.core.trackers._engine.process_delivery import ProcessDelivery
from noether.core.trackers.delivery import DeliverySettings

LOG_FORMAT = "%(process)d %(levelname)s %(name)s: %(message)s"


def say(name: str, value: Any = "") -> None:
    """One ``name value`` line on stdout, flushed at once."""
    print(f"{name} {value}".rstrip(), flush=True)


def values_of(step: int) -> dict[str, float]:
    """What every mode logs at ``step``."""
    return {"loss": 1.0 / (step + 1), "acc": step / 1000, "step_copy": float(step)}


def children(pid: int) -> list[int]:
    """The direct children of process ``pid`` (of every thread of it)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread ended meanwhile
            continue
    return sorted(set(found))


def describe(pid: int) -> dict[str, Any]:
    """A process's pid, parent, name, state and command line (None where it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return {"pid": pid, "ppid": None, "name": None, "state": None, "cmdline": []}
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
    return {
        "pid": pid,
        "ppid": int(ppid),
        "name": name,
        "state": state,
        "cmdline": [part.decode(errors="replace") for part in command if part],
    }


def tree(pid: int) -> list[dict[str, Any]]:
    """Every descendant of ``pid``, parents before their children."""
    found: list[dict[str, Any]] = []
    for child in children(pid):
        found.append(describe(child))
        found += tree(child)
    return found


def make_tracker(output: Path, options: dict[str, Any]) -> Tracker:
    """The run of ``options``: its ``section``, ``close_timeout`` and ``registry``."""
    registry = None
    if options.get("registry") == "faults":
        from fault_plugins import fault_registry  # type: ignore[import-not-found]

        registry = fault_registry()
    settings = DeliverySettings(close_timeout=float(options.get("close_timeout", 30.0)))
    return create_tracker(options["section"], output, registry=registry, delivery=settings)


def delivery(tracker: Tracker) -> ProcessDelivery:
    """The training process's side of the run's delivery process (the run must use one)."""
    engine = tracker._engine
    assert isinstance(engine, ProcessDelivery), tracker.delivery_mode
    return engine


def delivery_pid(tracker: Tracker) -> int:
    """The pid of the run's delivery process."""
    return delivery(tracker)._process.pid


class Warnings(logging.Handler):
    """Keeps the messages of the warnings (and worse) logged in this process."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# ---- the modes --------------------------------------------------------------------------------


def handed(output: Path, options: dict[str, Any]) -> None:
    tracker = make_tracker(output, options)
    tracker.init(run_name="killed-trainer", run_id="run-1")
    say("delivery", delivery_pid(tracker))
    say("tree", json.dumps(tree(os.getpid())))
    for step in range(options["steps"]):
        tracker.log(values_of(step), step=step)
    say("handed")
    time.sleep(600)


def kill_delivery(output: Path, options: dict[str, Any]) -> None:
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    steps, kill_at, pause = options["steps"], options["kill_at"], options["pause"]
    tracker = make_tracker(output, options)
    tracker.init(run_name="killed-delivery", run_id="run-1")
    before = delivery_pid(tracker)
    wandb_core = [p["pid"] for p in tree(before) if p["name"] == "wandb-core"]
    durations: list[float] = []
    flushed = None
    progress: dict[str, Any] = {}
    for step in range(steps):
        if step == kill_at:
            if options["flush"]:
                flushed = tracker.flush(60.0)
            engine = delivery(tracker)
            os.kill(before, signal.SIGKILL)
            # what the killed process had done, as its replacement learns it (diagnostics)
            progress = {
                "kept": engine.board.kept,
                "durable": {
                    label: engine.board.durable(index) for index, label in enumerate(engine.labels)
                },
            }
        started = time.perf_counter()
        tracker.log(values_of(step), step=step)
        durations.append(time.perf_counter() - started)
        time.sleep(pause)
    after = delivery_pid(tracker)
    report = tracker.close()
    result = {
        "before": before,
        "after": after,
        "killed_still_there": describe(before)["state"],
        "wandb_core_of_killed": wandb_core,
        "durations": durations,
        "flushed": flushed,
        "progress_at_kill": progress,
        "warnings": warnings.messages,
        "complete": report.complete,
        "report": report.describe(),
        "children_after_close": tree(os.getpid()),
    }
    say("result", json.dumps(result))


def children_mode(output: Path, options: dict[str, Any]) -> None:
    trackers = []
    for number, section in enumerate(options["sections"]):
        tracker = make_tracker(output / f"run-{number}", {**options, "section": section})
        tracker.init(run_name=f"children-{number}", run_id=f"run-{number}")
        for step in range(3):
            tracker.log(values_of(step), step=step)
        assert tracker.flush(60.0)
        trackers.append(tracker)
    deliveries = [delivery_pid(tracker) for tracker in trackers]
    say("result", json.dumps({"deliveries": deliveries, "tree": tree(os.getpid())}))
    for tracker in trackers:
        tracker.close()
    say("after", json.dumps(tree(os.getpid())))


def counts() -> dict[str, Any]:
    """This process's threads, open descriptors and children."""
    return {
        "threads": len(os.listdir("/proc/self/task")),
        "thread_names": sorted(thread.name for thread in threading.enumerate()),
        "fds": len(os.listdir("/proc/self/fd")),
        "children": tree(os.getpid()),
    }


def many_runs(output: Path, options: dict[str, Any]) -> None:
    before = counts()
    pids: list[int] = []
    for number in range(options["runs"]):
        tracker = make_tracker(output / f"run-{number:03d}", options)
        tracker.init(run_name=f"run-{number}", run_id=f"run-{number}")
        pids.append(delivery_pid(tracker))
        tracker.log(values_of(0), step=0)
        tracker.close()
    # the sender thread ends once no run is open: give it its last round
    deadline = time.monotonic() + 5.0
    after = counts()
    while (after["threads"], after["fds"]) != (before["threads"], before["fds"]) or after[
        "children"
    ]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        after = counts()
    left = [describe(pid) for pid in pids if describe(pid)["state"] is not None]
    say("result", json.dumps({"before": before, "after": after, "pids": pids, "left": left}))


#: The parent's run, as a data-loader worker (a fork of the parent) sees it.
TRACKER: Tracker | None = None


class LoggingDataset:
    """Eight items; with ``log``, each ``__getitem__`` logs into the parent's run (global)."""

    def __init__(self, log: bool) -> None:
        self.log = log

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> int:
        if self.log:
            assert TRACKER is not None
            TRACKER.log({"from_worker": float(index)}, step=1000 + index)
            TRACKER.set_summary("worker_summary", index)
            TRACKER.flush(1.0)
        return index


def run_exit_handlers_at_worker_end(worker_id: int) -> None:
    """A worker ends with ``os._exit`` (multiprocessing); make it run the interpreter's exit
    handlers (``atexit``: the one that closes open runs) first, as a process that ends with
    ``sys.exit`` would."""
    import atexit
    from multiprocessing import util

    util.Finalize(None, atexit._run_exitfuncs, exitpriority=-100)


def note_exit(path: Path) -> None:
    """An exit handler: appends this process's pid to ``path`` (which processes ran them)."""
    with path.open("a") as stream:
        stream.write(f"{os.getpid()}\n")


def dataloader(output: Path, options: dict[str, Any]) -> None:
    global TRACKER
    import atexit

    import torch.utils.data

    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
    atexit.register(note_exit, Path(options["exits"]))
    TRACKER = make_tracker(output, options)
    TRACKER.init(run_name="dataloader", run_id="run-1")
    workers_log = options["workers"] == "log"
    loader: Any = torch.utils.data.DataLoader(
        LoggingDataset(log=workers_log),  # type: ignore[arg-type]  # a map-style dataset
        batch_size=2,
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=None if workers_log else run_exit_handlers_at_worker_end,
    )
    step = 0
    worker_pids: list[int] = []
    for _epoch in range(2):  # the workers of each epoch end with it
        TRACKER.log(values_of(step), step=step)
        step += 1
        batches = iter(loader)
        worker_pids += [worker.pid for worker in batches._workers]
        for batch in batches:
            TRACKER.log({**values_of(step), "batch_sum": float(batch.sum())}, step=step)
            step += 1
        TRACKER.log(values_of(step), step=step)
        step += 1
    alive = [describe(pid) for pid in set(worker_pids) if describe(pid)["state"] not in (None, "Z")]
    report = TRACKER.close()
    say(
        "result",
        json.dumps(
            {
                "steps": step,
                "workers": sorted(set(worker_pids)),
                "workers_alive_at_close": alive,
                "complete": report.complete,
                "status": report.status,
            }
        ),
    )


MODES = {
    "handed": handed,
    "kill-delivery": kill_delivery,
    "children": children_mode,
    "many-runs": many_runs,
    "dataloader": dataloader,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](Path(sys.argv[2]), json.loads(sys.argv[3]))
