"""Continuing a run: what earlier processes of the same run id left in its journal.

One output directory holds one run: ``init()`` with a run id other than the one journaled
there raises :class:`RunDirectoryInUseError`. A run is *resumed* when its output directory's
journal already holds an ``init`` record with the same run id (a job restarted after
preemption or a crash). The new process continues the step count after the last step logged
and keeps the summary of the whole run. When training restarts from a checkpoint older than
the last logged step, ``init(resume_step=R)`` says so: everything logged before at steps
``>= R`` is superseded by what the new process logs there (a ``rewind`` record in the journal;
TensorBoard purges those points, and replay drops them).

A journal damaged in places (a torn line after a crash, a line corrupted anywhere) is resumed
from what is readable: the lines that are not are skipped, with one warning saying how many.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from noether.core.trackers._engine.run_summary import RunSummary, earlier_part, kept_logs
from noether.core.trackers.errors import RunDirectoryInUseError
from noether.core.trackers.journal import JournalReader
from noether.core.trackers.records import InitRecord, from_json, to_json
from noether.core.trackers.run_files import JOURNAL_FILE
from noether.core.trackers.summary import SummaryDirections

__all__ = ["PreviousRun", "RunDirectoryInUseError", "kept_log_records", "previous_run"]

logger = logging.getLogger("noether.trackers")

#: What the journal holds of earlier processes of a run (its last step and summary so far).
#: The name of earlier versions for :class:`~noether.core.trackers._engine.run_summary.RunSummary`.
PreviousRun = RunSummary


def previous_run(
    run_dir: Path,
    run_id: str,
    rewind_to: int | None,
    directions: SummaryDirections | None = None,
) -> RunSummary | None:
    """The earlier part of run ``run_id`` in ``run_dir``'s journal, or None if it has none;
    its metrics are summarised by ``directions``.

    Lines of the journal that cannot be read are skipped (one warning); a journal that cannot
    be read at all starts the run afresh (a warning too): neither stops training. Raises
    :class:`RunDirectoryInUseError` when the journal holds another run.
    """
    path = run_dir / JOURNAL_FILE
    if not path.is_file():
        return None
    reader = JournalReader(path, decode=False)
    try:
        records = list(reader.records())
    except OSError as error:
        logger.warning(
            "cannot read %s to resume run %s (%s); starting it afresh", path, run_id, error
        )
        return None
    run_ids = [record.run_id for record in records if isinstance(record, InitRecord)]
    if run_id not in run_ids:
        if run_ids:
            raise RunDirectoryInUseError(run_dir, run_ids[-1], run_id)
        reader.warn_skipped()
        return None
    reader.warn_skipped(f"; resuming run {run_id} from the rest")
    return earlier_part(records, run_id, rewind_to, directions or SummaryDirections())


def kept_log_records(
    records: Iterable[dict[str, Any]], run_id: str | None = None, rewind_to: int | None = None
) -> list[dict[str, Any]]:
    """The ``log`` records (JSON objects, as :func:`~noether.core.trackers.journal.read_journal`
    yields them) of ``run_id``, or of every run, that no later ``rewind`` record, nor a final
    rewind to ``rewind_to``, supersedes. Kept for code written against earlier versions; the
    engine works on typed records."""
    typed = [from_json(record) for record in records]
    return [to_json(log) for log in kept_logs(typed, run_id, rewind_to)]
