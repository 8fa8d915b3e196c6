"""Replaying a run's journal into any backend, e.g. a run logged offline on a cluster into W&B.

The journal holds every call of the run (``docs/journal.md``); replay feeds them, in order and
with their steps, to trackers built from a ``tracker:`` section, exactly as the run would have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from noether.core.trackers.config import create_tracker
from noether.core.trackers.delivery import DeliveryReport, DeliverySettings
from noether.core.trackers.journal import read_journal
from noether.core.trackers.resume import kept_log_records
from noether.core.trackers.run_info import RUN_STATUSES, RunStatus

#: Called with (records done, records in all) as replay goes on.
Progress = Callable[[int, int], None]


def replay_journal(
    run_dir: str | os.PathLike[str],
    tracker_section: Any,
    output_path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> DeliveryReport | None:
    """Push the journal of ``run_dir`` into the trackers ``tracker_section`` asks for.

    The replayed run has the original name, id, stage and config; it ends with the status the
    journal recorded (``failed`` if the run never closed, e.g. after SIGKILL). Backends write
    under ``output_path``; the replay keeps no journal of its own.
    """
    everything = list(read_journal(run_dir))
    # points a resumed run superseded (logged again after a rewind) are replayed once
    kept = {id(record) for record in kept_log_records(everything)}
    records = [
        r
        for r in everything
        if r["op"] in ("init", "summary", "close") or (r["op"] == "log" and id(r) in kept)
    ]
    inits = [record for record in records if record["op"] == "init"]
    if not inits:
        raise ValueError(f"{run_dir}: the journal has no init record: nothing to replay")
    tracker = create_tracker(tracker_section, output_path, delivery=DeliverySettings(journal=False))
    first = inits[0]
    tracker.init(
        run_name=first["run_name"],
        run_id=first["run_id"],
        stage_name=first["stage_name"],
        config=first["config"],
    )
    status: RunStatus = "failed"
    for done, record in enumerate(records, start=1):
        if record["op"] == "log":
            tracker.log(record["values"], step=record["step"])
        elif record["op"] == "summary":
            tracker.update_summary(record["values"])
        elif record["op"] == "close" and record["status"] in RUN_STATUSES:
            status = record["status"]
        if progress is not None:
            progress(done, len(records))
    return tracker.close(status=status)


def progress_bar(width: int = 40) -> Progress:
    """A one-line progress bar on stderr."""

    def show(done: int, total: int) -> None:
        if done != total and done % 200:
            return  # redrawing every record would cost more than the replay
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} records")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
