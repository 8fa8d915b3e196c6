"""The thread delivery engine: gets every call off the training thread, into the journal, the
summary and every backend, without letting a backend slow down or break the training loop.

The training thread only appends a record to a queue (:meth:`DeliveryEngine.submit`). One
*dispatcher* thread polls it and takes records in order: it journals each (flushed to the OS
at least every :data:`FLUSH_INTERVAL` seconds and whenever it runs dry), notes it in the run's
summary and offers it to every backend's :class:`~.worker.BackendWorker`, as the back-pressure
policy (:mod:`.backpressure`) places it.

Closing writes ``summary.yaml`` and flushes the journal before it waits for any backend, so a
process killed while a backend is slow to close loses nothing it logged. A second ``close``
(the SIGTERM handler interrupting a slow one) only shortens the deadline and waits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence

from noether.core.trackers._engine.backpressure import BackendQueuePolicy, HandoverGate
from noether.core.trackers._engine.journal_keeper import JournalKeeper
from noether.core.trackers._engine.journal_writer import JournalWriter
from noether.core.trackers._engine.progress import ProgressBoard
from noether.core.trackers._engine.run_summary import RunSummary
from noether.core.trackers._engine.startup import StartFailure
from noether.core.trackers._engine.worker import (
    POLL_INTERVAL,
    PROCESS_POLL_INTERVAL,
    Backend,
    BackendWorker,
    IdleWait,
)
from noether.core.trackers.delivery import DeliveryReport, DeliverySettings
from noether.core.trackers.journal import record_spans
from noether.core.trackers.records import (
    FORMAT_VERSION,
    CloseCall,
    CloseRecord,
    FinalSummary,
    InitRecord,
    JournalHeader,
    LogRecord,
    RewindRecord,
    SummaryRecord,
)
from noether.core.trackers.run_files import JOURNAL_FILE, write_summary
from noether.core.trackers.run_info import RunInfo, RunStatus

logger = logging.getLogger("noether.trackers")
#: The journal is handed to the OS at least this often (seconds) while calls keep coming.
FLUSH_INTERVAL = 0.5


class CatchUp:
    """Where a replacement delivery process takes over: the run's calls its predecessor's
    journal holds from ``session_start`` (a byte offset) on, and what each backend took."""

    def __init__(self, session_start: int | None, durable: Sequence[int], resend_from: int) -> None:
        self.session_start = session_start
        #: Per backend, the calls it took up to its last flush (it gets every later one again).
        self.durable = list(durable)
        #: The first call the training process sends again (it forgot those the journal holds).
        self.resend_from = resend_from
        #: Byte spans of the journaled calls from ``session_start`` on (set when read).
        self.spans: list[tuple[int, int]] = []


class DeliveryEngine:
    """Journal, summary and delivery to the backends of one run, on threads of this process."""

    def __init__(
        self,
        backends: Sequence[tuple[Backend, str]],
        run: RunInfo,
        settings: DeliverySettings,
        previous: RunSummary | None = None,
        *,
        board: ProgressBoard | None = None,
        catch_up: CatchUp | None = None,
        config_paths: Sequence[str | None] | None = None,
    ) -> None:
        """Deliver ``run``'s calls to ``backends`` (each with its label in reports); a resumed
        run's summary starts from ``previous``. Opens (and locks) the journal: raises
        ``JournalLockedError`` when another writer holds it.

        In a delivery process, ``board`` tells the training process how far delivery got;
        ``catch_up`` makes this engine take over from a delivery process that died: its
        backends first get, from the journal, every call they had not durably taken.
        ``config_paths``: per backend, where the YAML configured it (for traces)."""
        self.run = run
        self.settings = settings
        self.board = board
        self.catch_up = catch_up
        directory = run.output_path if settings.journal else None
        if catch_up is not None and directory is not None and catch_up.session_start is not None:
            catch_up.spans = record_spans(directory / JOURNAL_FILE, catch_up.session_start)
        #: Calls of the run this engine's predecessors took care of (0 for the first).
        self.calls_before = (
            max(len(catch_up.spans), catch_up.resend_from) if catch_up is not None else 0
        )
        taken = [
            min(catch_up.durable[index], self.calls_before) if catch_up is not None else 0
            for index in range(len(backends))
        ]
        # in a delivery process (it has a board), calls come in batches: poll less often
        poll = PROCESS_POLL_INTERVAL if board is not None else POLL_INTERVAL
        paths = list(config_paths) if config_paths is not None else [None] * len(backends)
        self.workers = [
            BackendWorker(backend, label, index, board, taken[index], poll, paths[index])
            for index, (backend, label) in enumerate(backends)
        ]
        self.journal = JournalKeeper(
            JournalWriter(directory) if directory is not None else None,
            on_failure=self._read_back_everything,
        )
        # a resumed run's summary covers what its earlier processes logged too
        self.summary = previous or RunSummary.for_directions(run.summary_directions)
        self.queues = BackendQueuePolicy(settings.queue_capacity)
        self.handover = HandoverGate(settings.queue_capacity, settings.handover_timeout)
        self.report: DeliveryReport | None = None
        self._pending: deque[LogRecord | SummaryRecord | CloseCall] = deque()
        self._submitted = self._processed = 0
        self._idle = False
        self._warned_dropping: set[str] = set()
        self._close_submitted = False
        #: When closing must be over (monotonic); a later, shorter close moves it earlier.
        self._deadline = math.inf
        self._session_start: int | None = None
        self._waiting = IdleWait(poll)
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="noether-trackers:dispatcher", daemon=True
        )

    # ---- producer side (the run's public methods, under its lock) -------------------------------

    @property
    def session_start(self) -> int | None:
        """The journal's byte offset where this run's calls of this training process begin
        (None without a journal)."""
        return self._session_start

    def start(self) -> list[StartFailure]:
        """Journal the run's start and start every backend and the dispatcher; return the
        backends that failed to start (or did not within ``init_timeout``)."""
        self.journal.write(JournalHeader(FORMAT_VERSION, time.time()))
        writer = self.journal.writer
        start = self.catch_up.session_start if self.catch_up is not None else None
        if start is None or writer is None or writer.offset < start:
            # the first process of this training process (or a replacement whose predecessor
            # died before its start reached the journal); a replacement otherwise continues
            # its predecessor's part of the run
            self.journal.write(InitRecord.of_run(self.run, time.time()))
            if self.run.resume_step is not None:
                self.journal.write(RewindRecord(self.run.resume_step, time.time()))
            start = writer.offset if writer is not None else None
        self._session_start = start
        for worker in self.workers:
            worker.start(self.run)
            self._queue_catch_up(worker)
        deadline = time.monotonic() + self.settings.init_timeout
        failures: list[StartFailure] = []
        for worker in self.workers:
            if not worker.init_done.wait(max(0.0, deadline - time.monotonic())):
                timeout = self.settings.init_timeout
                error = TimeoutError(f"_init did not return within {timeout}s")
                failures.append(StartFailure.of(worker.index, worker.label, error))
            elif worker.init_error is not None:
                failures.append(StartFailure.of(worker.index, worker.label, worker.init_error))
        self._dispatcher.start()
        return failures

    def _queue_catch_up(self, worker: BackendWorker) -> None:
        """Queue, after its start, the journaled calls ``worker``'s backend had not durably
        taken when the previous delivery process died."""
        if self.catch_up is None or worker.taken >= self.calls_before:
            return
        # one read-back per stretch of adjacent records: a torn line, or the header of the
        # process before, is never read back as a call
        group: list[tuple[int, int]] = []
        for span in [*self.catch_up.spans[worker.taken :], None]:
            if group and (span is None or span[0] != group[-1][1]):
                worker.read_back(self.journal.read_span, group[0][0], group[-1][1], len(group))
                group = []
            if span is not None:
                group.append(span)

    def abandon(self) -> None:
        """Give the journal back (and its lock) without starting: ``init`` failed before."""
        self.journal.abandon()

    def detach(self, index: int) -> None:
        """Stop delivering to backend number ``index`` (one that failed to start)."""
        for worker in self.workers:
            if worker.index == index:
                worker.stop()
        self.workers = [worker for worker in self.workers if worker.index != index]

    def started_backends(self) -> list[Backend]:
        """The backends whose start succeeded."""
        return [worker.backend for worker in self.workers if worker.started]

    def submit(self, record: LogRecord | SummaryRecord) -> None:
        """Queue a record for the dispatcher; waits only as the hand-over gate says."""
        if len(self._pending) >= self.handover.capacity and not self.handover.wait_for_room(
            self._pending.__len__,
            lambda: self._processed,
            self._dispatcher.is_alive,
            self._warn_stalled,
        ):
            return
        self._submitted += 1
        self._pending.append(record)
        self._waiting.wake()  # a system call only for the first call after a pause

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted call is journaled and taken and flushed by every live
        backend."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                worker.flush_soon = True  # as soon as its calls run dry, not at its own pace
            if (
                self._processed >= self._submitted
                and self._idle
                and all(worker.settled() for worker in self.workers)
            ):
                return True
            time.sleep(0.001)
        return False

    def close(self, status: RunStatus, timeout: float) -> DeliveryReport:
        """Send the summary and the close to every backend and wait for them, at most
        ``timeout`` seconds; report what was not delivered.

        Safe to call again while a close is under way (from a signal handler that interrupted
        it): the earlier status stays, the deadline becomes the earlier of the two.
        """
        self._deadline = min(self._deadline, time.monotonic() + timeout)
        if not self._close_submitted:
            # appended before the flag is set: a handler interrupting in between only adds a
            # second close, which the dispatcher never reaches
            self._pending.append(CloseCall(status))
            self._submitted += 1
            self._close_submitted = True
            self._waiting.wake()
        self._dispatcher.join(max(0.0, self._deadline - time.monotonic()) + 0.05)
        if self.report is None:  # the dispatcher itself is stuck (e.g. the journal's disk)
            self.report = self._report(status)
        return self.report

    # ---- dispatcher thread ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                record = self._pending.popleft()
            except IndexError:
                self.journal.flush()
                self._publish_progress()
                self._read_back_where_room()
                self._idle = True
                self._waiting.wait(lambda: bool(self._pending))
                self._idle = False
                continue
            self._waiting.found_work()
            try:
                self._handle(record)
            except Exception:  # a bug here must not stop delivery of everything else
                logger.exception("noether-trackers: could not handle %s", type(record).__name__)
            self._processed += 1
            if isinstance(record, CloseCall):
                self._idle = True
                return
            if time.monotonic() - last_flush >= FLUSH_INTERVAL:
                self.journal.flush()
                last_flush = time.monotonic()
            self._publish_progress()

    def _publish_progress(self) -> None:
        if self.board is not None:
            self.board.kept = self.calls_before + self.journal.kept

    def _handle(self, record: LogRecord | SummaryRecord | CloseCall) -> None:
        if isinstance(record, CloseCall):
            self._finish(record.status)
            return
        span = self.journal.write(record)
        if isinstance(record, LogRecord):
            self.summary.note_log(record)
        else:
            self.summary.note_summary(record.values)
        # every worker here started: init() detached or closed on those that did not
        for worker in self.workers:
            if self.queues.ready_to_read_back(worker):
                self.journal.flush()  # the worker may read the span as soon as it is queued
                worker.queue_overflow(self.journal.read_span)
            if self.queues.place(worker, record, span):
                self._warn_dropping(worker)

    def _read_back_where_room(self) -> None:
        """Queue the spilled span of every worker that has room to read it back."""
        ready = [worker for worker in self.workers if self.queues.ready_to_read_back(worker)]
        if ready:
            self.journal.flush()
            for worker in ready:
                worker.queue_overflow(self.journal.read_span)

    def _read_back_everything(self) -> None:
        """Queue every spilled span now: the journal stopped (or the run ends), so nothing
        more can be spilled and nobody should wait for room."""
        for worker in self.workers:
            if worker.overflow is not None:
                worker.queue_overflow(self.journal.read_span)

    def _finish(self, status: RunStatus) -> None:
        summary = self.summary.result()
        # What needs no backend goes first: a process killed while a backend is slow to
        # close keeps every call in the journal and its summary.yaml.
        self.journal.flush()
        if self.run.output_path is not None:
            write_summary(self.run.output_path, summary, status)
        self._read_back_everything()  # the journal was flushed above: spans read back whole
        started = [worker for worker in self.workers if worker.started]
        for worker in started:
            worker.offer(FinalSummary(summary))
            worker.offer(CloseCall(status))
        for worker in self.workers:
            worker.stop()
        self._wait_for(started)
        self.report = self._report(status)
        undelivered = {r.backend: r.lost for r in self.report.backends if r.lost}
        self.journal.write(CloseRecord(status, summary, undelivered, time.time()))
        self.journal.close()
        self._publish_progress()
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
            self.journal.error,
            self.handover.dropped,
        )

    def _where_the_rest_is(self) -> str:
        if self.journal.writer is None:
            return "not everything reached every backend, and no journal was kept"
        if self.journal.error is not None:
            return (
                "not everything was kept: the journal stopped being written, so calls not "
                "delivered are lost"
            )
        return "not everything reached every backend (the journal has it all)"

    def _warn_stalled(self) -> None:
        logger.error(
            "noether-trackers: the delivery of run %s made no progress for %ss with %d calls "
            "waiting (is the disk of %s hanging?); dropping calls until it moves again",
            self.run.display_name,
            self.settings.handover_timeout,
            len(self._pending),
            self.journal.path,
        )

    def _warn_dropping(self, worker: BackendWorker) -> None:
        if worker.label not in self._warned_dropping:
            self._warned_dropping.add(worker.label)
            logger.warning(
                "noether-trackers: backend %s is %d calls behind and run %s has no working "
                "journal to keep the rest in; dropping its oldest calls (counted at close)",
                worker.label,
                self.queues.capacity,
                self.run.display_name,
            )
