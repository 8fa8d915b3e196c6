"""The delivery engine: gets every call off the training thread, into the journal, the
summary and every backend, without letting a backend slow down or break the training loop.

The training thread only appends a record to a queue. One *dispatcher* thread polls it and
takes records in order, appends them to the journal (flushed to the OS at least every
``FLUSH_INTERVAL`` seconds and whenever it runs dry), keeps the run summary and offers each
call to every backend's :class:`~noether.core.trackers.backend_worker.BackendWorker`.

Memory is bounded without making anyone wait on a backend: a backend that falls behind (slow
or hung) gets no more calls in memory once its queue is full; its worker later reads the calls
it missed back from the journal. Without a working journal (no output path, ``journal=False``,
or a journal that could not be written) the oldest queued call of that backend is dropped
instead, counted in the report.

The training thread waits only when it hands over calls faster than the dispatcher can
journal them, with ``queue_capacity`` calls already waiting: then it waits for the dispatcher
(the journal's own pace), and if the dispatcher makes no progress for ``handover_timeout``
seconds (its disk hangs) the call is dropped and counted instead.

Closing writes ``summary.yaml`` and flushes the journal before it waits for any backend, so a
process killed while a backend is slow to close loses nothing it logged. A second ``close``
(the SIGTERM handler interrupting a slow one) only shortens the deadline and waits.
"""

from __future__ import annotations

import contextlib
import logging
import math
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
    #: How long ``log()`` waits for a dispatcher that makes no progress at all (its journal's
    #: disk hangs) before it drops the call, with ``queue_capacity`` calls already waiting.
    handover_timeout: float = 1.0


@dataclass(frozen=True)
class DeliveryReport:
    """What reached each backend over a run, returned by ``close()``."""

    status: RunStatus
    backends: tuple[BackendReport, ...]
    #: Why the journal stopped being written, if it did (e.g. the disk filled up).
    journal_error: str | None = None
    #: Calls ``log()`` dropped because the dispatcher was stalled for ``handover_timeout``.
    dropped_at_handover: int = 0

    @property
    def complete(self) -> bool:
        """True when every backend took every call."""
        return self.dropped_at_handover == 0 and all(r.lost == 0 for r in self.backends)

    def describe(self) -> str:
        """One line per backend that missed calls, and one for the journal if it failed."""
        lines = []
        for report in self.backends:
            if report.lost:
                parts = [
                    f"{count} {what}"
                    for count, what in (
                        (report.failed, "failed"),
                        (report.dropped, "dropped: it fell behind with no journal to spill to"),
                        (report.undelivered_at_close, "still queued when close timed out"),
                    )
                    if count
                ]
                error = f"; first error: {report.first_error}" if report.first_error else ""
                lines.append(
                    f"{report.backend}: {report.lost} of {report.offered} calls not "
                    f"delivered ({', '.join(parts)}){error}"
                )
        if self.dropped_at_handover:
            lines.append(
                f"{self.dropped_at_handover} calls dropped before delivery: the dispatcher made "
                "no progress (its journal's disk did not answer)"
            )
        if self.journal_error:
            lines.append(f"the journal could not be written: {self.journal_error}")
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
        self.metrics = (
            previous.metrics if previous is not None else MetricSummary(run.summary_directions)
        )
        self.user_summary: dict[str, Value] = dict(previous.user_summary) if previous else {}
        self.report: DeliveryReport | None = None
        self._pending: deque[tuple[Any, ...]] = deque()
        self._submitted = self._processed = 0
        self._dropped_at_handover = 0
        # ``_processed`` when log() last gave up waiting for a stalled dispatcher
        self._stalled_at = -1
        self._idle = False
        self._journal_error: str | None = None
        self._warned_dropping: set[str] = set()
        self._close_submitted = False
        #: When closing must be over (monotonic); a later, shorter close moves it earlier.
        self._deadline = math.inf
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
                    "summary_directions": self.run.summary_directions.to_pairs(),
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

    def abandon(self) -> None:
        """Give the journal back (and its lock) without starting: ``init`` failed before."""
        if self.journal is not None:
            with contextlib.suppress(OSError):
                self.journal.close()

    def detach(self, worker: BackendWorker) -> None:
        """Stop delivering to ``worker`` (a backend that failed to start)."""
        worker.stop()
        self.workers = [other for other in self.workers if other is not worker]

    def submit(self, record: tuple[Any, ...]) -> None:
        """Queue a record for the dispatcher; see the module doc for when this waits."""
        if len(self._pending) >= self.settings.queue_capacity and not self._wait_for_room():
            self._dropped_at_handover += 1
            return
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
        ``timeout`` seconds; report what was not delivered.

        Safe to call again while a close is under way (from a signal handler that interrupted
        it): the earlier status stays, the deadline becomes the earlier of the two.
        """
        self._deadline = min(self._deadline, time.monotonic() + timeout)
        if not self._close_submitted:
            # appended before the flag is set: a handler interrupting in between only adds a
            # second close record, which the dispatcher never reaches
            self._pending.append(("close", status))
            self._submitted += 1
            self._close_submitted = True
        self._dispatcher.join(max(0.0, self._deadline - time.monotonic()) + 0.05)
        if self.report is None:  # the dispatcher itself is stuck (e.g. the journal's disk)
            self.report = self._report(status)
        return self.report

    def _wait_for_room(self) -> bool:
        """Wait while the dispatcher has ``queue_capacity`` records to take; False when it
        made no progress for ``handover_timeout`` (the caller drops the record)."""
        capacity = self.settings.queue_capacity
        if self._processed == self._stalled_at:
            return False  # still stalled since the last call gave up: do not wait again
        progress, since = self._processed, time.monotonic()
        while len(self._pending) >= capacity and self._dispatcher.is_alive():
            if self._processed != progress:
                progress, since = self._processed, time.monotonic()
            elif time.monotonic() - since >= self.settings.handover_timeout:
                self._stalled_at = progress
                if self._dropped_at_handover == 0:
                    logger.error(
                        "noether-trackers: the delivery of run %s made no progress for %ss "
                        "with %d calls waiting (is the disk of %s hanging?); dropping calls "
                        "until it moves again",
                        self.run.display_name,
                        self.settings.handover_timeout,
                        len(self._pending),
                        self.journal and self.journal.path,
                    )
                return False
            time.sleep(0.0005)
        return True

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
            self._finish(record[1])

    def _offer(self, call: tuple[str, tuple[Any, ...]], span: tuple[int, int] | None) -> None:
        """Give ``call`` (journaled at ``span``) to every backend: in memory, as a journal
        span, or (with no journal to spill to) in memory in place of the oldest queued call."""
        half = self.settings.queue_capacity // 2
        # every worker here started: init() detached or closed on those that did not
        for worker in self.workers:
            if worker.overflow is not None and len(worker.queue) < half:
                self._flush_journal()  # the worker may read the span as soon as it is queued
                self._queue_overflow(worker)
            if worker.has_room():
                worker.offer(call)
            elif span is not None:
                worker.spill(*span)
            elif worker.offer_dropping_oldest(call):
                self._warn_dropping(worker)

    def _queue_overflows(self, *, only_with_room: bool) -> None:
        """Queue every worker's overflow span (when its queue has room, or unconditionally)."""
        half = self.settings.queue_capacity // 2
        waiting = [
            worker
            for worker in self.workers
            if worker.overflow is not None and (not only_with_room or len(worker.queue) < half)
        ]
        if waiting:
            self._flush_journal()
            for worker in waiting:
                self._queue_overflow(worker)

    def _queue_overflow(self, worker: BackendWorker) -> None:
        assert self.journal is not None  # spans exist only with a journal
        worker.queue_overflow(self.journal.records)

    def _finish(self, status: RunStatus) -> None:
        summary = {**self.metrics.result(), **self.user_summary}
        # What needs no backend goes first: a process killed while a backend is slow to
        # close keeps every call in the journal and its summary.yaml.
        self._flush_journal()
        self._write_summary_file(summary, status)
        self._queue_overflows(only_with_room=False)
        started = self._started_workers()
        for worker in started:
            worker.offer(("_update_summary", (summary,)))
            worker.offer(("_close", (status,)))
        for worker in self.workers:
            worker.stop()
        self._wait_for(started)
        self.report = self._report(status)
        if self.journal is not None and self._journal_error is None:
            self._journal_write(
                {
                    "op": "close",
                    "t": time.time(),
                    "status": status,
                    "summary": self._encode(summary, None),
                    "undelivered": {r.backend: r.lost for r in self.report.backends if r.lost},
                }
            )
        if self.journal is not None:
            try:
                self.journal.close()
            except OSError as error:
                self._journal_failure(error)
            self.report = self._report(status)
        if not self.report.complete or self.report.journal_error:
            logger.warning(
                "noether-trackers: run %s ended %s; %s:\n%s",
                self.run.display_name,
                status,
                self._where_the_rest_is(),
                self.report.describe(),
            )

    def _wait_for(self, workers: Sequence[BackendWorker]) -> None:
        """Wait for ``workers`` to end, until the deadline (which a second close may move)."""
        while any(worker.alive for worker in workers):
            left = self._deadline - time.monotonic()
            margin = min(0.25, max(0.0, left) * 0.1)  # time left to write the close record
            if left - margin <= 0:
                return
            time.sleep(min(0.01, left - margin))

    def _report(self, status: RunStatus) -> DeliveryReport:
        return DeliveryReport(
            status,
            tuple(worker.report() for worker in self.workers),
            self._journal_error,
            self._dropped_at_handover,
        )

    def _where_the_rest_is(self) -> str:
        if self.journal is None:
            return "not everything reached every backend, and no journal was kept"
        if self._journal_error is not None:
            return (
                "not everything was kept: the journal stopped being written, so calls not "
                "delivered are lost"
            )
        return "not everything reached every backend (the journal has it all)"

    def _write_summary_file(self, summary: dict[str, Value], status: RunStatus) -> None:
        if self.run.output_path is None:
            return
        # media set as summary values have no YAML form: the file names their type
        plain = {
            key: value if isinstance(value, int | float | str) else f"<{type(value).__name__}>"
            for key, value in summary.items()
        }
        try:
            write_yaml(self.run.output_path / SUMMARY_FILE, {**plain, "_status": status})
        except Exception as error:  # a full disk must not keep the backends from closing
            logger.error("noether-trackers: could not write %s: %s", SUMMARY_FILE, error)

    def _started_workers(self) -> list[BackendWorker]:
        return [worker for worker in self.workers if worker.started]

    def _warn_dropping(self, worker: BackendWorker) -> None:
        if worker.label not in self._warned_dropping:
            self._warned_dropping.add(worker.label)
            logger.warning(
                "noether-trackers: backend %s is %d calls behind and run %s has no working "
                "journal to keep the rest in; dropping its oldest calls (counted at close)",
                worker.label,
                worker.capacity,
                self.run.display_name,
            )

    # ---- journal, never allowed to break delivery --------------------------------------------

    def _encode(self, values: dict[str, Value], step: int | None) -> dict[str, Any]:
        if self.journal is None or self._journal_error is not None:
            return {}
        try:
            return self.journal.encode_values(values, step)
        except OSError as error:
            self._journal_failure(error)
            return {}

    def _journal_write(self, record: dict[str, Any]) -> tuple[int, int] | None:
        """Append ``record``; its byte span, or None without a (working) journal."""
        if self.journal is None or self._journal_error is not None:
            return None
        try:
            return self.journal.write(record)
        except OSError as error:
            self._journal_failure(error)
            return None

    def _flush_journal(self) -> None:
        if self.journal is None or self._journal_error is not None or not self.journal.dirty:
            return
        try:
            self.journal.flush()
        except OSError as error:
            self._journal_failure(error)

    def _journal_failure(self, error: OSError) -> None:
        """Stop journaling; hand every backend's overflow to it now (the writer keeps what it
        could not write in memory), since from here on calls cannot be spilled."""
        if self._journal_error is not None or self.journal is None:
            return
        self._journal_error = f"{type(error).__name__}: {error}"
        logger.error(
            "noether-trackers: the journal %s cannot be written (%s); training and the "
            "backends go on without it",
            self.journal.path,
            error,
        )
        with contextlib.suppress(OSError):  # what does not make it stays readable in memory
            self.journal.flush()
        for worker in self.workers:
            self._queue_overflow(worker)


def _labels(backends: Sequence[BaseTracker]) -> list[str]:
    """Readable, unique names for the backends of one run."""
    names = [type(backend).__name__ for backend in backends]
    return [
        name if names.count(name) == 1 else f"{name}[{index}]" for index, name in enumerate(names)
    ]
