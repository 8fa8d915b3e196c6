"""The run's summary as it grows: the best and last value of every metric, and the values the
user set. The delivery engine keeps it for the running process; :func:`earlier_part` rebuilds it
from the journal when a run resumes, so that the summary covers the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from noether.core.trackers.records import (
    InitRecord,
    LogRecord,
    Record,
    RewindRecord,
    SummaryRecord,
    UnknownRecord,
)
from noether.core.trackers.summary import MetricSummary, SummaryDirections
from noether.core.trackers.values import Value


@dataclass
class RunSummary:
    """Best and last value of every logged metric, and the summary values set by hand."""

    metrics: MetricSummary = field(default_factory=MetricSummary)
    user_summary: dict[str, Value] = field(default_factory=dict)
    #: The last step logged (None before the first).
    last_step: int | None = None

    @classmethod
    def for_directions(cls, directions: SummaryDirections) -> RunSummary:
        """An empty summary whose metrics follow ``directions``."""
        return cls(MetricSummary(directions))

    def note_log(self, record: LogRecord) -> None:
        """Take the numbers of a logged record into account (the dispatcher calls this for
        every record: exact types, since logged values are normalised and bools are not
        numbers here)."""
        update = self.metrics.update
        for key, value in record.values.items():
            if type(value) is float or type(value) is int:
                update(key, value)

    def note_summary(self, values: Mapping[str, Value]) -> None:
        """Take values set with ``set_summary``/``update_summary``."""
        self.user_summary.update(values)

    def result(self) -> dict[str, Value]:
        """The end-of-run summary: ``key/min`` or ``key/max``, ``key/last``, and the values
        set by hand (which win)."""
        return {**self.metrics.result(), **self.user_summary}


def records_of_run(
    records: Iterable[Record | UnknownRecord], run_id: str | None
) -> Iterator[Record | UnknownRecord]:
    """The records that belong to run ``run_id`` (every record when it is None): those after
    an ``init`` record of that id, up to the next ``init``."""
    current: str | None = None
    for record in records:
        if isinstance(record, InitRecord):
            current = record.run_id
        if run_id is None or current == run_id:
            yield record


def kept_logs(
    records: Iterable[Record | UnknownRecord],
    run_id: str | None = None,
    rewind_to: int | None = None,
) -> list[LogRecord]:
    """The log records (of ``run_id``, or of every run) that no later rewind record, nor a
    final rewind to ``rewind_to``, supersedes."""
    logs: list[LogRecord] = []
    for record in records_of_run(records, run_id):
        if isinstance(record, LogRecord):
            logs.append(record)
        elif isinstance(record, RewindRecord):
            logs = [log for log in logs if log.step < record.step]
    if rewind_to is not None:
        logs = [log for log in logs if log.step < rewind_to]
    return logs


def earlier_part(
    records: list[Record | UnknownRecord],
    run_id: str,
    rewind_to: int | None,
    directions: SummaryDirections,
) -> RunSummary:
    """The summary of what earlier processes of run ``run_id`` logged and kept, as journaled in
    ``records`` (values not decoded: media set as summary values are left out)."""
    summary = RunSummary.for_directions(directions)
    for log in kept_logs(records, run_id, rewind_to):
        summary.note_log(log)
        last = summary.last_step
        summary.last_step = log.step if last is None else max(last, log.step)
    for record in records_of_run(records, run_id):  # set by hand: kept whatever the rewind
        if isinstance(record, SummaryRecord):
            summary.note_summary(
                {k: v for k, v in record.values.items() if isinstance(v, int | float | str)}
            )
    return summary
