"""Replaying a run's journal into any backend, e.g. a run logged offline on a cluster into W&B.

The journal holds every call of the run (``docs/journal.md``); replay feeds them, in order and
with their steps, to trackers built from a ``tracker:`` section, exactly as the run would have:
each logged point reaches the backends with the wall time of the original ``log()`` call (the
record's ``t``), so that backends which keep timestamps show when it was logged, not replayed.
What the journal holds is data, never trusted: lines and values that cannot be read are
skipped and counted (see :class:`~noether.core.trackers.journal.JournalReader`), and media are
read only from the run's own ``media/`` folder.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from noether.core.trackers._engine.run_summary import kept_logs
from noether.core.trackers.config import create_tracker
from noether.core.trackers.delivery import DeliveryReport, DeliverySettings
from noether.core.trackers.journal import JournalError, JournalReader
from noether.core.trackers.records import (
    CloseRecord,
    InitRecord,
    LogRecord,
    Record,
    SummaryRecord,
    UnknownRecord,
)
from noether.core.trackers.run_environment import RUN_ENVIRONMENT_KEY
from noether.core.trackers.run_info import RUN_STATUSES, RunStatus
from noether.core.trackers.summary import SummaryDirections

logger = logging.getLogger("noether.trackers")
#: The latest wall time a replay passes on (the end of year 9999, the last ``datetime`` can
#: show); a journaled time outside ``0..`` this, or not finite, is replaced by the replay's.
LATEST_WALL_TIME = 253402300799.0

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
    under ``output_path``; the replay keeps no journal of its own. Lines and values of the
    journal that cannot be read are left out, with one warning saying how many. Raises
    :class:`~noether.core.trackers.journal.JournalError` when no ``init`` record is readable,
    ``OSError`` when the journal cannot be read at all, and
    :class:`~noether.core.trackers.errors.TrackerConfigError` for a wrong ``tracker:`` section
    or a backend that fails to start.
    """
    journal = JournalReader(run_dir)
    records = replayable_records(journal)
    journal.warn_skipped("; replaying the rest")
    return push_records(records, tracker_section, output_path, progress)


def replayable_records(journal: JournalReader) -> list[Record | UnknownRecord]:
    """The records of ``journal`` that a replay pushes, in order: ``init``, ``summary``,
    ``close``, and the ``log`` records that no later ``rewind`` superseded.

    Raises :class:`~noether.core.trackers.journal.JournalError` when no ``init`` record is
    readable (nothing says which run this is).
    """
    everything = list(journal.records())
    # points a resumed run superseded (logged again after a rewind) are replayed once
    kept = {id(record) for record in kept_logs(everything)}
    records: list[Record | UnknownRecord] = [
        r
        for r in everything
        if isinstance(r, InitRecord | SummaryRecord | CloseRecord) or id(r) in kept
    ]
    if not any(isinstance(record, InitRecord) for record in records):
        raise JournalError(f"{journal.path}: no readable init record: nothing to replay")
    return records


def push_records(
    records: Sequence[Record | UnknownRecord],
    tracker_section: Any,
    output_path: str | os.PathLike[str],
    progress: Progress | None = None,
) -> DeliveryReport | None:
    """Replay ``records`` (from :func:`replayable_records`) into a new run of
    ``tracker_section`` writing under ``output_path``; returns what ``close()`` reported."""
    tracker = create_tracker(tracker_section, output_path, delivery=DeliverySettings(journal=False))
    first = next(record for record in records if isinstance(record, InitRecord))
    config, environment = first.config, None
    if isinstance(config, dict) and RUN_ENVIRONMENT_KEY in config:
        config = dict(config)
        environment = config.pop(RUN_ENVIRONMENT_KEY)
    tracker.init(
        run_name=first.run_name,
        run_id=first.run_id,
        stage_name=first.stage_name,
        config=config,
        # the run's own metric directions first: its summary is the same as when it ran
        summary_directions=_journaled_directions(first),
        # the environment the run recorded, not this machine's (none if it recorded none)
        run_environment=environment if isinstance(environment, dict) else {},
    )
    status: RunStatus = "failed"
    try:
        for done, record in enumerate(records, start=1):
            if isinstance(record, LogRecord):
                # Tracker.log's checks, normalising and redaction, at the call's own time
                tracker._log_at(record.values, record.step, _wall_time(record.t))
            elif isinstance(record, SummaryRecord):
                tracker.update_summary(record.values)
            elif isinstance(record, CloseRecord) and record.status in RUN_STATUSES:
                status = record.status
            if progress is not None:
                progress(done, len(records))
    except BaseException:  # interrupted, or a record the tracker refused: end the replayed run
        tracker.close(status="failed")
        raise
    return tracker.close(status=status)


class ProgressBar:
    """A one-line progress bar on stderr (a :data:`Progress` callable)."""

    def __init__(self, width: int = 40) -> None:
        """A bar ``width`` characters wide."""
        self.width = width
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        """Show that ``done`` of ``total`` records are replayed."""
        if done != total and done % 200:
            return  # redrawing every record would cost more than the replay
        filled = self.width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} records")
        self._drawn = done != total
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def end_line(self) -> None:
        """End a bar left half-drawn (so that a message printed next starts a line)."""
        if self._drawn:
            sys.stderr.write("\n")
            self._drawn = False


def progress_bar(width: int = 40) -> ProgressBar:
    """A one-line progress bar on stderr."""
    return ProgressBar(width)


def _wall_time(t: float | None) -> float | None:
    """A journaled time as the wall time to replay it with; None (the replay's own time) when
    the journal has none, or one no backend could show (the journal is data, never trusted)."""
    if t is None or not math.isfinite(t) or not 0 <= t <= LATEST_WALL_TIME:
        return None
    return float(t)


def _journaled_directions(init_record: InitRecord) -> SummaryDirections:
    """The summary directions an ``init`` record holds (none in journals written before they
    were journaled, or when unreadable: the defaults then apply, with a warning)."""
    try:
        return SummaryDirections.from_pairs(init_record.summary_directions)
    except ValueError as error:
        logger.warning("the journal's summary directions are unreadable (%s); ignoring them", error)
        return SummaryDirections()
