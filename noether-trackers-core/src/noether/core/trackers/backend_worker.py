"""One backend's delivery thread: its calls, in order, off the training thread.

A worker never lets an exception out: failures are counted, the first one is logged with its
traceback. Its queue holds at most ``capacity`` calls; when a backend falls behind (slow, or
hung), the dispatcher stops queueing calls for it and instead queues one *span* of the journal
(byte offsets) covering them, which the worker reads back from disk when it gets there. Memory
stays bounded, the training thread never waits, and the backend still receives every call in
order.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noether.core.trackers.journal import read_span

if TYPE_CHECKING:
    from noether.core.trackers.base import BaseTracker

logger = logging.getLogger("noether.trackers")

#: A call for a backend: the underscore method's name and its arguments.
Call = tuple[str, tuple[Any, ...]]
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

    @property
    def lost(self) -> int:
        """Calls this backend did not take: failed, or still queued when close timed out."""
        return self.failed + self.undelivered_at_close


class BackendWorker:
    """Runs one backend's calls in order on a thread of its own."""

    def __init__(self, backend: BaseTracker, label: str, capacity: int) -> None:
        self.backend = backend
        self.label = label
        self.capacity = capacity
        self.queue: deque[Call] = deque()
        #: Journal span ``[start, end, calls]`` not yet queued; owned by the dispatcher thread.
        self.overflow: list[int] | None = None
        self.offered = self.completed = self.failed = 0
        self.first_error: str | None = None
        self.init_error: BaseException | None = None
        self.init_done = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"noether-trackers:{label}", daemon=True
        )

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

    def spill(self, start: int, end: int) -> None:
        """Note that the call journaled at ``[start, end)`` is for this backend too."""
        self.offered += 1
        if self.overflow is None:
            self.overflow = [start, end, 1]
        else:
            self.overflow[1] = end
            self.overflow[2] += 1

    def queue_overflow(self, journal_path: Path) -> None:
        """Queue the overflow span for reading back (the journal must be flushed past it)."""
        if self.overflow is not None:
            start, end, calls = self.overflow
            self.overflow = None
            self.queue.append(("_replay_span", (journal_path, start, end, calls)))

    def pending(self) -> int:
        """Calls queued, spilled or running."""
        return self.offered - self.completed

    def stop(self) -> None:
        """Let the thread end once its queue is empty."""
        self._stopping = True

    def join(self, deadline: float) -> bool:
        """Wait until the thread ended or ``deadline`` (monotonic); True if it ended."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def report(self) -> BackendReport:
        """The counts so far; calls still pending count as undelivered."""
        return BackendReport(
            self.label,
            self.offered,
            self.completed - self.failed,
            self.failed,
            self.pending(),
            self.first_error,
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
            if method == "_replay_span":
                self._replay_span(*args)
            else:
                self._call(method, args)

    def _call(self, method: str, args: tuple[Any, ...]) -> None:
        try:
            getattr(self.backend, method)(*args)
        except Exception as error:
            self._record_failure(method, error)
        finally:
            self.completed += 1
            if method == "_init":
                self.init_done.set()

    def _replay_span(self, path: Path, start: int, end: int, calls: int) -> None:
        replayed = 0
        try:
            for record in read_span(path, start, end):
                method = _REPLAYED[record["op"]]
                replayed += 1
                arguments = (
                    (record["values"], record["step"])
                    if method == "_receive_log"
                    else (record["values"],)
                )
                self._call(method, arguments)
        except Exception as error:  # an unreadable journal: the rest of the span is lost
            self._record_failure("_replay_span", error)
            self.failed += calls - replayed - 1
            self.completed += calls - replayed

    def _record_failure(self, method: str, error: Exception) -> None:
        if method == "_init":
            self.init_error = error
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"
            logger.error(
                "tracker backend %s failed in %s; training goes on, further failures are only "
                "counted and summarised at close:\n%s",
                self.label,
                method,
                "".join(traceback.format_exception(error)).rstrip(),
            )
