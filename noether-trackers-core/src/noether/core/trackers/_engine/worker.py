"""One backend's delivery thread: its calls, in order, off the training thread.

A worker never lets an exception out: whatever a backend raises (``SystemExit`` and other
``BaseException`` included) counts as a failure of that backend, the first one logged with its
traceback. A backend whose start failed gets no further calls.

Its queue holds calls (:data:`~noether.core.trackers.records.Call`) in memory; the dispatcher
decides, by the back-pressure policy (:mod:`.backpressure`), whether a call goes there, into a
journal span the worker reads back later (:class:`~noether.core.trackers.records.JournalSpan`),
or replaces the oldest queued call.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from typing import ClassVar, Protocol

from noether.core.trackers._engine.progress import ProgressBoard
from noether.core.trackers.delivery import BackendReport
from noether.core.trackers.records import (
    Call,
    CloseCall,
    FinalSummary,
    JournalSpan,
    LogRecord,
    StartCall,
    SummaryRecord,
)
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.tracing import tracing
from noether.core.trackers.values import Value

logger = logging.getLogger("noether.trackers")

#: How often an idle worker (or the idle dispatcher) looks for new calls. Polling instead of
#: being woken keeps ``log()`` free of system calls and thread switches.
POLL_INTERVAL = 0.005
#: The same in a delivery process, where calls come in batches from the sender (every 20 ms)
#: and every look costs a core the training process may need.
PROCESS_POLL_INTERVAL = 0.02
#: After this long without calls (seconds), a thread dozes instead ...
DOZE_AFTER_SECONDS = 0.1
#: ... waking this often (seconds), or at once when a call comes (:meth:`IdleWait.wake`).
DOZE_INTERVAL = 0.5
#: While calls keep coming, a backend flushes at most this often (seconds): a flush may cost
#: a write or a database commit. It also flushes when its calls pause, and when asked to.
FLUSH_PERIOD = 0.5


class IdleWait:
    """How a consumer thread waits for work: it polls while calls come (a producer then does
    nothing to wake it), and dozes once none came for a while, so that an idle run costs its
    process a wake-up every :data:`DOZE_INTERVAL`, not 200 a second. A producer that finds
    it dozing wakes it (a system call, once per idle spell)."""

    def __init__(self, poll_interval: float = POLL_INTERVAL) -> None:
        """Poll every ``poll_interval`` seconds while calls come."""
        self._event = threading.Event()
        self._poll_interval = poll_interval
        self._doze_after = max(1, round(DOZE_AFTER_SECONDS / poll_interval))
        self._empty_looks = 0
        self.dozing = False

    @property
    def about_to_doze(self) -> bool:
        """Whether the next empty look dozes (no call came for a while)."""
        return self._empty_looks >= self._doze_after - 1

    def found_work(self) -> None:
        """The consumer found something to do: poll again."""
        self._empty_looks = 0

    def wait(self, has_work: Callable[[], bool]) -> None:
        """The consumer found nothing: poll, or doze until woken or :data:`DOZE_INTERVAL`."""
        self._empty_looks += 1
        if self._empty_looks < self._doze_after:
            time.sleep(self._poll_interval)
            return
        self._event.clear()
        self.dozing = True
        if not has_work():  # looked again after saying so: a producer either saw it or not
            self._event.wait(DOZE_INTERVAL)
        self.dozing = False

    def wake(self) -> None:
        """A producer added work: wake the consumer if it dozes."""
        if self.dozing:
            self._event.set()


class Backend(Protocol):
    """What the engine needs of a backend: the delivery entry points of
    :class:`~noether.core.trackers.base.BaseTracker` (given to the engine, never imported by
    it, so that the backend contract sits on top of the engine)."""

    stores_nothing: ClassVar[bool]

    def _receive_start(self, run: RunInfo) -> None: ...

    def _receive_log(
        self, values: dict[str, Value], step: int, wall_time: float | None = None
    ) -> None: ...

    def _receive_summary(self, values: dict[str, Value]) -> None: ...

    def _update_summary(self, values: dict[str, Value]) -> None: ...

    def _close(self, status: RunStatus) -> None: ...

    def _flush(self) -> None: ...

    def run_location(self) -> RunLocation | None: ...


class BackendWorker:
    """Runs one backend's calls in order on a thread of its own.

    It counts the run's calls (``log`` and summary) the backend took, failed or lost, in order
    (:attr:`taken`), and lets the backend ``_flush`` whenever its queue runs dry; the count at
    the last flush goes to the progress board, if the run has one (a delivery process).
    """

    def __init__(
        self,
        backend: Backend,
        label: str,
        index: int = 0,
        board: ProgressBoard | None = None,
        taken: int = 0,
        poll_interval: float = POLL_INTERVAL,
        config_path: str | None = None,
    ) -> None:
        """Deliver to ``backend`` (``label`` in reports; ``index``: its place in the run, and
        on ``board``); ``taken``: calls of the run it took before (a replacement delivery
        process); ``poll_interval``: how often it looks for calls while they come;
        ``config_path``: where the YAML configured it (``tracker[1]``), for traces."""
        self.backend = backend
        self.label = label
        self.index = index
        self.board = board
        #: The run's calls this backend took (delivered, failed or lost), in order.
        self.taken = taken
        #: :attr:`taken` when the backend last flushed.
        self.flushed_at = taken
        #: Set to have the backend flush as soon as its calls run dry (``flush()``).
        self.flush_soon = False
        self._last_flush = time.monotonic()
        if board is not None:
            board.set_durable(index, taken)
        self.queue: deque[Call] = deque()
        #: Journal span ``[start, end, calls]`` not yet queued; owned by the dispatcher thread.
        self.overflow: list[int] | None = None
        self.offered = self.completed = self.failed = self.dropped = 0
        self.first_error: str | None = None
        self.init_error: BaseException | None = None
        self.init_done = threading.Event()
        #: Set once the backend's ``_close`` ran: it gets no further call, ``_flush`` included.
        self.closed = False
        self._stopping = False
        self._idle = IdleWait(poll_interval)
        # tracing is decided here, once: a worker that does not trace calls deliver() as is
        self._tracer = CallTracer(label, backend, config_path) if tracing() else None
        self._deliver = self._tracer.deliver if self._tracer is not None else deliver
        self._thread = threading.Thread(
            target=self._run, name=f"noether-trackers:{label}", daemon=True
        )

    @property
    def started(self) -> bool:
        """Whether the backend's start returned without error (it gets calls only then)."""
        return self.init_done.is_set() and self.init_error is None

    def start(self, run: RunInfo) -> None:
        """Start the thread; its first call starts the backend's run."""
        if self._tracer is not None:
            self._tracer.run_name = run.display_name
        self.offer(StartCall(run))
        self._thread.start()

    def offer(self, call: Call) -> None:
        """Queue ``call`` in memory."""
        self.offered += 1
        self.queue.append(call)
        self._idle.wake()

    def drop_oldest(self) -> bool:
        """Drop the oldest queued call (there is no journal to spill to); True if one was."""
        try:
            call = self.queue.popleft()  # the worker may take it first
        except IndexError:
            return False
        # a journal span read back later stands for all the calls it holds
        self.dropped += call.calls if isinstance(call, JournalSpan) else 1
        return True

    def spill(self, start: int, end: int) -> None:
        """Note that the call journaled at ``[start, end)`` is for this backend too."""
        self.offered += 1
        if self.overflow is None:
            self.overflow = [start, end, 1]
        else:
            self.overflow[1] = end
            self.overflow[2] += 1

    def queue_overflow(self, read: JournalSpanReader) -> None:
        """Queue the overflow span for reading back through ``read``."""
        if self.overflow is not None:
            start, end, calls = self.overflow
            self.overflow = None
            self.queue.append(JournalSpan(read, start, end, calls))
            self._idle.wake()

    def read_back(self, read: JournalSpanReader, start: int, end: int, calls: int) -> None:
        """Queue the ``calls`` journaled between byte offsets ``start`` and ``end``."""
        self.offered += calls
        self.queue.append(JournalSpan(read, start, end, calls))
        self._idle.wake()

    def pending(self) -> int:
        """Calls queued, spilled or running."""
        return self.offered - self.completed - self.dropped

    def settled(self) -> bool:
        """Whether every call offered is taken and flushed (or the backend is not running)."""
        return self.pending() == 0 and (
            self.flushed_at == self.taken or not self.started or self.closed
        )

    def stop(self) -> None:
        """Let the thread end once its queue is empty."""
        self._stopping = True
        self._idle.wake()

    @property
    def alive(self) -> bool:
        """Whether the thread still runs (it ends after :meth:`stop` and an empty queue)."""
        return self._thread.is_alive()

    def report(self) -> BackendReport:
        """The counts so far; calls still pending count as undelivered."""
        return BackendReport(
            self.label,
            self.offered,
            self.completed - self.failed,
            self.failed,
            self.pending(),
            self.first_error,
            self.dropped,
        )

    def _run(self) -> None:
        while True:
            try:
                call = self.queue.popleft()
            except IndexError:
                if (
                    self.flushed_at != self.taken
                    and self.started
                    and not self.closed
                    and self._flush_due()
                ):
                    self._flush()
                if self._stopping:
                    # stop() comes after the last offer: a call queued meanwhile is still due
                    if self.queue:
                        continue
                    return
                self._idle.wait(lambda: bool(self.queue) or self._stopping)
                continue
            self._idle.found_work()
            if self.init_error is not None:
                self.completed += 1  # a backend that failed to start gets no further calls
                self.taken += _calls_of_run(call)
            elif isinstance(call, JournalSpan):
                self._read_back(call)
            else:
                self._call(call)

    def _call(self, call: Call) -> None:
        # BaseException: a backend's SystemExit must not end this thread silently; whatever
        # a backend raises is that backend's failure, never the training loop's.
        try:
            self._deliver(self.backend, call)
            if isinstance(call, CloseCall):
                self._closed_durably()
        except BaseException as error:
            self._record_failure(call, error)
        finally:
            if isinstance(call, CloseCall):
                self.closed = True
            self.completed += 1
            if isinstance(call, LogRecord | SummaryRecord):
                self.taken += 1
            elif isinstance(call, StartCall):
                self.init_done.set()

    def _flush_due(self) -> bool:
        return (
            self.flush_soon
            or self._stopping
            or self._idle.about_to_doze
            or time.monotonic() - self._last_flush >= FLUSH_PERIOD
        )

    def _closed_durably(self) -> None:
        """A ``_close`` that returned has kept everything the backend took (its contract)."""
        self.flushed_at = self.taken
        if self.board is not None:
            self.board.set_durable(self.index, self.taken)

    def _flush(self) -> None:
        taken = self.taken
        self.flush_soon = False
        self._last_flush = time.monotonic()
        try:
            if self._tracer is None:
                self.backend._flush()
            else:
                self._tracer.flush(self.backend)
        except BaseException as error:  # the calls stay "not durable": given again if need be
            self._record_failure(_FLUSH, error, 0)
            return
        self.flushed_at = taken
        if self.board is not None:
            self.board.set_durable(self.index, taken)

    def _read_back(self, span: JournalSpan) -> None:
        replayed = 0
        try:
            for record in span.read(span.start, span.end):
                replayed += 1
                self._call(record)
        except Exception as error:  # an unreadable journal: the rest of the span is lost
            self._record_failure(span, error, span.calls - replayed)
        else:
            if replayed < span.calls:  # records the reader had to skip
                missing = span.calls - replayed
                skipped = ValueError(f"{missing} journaled calls could not be read back")
                self._record_failure(span, skipped, missing)
        self.completed += max(0, span.calls - replayed)
        self.taken += max(0, span.calls - replayed)

    def _record_failure(self, call: Call | None, error: BaseException, calls: int = 1) -> None:
        if isinstance(call, StartCall):
            self.init_error = error
            return
        self.failed += calls
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"
            logger.error(
                "tracker backend %s failed in %s; training goes on, further failures are only "
                "counted and summarised at close:\n%s",
                self.label,
                _METHOD_NAMES[type(call)] if call is not None else "_flush",
                "".join(traceback.format_exception(error)).rstrip(),
            )


#: The "call" of a failed ``_flush``, for its report.
_FLUSH = None


def _calls_of_run(call: Call) -> int:
    """How many of the run's calls ``call`` stands for."""
    if isinstance(call, JournalSpan):
        return call.calls
    return 1 if isinstance(call, LogRecord | SummaryRecord) else 0


class JournalSpanReader(Protocol):
    """Reads the calls journaled between two byte offsets back."""

    def __call__(self, start: int, end: int) -> Iterator[LogRecord | SummaryRecord]: ...


def deliver(backend: Backend, call: Call) -> None:
    """Hand one call to ``backend``'s entry point for it (a log call with the wall time of
    the user's ``log()``, which the record carries from the training process or the
    journal)."""
    if isinstance(call, LogRecord):
        backend._receive_log(call.values, call.step, call.t)
    elif isinstance(call, SummaryRecord):
        backend._receive_summary(call.values)
    elif isinstance(call, StartCall):
        backend._receive_start(call.run)
    elif isinstance(call, FinalSummary):
        backend._update_summary(call.values)
    elif isinstance(call, CloseCall):
        backend._close(call.status)
    else:
        raise TypeError(f"not a call for a backend: {call!r}")


#: What a failure report calls each call: the backend method that failed.
_METHOD_NAMES: dict[type, str] = {
    StartCall: "_init",
    LogRecord: "_log",
    SummaryRecord: "_update_summary",
    FinalSummary: "_update_summary",
    CloseCall: "_close",
    JournalSpan: "reading back the journal",
}


class CallTracer:
    """Writes one line to stderr for every call a worker makes of its backend
    (``NOETHER_TRACKERS_TRACE=1``): the process, the run, the backend (its label, class and,
    when the run was given it, where the YAML configured it), the method, the step of a
    ``_log``, how long the call took, and what it raised, e.g.::

        noether-trackers trace: pid 4242 run demo: TensorboardTracker
        (noether_trackers_tensorboard.tracker.TensorboardTracker, tracker[0]) _log step=3: 0.061 ms

    (one line each). The lines go to ``sys.stderr`` directly, not through ``logging``, as the hook
    trace does: they must show whatever the program's logging configuration, and a delivery
    process writes them to the standard error it shares with the training process (a child
    inherits it), so they reach the same terminal without a round trip over the socket.
    """

    def __init__(self, label: str, backend: Backend, config_path: str | None = None) -> None:
        """Trace the calls of ``backend``, called ``label`` in the run's reports and
        configured at ``config_path`` of the YAML (None: not known)."""
        kind = type(backend)
        where = f", {config_path}" if config_path else ""
        self.backend_name = f"{label} ({kind.__module__}.{kind.__qualname__}{where})"
        #: The run's display name, once the worker starts.
        self.run_name: str | None = None

    def deliver(self, backend: Backend, call: Call) -> None:
        """:func:`deliver` ``call`` to ``backend``, traced."""
        self._traced(lambda: deliver(backend, call), _traced_method(call))

    def flush(self, backend: Backend) -> None:
        """The backend's ``_flush``, traced."""
        self._traced(backend._flush, "_flush")

    def _traced(self, function: Callable[[], object], method: str) -> None:
        outcome = ""
        start = time.perf_counter()
        try:
            function()
        except BaseException as error:
            outcome = f", raised {type(error).__name__}"
            raise
        finally:
            took = (time.perf_counter() - start) * 1000
            run = f" run {self.run_name}" if self.run_name is not None else ""
            line = (
                f"noether-trackers trace: pid {os.getpid()}{run}: {self.backend_name} "
                f"{method}: {took:.3f} ms{outcome}\n"
            )
            try:
                sys.stderr.write(line)  # one write per line: lines of several threads stay whole
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):  # no stderr (closed, or None)
                pass


def _traced_method(call: Call) -> str:
    """The backend method ``call`` ends in, as a trace names it (with the step of a log)."""
    if isinstance(call, LogRecord):
        return f"_log step={call.step}"
    if isinstance(call, SummaryRecord):
        return "_set_summary" if len(call.values) == 1 else "_update_summary"
    if isinstance(call, FinalSummary):
        return "_update_summary (end-of-run summary)"
    if isinstance(call, CloseCall):
        return f"_close status={call.status}"
    return _METHOD_NAMES.get(type(call), type(call).__name__)
