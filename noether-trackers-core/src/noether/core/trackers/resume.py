"""Continuing a run: what earlier processes of the same run id left in its journal.

One output directory holds one run: ``init()`` with a run id other than the one journaled
there raises :class:`RunDirectoryInUseError`. A run is *resumed* when its output directory's
journal already holds an ``init`` record with the same run id (a job restarted after
preemption or a crash). The new process continues the step count after the last step logged
and keeps the summary of the whole run. When training
restarts from a checkpoint older than the last logged step, ``init(resume_step=R)`` says so:
everything logged before at steps ``>= R`` is superseded by what the new process logs there
(a ``rewind`` record in the journal; TensorBoard purges those points, and replay drops them).

A journal damaged in places (a torn line after a crash, a line corrupted anywhere) is resumed
from what is readable: the lines that are not are skipped, with one warning saying how many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.journal import JOURNAL_FILE, JournalReader
from noether.core.trackers.summary import MetricSummary, SummaryDirections
from noether.core.trackers.values import Value

logger = logging.getLogger("noether.trackers")


class RunDirectoryInUseError(TrackerConfigError):
    """The output directory already holds another run (its journal has another run id):
    ``init()`` refuses to mix a second run into it. One output directory holds one run."""

    def __init__(self, run_dir: Path, journaled_run_id: str, run_id: str) -> None:
        """The error for a run ``run_id`` started where ``journaled_run_id`` is journaled."""
        #: The output directory, and the id of the run it holds.
        self.run_dir = run_dir
        self.journaled_run_id = journaled_run_id
        super().__init__(
            [
                f"output_path {run_dir}: it already holds run {journaled_run_id!r} (in its "
                f"{JOURNAL_FILE}), and this run's id is {run_id!r}; one output directory holds "
                "one run: give this run a new output directory, or resume run "
                f"{journaled_run_id!r} by passing run_id={journaled_run_id!r} to init()"
            ]
        )


@dataclass
class PreviousRun:
    """What the journal holds of earlier processes of a run: its kept points summarised."""

    last_step: int | None = None
    metrics: MetricSummary = field(default_factory=MetricSummary)
    user_summary: dict[str, Value] = field(default_factory=dict)


def kept_log_records(
    records: Iterable[dict[str, Any]], run_id: str | None = None, rewind_to: int | None = None
) -> list[dict[str, Any]]:
    """The ``log`` records (of ``run_id``, or of every run) that no later ``rewind`` record,
    nor a final rewind to ``rewind_to``, supersedes."""
    logs: list[dict[str, Any]] = []
    current: str | None = None
    for record in records:
        operation = record.get("op")
        if operation == "init":
            current = record.get("run_id")
        elif run_id is not None and current != run_id:
            continue
        elif operation == "log":
            logs.append(record)
        elif operation == "rewind":
            logs = [log for log in logs if log["step"] < record["step"]]
    if rewind_to is not None:
        logs = [log for log in logs if log["step"] < rewind_to]
    return logs


def previous_run(
    run_dir: Path,
    run_id: str,
    rewind_to: int | None,
    directions: SummaryDirections | None = None,
) -> PreviousRun | None:
    """The earlier part of run ``run_id`` in ``run_dir``'s journal, or None if it has none;
    its metrics are summarised by ``directions``.

    Lines of the journal that cannot be read are skipped (one warning); a journal that cannot
    be read at all starts the run afresh (a warning too): neither stops training.
    """
    path = run_dir / JOURNAL_FILE
    if not path.is_file():
        return None
    reader = JournalReader(path, decode=False)
    try:
        records = list(reader)
    except OSError as error:
        logger.warning(
            "cannot read %s to resume run %s (%s); starting it afresh", path, run_id, error
        )
        return None
    if not any(r["op"] == "init" and r["run_id"] == run_id for r in records):
        others = [r["run_id"] for r in records if r["op"] == "init"]
        if others:
            raise RunDirectoryInUseError(run_dir, others[-1], run_id)
        reader.warn_skipped()
        return None
    reader.warn_skipped(f"; resuming run {run_id} from the rest")
    previous = PreviousRun(metrics=MetricSummary(directions))
    for log in kept_log_records(records, run_id, rewind_to):
        step = log["step"]
        previous.last_step = step if previous.last_step is None else max(previous.last_step, step)
        for key, value in log["values"].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                previous.metrics.update(key, value)
    current: str | None = None
    for record in records:  # summaries set by hand are kept whatever the rewind
        if record.get("op") == "init":
            current = record.get("run_id")
        elif record.get("op") == "summary" and current == run_id:
            previous.user_summary.update(
                {k: v for k, v in record["values"].items() if isinstance(v, int | float | str)}
            )
    return previous
