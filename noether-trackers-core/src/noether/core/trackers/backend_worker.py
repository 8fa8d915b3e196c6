"""One backend's delivery thread: its calls, in order, off the training thread.

A worker never lets an exception out: whatever a backend raises (``SystemExit`` and other
``BaseException`` included) counts as a failure of that backend, the first one logged with its
traceback. A backend whose ``_init`` failed gets no further calls.

Its queue holds at most ``capacity`` calls. When a backend falls behind (slow, or hung) and the
run has a working journal, the dispatcher stops queueing calls for it and instead queues one
*span* of the journal (byte offsets) covering them, which the worker reads back when it gets
there: memory stays bounded, the training thread never waits, and the backend still receives
every call in order. Without a working journal there is nowhere to spill to: the oldest call
still queued is dropped instead (counted, and warned about once).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noether.core.trackers.base import BaseTracker

logger = logging.getLogger("noether.trackers")

#: A call for a backend: the underscore method's name and its arguments.
Call = tuple[str, tuple[Any, ...]]
#: Reads the journal records between two byte offsets back (see ``JournalWriter.records``).
SpanReader = Callable[[int, int], Iterator[dict[str, Any]]]
#: How often an idle worker (or the idle dispatcher) looks for new calls. Polling instead of
#: being woken keeps ``log()`` free of system calls and thread switches.
POLL_INTERVAL = 0.005
#: Journal record operations and the backend method that replays each.
_REPLAYED = {"log": "_receive_log", "summary": "_receive_summary"}


@dataclass(frozen=True)
class BackendReport:
    """What happened to one backend's calls over a run."""

    backend: str
    offered: int
    delivered: int
    failed: int
    undelivered_at_close: int
    first_error: str | None
    #: Calls dropped because the backend fell behind with no journal to spill them to.
    dropped: int = 0

    @property
    def lost(self) -> int:
        """Calls this backend did not take: failed, dropped, or still queued at close."""
        return self.failed + self.dropped + self.undelivered_at_close


class BackendWorker:
    """Runs one backend's calls in order on a thread of its own."""

    def __init__(self, backend: BaseTracker, label: str, capacity: int) -> None:
        self.backend = backend
        self.label = label
        self.capacity = capacity
        self.queue: deque[Call] = deque()
        #: Journal span ``[start, end, calls]`` not yet queued; owned by the dispatcher thread.
        self.overflow: list[int] | None = None
        self.offered = self.completed = self.failed = self.dropped = 0
        self.first_error: str | None = None
        self.init_error: BaseException | None = None
        self.init_done = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"noether-trackers:{label}", daemon=True
        )

    @property
    def started(self) -> bool:
        """Whether the backend's ``_init`` returned without error (it gets calls only then)."""
        return self.init_done.is_set() and self.init_error is None

    def start(self) -> None:
        """Start the thread; its first call is the backend's ``_init``."""
        self._thread.start()

    def has_room(self) -> bool:
        """Whether another call may be queued in memory."""
        return self.overflow is None and len(self.queue) < self.capacity

    def offer(self, call: Call) -> None:
        """Queue ``call`` in memory."""
        self.offered += 1
        self.queue.append(call)

    def offer_dropping_oldest(self, call: Call) -> bool:
        """Queue ``call``, dropping the oldest queued call if the queue is full (there is no
        journal to spill to). True when a call was dropped."""
        dropped = False
        if len(self.queue) >= self.capacity:
            try:
                method, args = self.queue.popleft()  # the worker may take it first
            except IndexError:
                pass
            else:
                # a journal span read back later stands for all the calls it holds
                self.dropped += args[3] if method == "_replay_span" else 1
                dropped = True
        self.offer(call)
        return dropped

    def spill(self, start: int, end: int) -> None:
        """Note that the call journaled at ``[start, end)`` is for this backend too."""
        self.offered += 1
        if self.overflow is None:
            self.overflow = [start, end, 1]
        else:
            self.overflow[1] = end
            self.overflow[2] += 1

    def queue_overflow(self, read: SpanReader) -> None:
        """Queue the overflow span for reading back through ``read``."""
        if self.overflow is not None:
            start, end, calls = self.overflow
            self.overflow = None
            self.queue.append(("_replay_span", (read, start, end, calls)))

    def pending(self) -> int:
        """Calls queued, spilled or running."""
        return self.offered - self.completed - self.dropped

    def stop(self) -> None:
        """Let the thread end once its queue is empty."""
        self._stopping = True

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
                method, args = self.queue.popleft()
            except IndexError:
                if self._stopping:
                    return
                time.sleep(POLL_INTERVAL)
                continue
            if self.init_error is not None:
                self.completed += 1  # a backend that failed to start gets no further calls
            elif method == "_replay_span":
                self._replay_span(*args)
            else:
                self._call(method, args)

    def _call(self, method: str, args: tuple[Any, ...]) -> None:
        # BaseException: a backend's SystemExit must not end this thread silently; whatever
        # a backend raises is that backend's failure, never the training loop's.
        try:
            getattr(self.backend, method)(*args)
        except BaseException as error:
            self._record_failure(method, error)
        finally:
            self.completed += 1
            if method == "_init":
                self.init_done.set()

    def _replay_span(self, read: SpanReader, start: int, end: int, calls: int) -> None:
        replayed = 0
        try:
            for record in read(start, end):
                method = _REPLAYED[record["op"]]
                replayed += 1
                arguments = (
                    (record["values"], record["step"])
                    if method == "_receive_log"
                    else (record["values"],)
                )
                self._call(method, arguments)
        except Exception as error:  # an unreadable journal: the rest of the span is lost
            self._record_failure("_replay_span", error, calls - replayed)
        else:
            if replayed < calls:  # records the reader had to skip
                skipped = ValueError(f"{calls - replayed} journaled calls could not be read back")
                self._record_failure("_replay_span", skipped, calls - replayed)
        self.completed += max(0, calls - replayed)

    def _record_failure(self, method: str, error: BaseException, calls: int = 1) -> None:
        if method == "_init":
            self.init_error = error
            return
        self.failed += calls
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"
            logger.error(
                "tracker backend %s failed in %s; training goes on, further failures are only "
                "counted and summarised at close:\n%s",
                self.label,
                method,
                "".join(traceback.format_exception(error)).rstrip(),
            )
