"""The delivery engine: gets every call off the training thread, into the journal, the
summary and every backend, without letting a backend slow down or break the training loop.

The training thread only appends a record to a bounded queue. One *dispatcher* thread polls
it and takes records in order, appends them to the journal (flushed to the OS at least every
``FLUSH_INTERVAL`` seconds and whenever it runs dry), keeps the run summary and offers each
call to every backend's :class:`~noether.core.trackers.backend_worker.BackendWorker`.

Memory is bounded without making anyone wait: a backend that falls behind (slow or hung) gets
no more calls in memory once its queue is full; its worker later reads the calls it missed
back from the journal. Only without a journal (no output path, or ``journal=False``) does the
producer wait for a full queue to drain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from noether.core.trackers.backend_worker import POLL_INTERVAL, BackendReport, BackendWorker
from noether.core.trackers.journal import FORMAT_VERSION, JournalWriter
from noether.core.trackers.resume import PreviousRun
from noether.core.trackers.run_files import SUMMARY_FILE, write_yaml
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.summary import MetricSummary
from noether.core.trackers.values import Value

if TYPE_CHECKING:
    from noether.core.trackers.base import BaseTracker

logger = logging.getLogger("noether.trackers")
FLUSH_INTERVAL = 0.5


@dataclass(frozen=True)
class DeliverySettings:
    """Limits of the delivery engine (all times in seconds)."""

    #: Calls kept in memory per backend; beyond that a backend reads them from the journal.
    queue_capacity: int = 10_000
    #: How long ``init`` waits for every backend's ``_init``.
    init_timeout: float = 120.0
    #: What ``close(timeout=None)`` and ``flush(timeout=None)`` wait at most.
    close_timeout: float = 30.0
    #: Keep the local journal (needs an output path).
    journal: bool = True


@dataclass(frozen=True)
class DeliveryReport:
    """What reached each backend over a run, returned by ``close()``."""

    status: RunStatus
    backends: tuple[BackendReport, ...]

    @property
    def complete(self) -> bool:
        """True when every backend took every call."""
        return all(report.lost == 0 for report in self.backends)

    def describe(self) -> str:
        """One line per backend that missed calls."""
        lines = []
        for report in self.backends:
            if report.lost:
                parts = [
                    f"{count} {what}"
                    for count, what in (
                        (report.failed, "failed"),
                        (report.undelivered_at_close, "still queued when close timed out"),
                    )
                    if count
                ]
                error = f"; first error: {report.first_error}" if report.first_error else ""
                lines.append(
                    f"{report.backend}: {report.lost} of {report.offered} calls not "
                    f"delivered ({', '.join(parts)}){error}"
                )
        return "\n".join(lines)


class DeliveryEngine:
    """Journal, summary and delivery to the backends of one run."""

    def __init__(
        self,
        backends: Sequence[BaseTracker],
        run: RunInfo,
        settings: DeliverySettings,
        previous: PreviousRun | None = None,
    ) -> None:
        self.run = run
        self.settings = settings
        labels = _labels(backends)
        self.workers = [
            BackendWorker(backend, label, settings.queue_capacity)
            for backend, label in zip(backends, labels, strict=True)
        ]
        directory = run.output_path if settings.journal else None
        self.journal = JournalWriter(directory) if directory is not None else None
        # a resumed run's summary covers what its earlier processes logged too
        self.metrics = previous.metrics if previous is not None else MetricSummary()
        self.user_summary: dict[str, Value] = dict(previous.user_summary) if previous else {}
        self.report: DeliveryReport | None = None
        self._pending: deque[tuple[Any, ...]] = deque()
        self._submitted = self._processed = 0
        self._congested = False
        self._idle = False
        self._journal_failed = False
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="noether-trackers:dispatcher", daemon=True
        )

    # ---- producer side (the tracker's public methods, under its lock) ----------------------

    def start(self) -> list[tuple[BackendWorker, BaseException]]:
        """Start every backend's ``_init`` and the dispatcher; return the backends that failed."""
        if self.journal is not None:
            self._journal_write({"op": "journal", "version": FORMAT_VERSION, "t": time.time()})
            self._journal_write(
                {
                    "op": "init",
                    "t": time.time(),
                    "run_name": self.run.run_name,
                    "run_id": self.run.run_id,
                    "stage_name": self.run.stage_name,
                    "config": self.run.config,
                }
            )
            if self.run.resume_step is not None:
                self._journal_write(
                    {"op": "rewind", "t": time.time(), "step": self.run.resume_step}
                )
        for worker in self.workers:
            worker.offer(("_init", (self.run,)))
            worker.start()
        deadline = time.monotonic() + self.settings.init_timeout
        failures: list[tuple[BackendWorker, BaseException]] = []
        for worker in self.workers:
            if not worker.init_done.wait(max(0.0, deadline - time.monotonic())):
                timeout = self.settings.init_timeout
                failures.append((worker, TimeoutError(f"_init did not return within {timeout}s")))
            elif worker.init_error is not None:
                failures.append((worker, worker.init_error))
        self._dispatcher.start()
        return failures

    def detach(self, worker: BackendWorker) -> None:
        """Stop delivering to ``worker`` (a backend that failed to start)."""
        worker.stop()
        self.workers = [other for other in self.workers if other is not worker]

    def submit(self, record: tuple[Any, ...]) -> None:
        """Queue a record for the dispatcher; waits only while the queues are full."""
        if self._congested or len(self._pending) >= self.settings.queue_capacity:
            self._wait_for_room()
        self._submitted += 1
        self._pending.append(record)

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted call is journaled and taken by every live backend."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._processed >= self._submitted
                and self._idle
                and all(worker.pending() == 0 for worker in self.workers)
            ):
                return True
            time.sleep(0.001)
        return False

    def close(self, status: RunStatus, timeout: float) -> DeliveryReport:
        """Send the summary and ``_close`` to every backend and wait for them, at most
        ``timeout`` seconds; report what was not delivered."""
        deadline = time.monotonic() + timeout
        self.submit(("close", status, deadline))
        self._dispatcher.join(max(0.0, deadline - time.monotonic()) + 0.05)
        if self.report is None:  # the dispatcher itself is stuck (e.g. the journal's disk)
            self.report = DeliveryReport(status, tuple(w.report() for w in self.workers))
        return self.report

    def _wait_for_room(self) -> None:
        capacity = self.settings.queue_capacity
        while self._dispatcher.is_alive():
            self._congested = self.journal is None and any(
                len(worker.queue) >= capacity for worker in self.workers
            )
            if not self._congested and len(self._pending) < capacity:
                return
            time.sleep(0.001)

    # ---- dispatcher thread -------------------------------------------------------------------

    def _dispatch(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                record = self._pending.popleft()
            except IndexError:
                self._flush_journal()
                self._queue_overflows(only_with_room=True)
                self._idle = True
                time.sleep(POLL_INTERVAL)
                self._idle = False
                continue
            try:
                self._handle(record)
            except Exception:  # a bug here must not stop delivery of everything else
                logger.exception("noether-trackers: could not handle %s", record[0])
            self._processed += 1
            if record[0] == "close":
                self._idle = True
                return
            if self.journal is not None and time.monotonic() - last_flush >= FLUSH_INTERVAL:
                self._flush_journal()
                last_flush = time.monotonic()

    def _handle(self, record: tuple[Any, ...]) -> None:
        operation = record[0]
        if operation == "log":
            _, values, step, wall_time = record
            span = self._journal_write(
                {"op": "log", "t": wall_time, "step": step, "values": self._encode(values, step)}
            )
            for key, value in values.items():
                if isinstance(value, int | float):
                    self.metrics.update(key, value)
            self._offer(("_receive_log", (values, step)), span)
        elif operation == "summary":
            _, values, wall_time = record
            span = self._journal_write(
                {"op": "summary", "t": wall_time, "values": self._encode(values, None)}
            )
            self.user_summary.update(values)
            self._offer(("_receive_summary", (values,)), span)
        elif operation == "close":
            self._finish(record[1], record[2])

    def _offer(self, call: tuple[str, tuple[Any, ...]], span: tuple[int, int] | None) -> None:
        """Give ``call`` (journaled at ``span``) to every backend, in memory or as a span."""
        half = self.settings.queue_capacity // 2
        for worker in self.workers:
            if worker.overflow is not None and len(worker.queue) < half:
                self._flush_journal()  # the worker may read the span as soon as it is queued
                worker.queue_overflow(self.journal.path)  # type: ignore[union-attr]
            if worker.has_room() or span is None:
                worker.offer(call)
            else:
                worker.spill(*span)
        if self.journal is None:
            capacity = self.settings.queue_capacity
            self._congested = any(len(worker.queue) >= capacity for worker in self.workers)

    def _queue_overflows(self, *, only_with_room: bool) -> None:
        """Queue every worker's overflow span (when its queue has room, or unconditionally)."""
        half = self.settings.queue_capacity // 2
        waiting = [
            worker
            for worker in self.workers
            if worker.overflow is not None and (not only_with_room or len(worker.queue) < half)
        ]
        if waiting and self.journal is not None:
            self._flush_journal()
            for worker in waiting:
                worker.queue_overflow(self.journal.path)

    def _finish(self, status: RunStatus, deadline: float) -> None:
        summary = {**self.metrics.result(), **self.user_summary}
        self._queue_overflows(only_with_room=False)
        for worker in self.workers:
            worker.offer(("_update_summary", (summary,)))
            worker.offer(("_close", (status,)))
            worker.stop()
        margin = min(0.25, max(0.0, deadline - time.monotonic()) * 0.1)
        for worker in self.workers:
            worker.join(deadline - margin)
        self.report = DeliveryReport(status, tuple(w.report() for w in self.workers))
        if self.journal is not None:
            self._journal_write(
                {
                    "op": "close",
                    "t": time.time(),
                    "status": status,
                    "summary": self._encode(summary, None),
                    "undelivered": {r.backend: r.lost for r in self.report.backends if r.lost},
                }
            )
            try:
                self.journal.close()
            except OSError as error:
                self._journal_failure(error)
        if self.run.output_path is not None:
            write_yaml(self.run.output_path / SUMMARY_FILE, {**summary, "_status": status})
        if not self.report.complete:
            logger.warning(
                "noether-trackers: run %s ended %s; not everything reached every "
                "backend (the journal has it all):\n%s",
                self.run.display_name,
                status,
                self.report.describe(),
            )

    # ---- journal, never allowed to break delivery --------------------------------------------

    def _encode(self, values: dict[str, Value], step: int | None) -> dict[str, Any]:
        if self.journal is None or self._journal_failed:
            return {}
        try:
            return self.journal.encode_values(values, step)
        except OSError as error:
            self._journal_failure(error)
            return {}

    def _journal_write(self, record: dict[str, Any]) -> tuple[int, int] | None:
        """Append ``record``; its byte span, or None without a (working) journal."""
        if self.journal is None or self._journal_failed:
            return None
        try:
            return self.journal.write(record)
        except OSError as error:
            self._journal_failure(error)
            return None

    def _flush_journal(self) -> None:
        if self.journal is None or self._journal_failed or not self.journal.dirty:
            return
        try:
            self.journal.flush()
        except OSError as error:
            self._journal_failure(error)

    def _journal_failure(self, error: OSError) -> None:
        if not self._journal_failed:
            self._journal_failed = True
            logger.error(
                "noether-trackers: the journal %s cannot be written (%s); training "
                "and the backends go on without it",
                self.journal and self.journal.path,
                error,
            )


def _labels(backends: Sequence[BaseTracker]) -> list[str]:
    """Readable, unique names for the backends of one run."""
    names = [type(backend).__name__ for backend in backends]
    return [
        name if names.count(name) == 1 else f"{name}[{index}]" for index, name in enumerate(names)
    ]
