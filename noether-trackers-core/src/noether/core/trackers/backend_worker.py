"""One backend's delivery thread: its calls, in order, off the training thread.

A worker never lets an exception out: failures are counted, the first one is logged with its
traceback. A backend that stops making progress (one call running longer than
``stall_timeout``) is *stalled*: calls offered to it while its queue is full are dropped and
counted instead of queued, so a hung backend never grows memory or holds up anything else.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noether.core.trackers.base import BaseTracker

logger = logging.getLogger("noether.trackers")

#: A call for a backend: the underscore method's name and its arguments.
Call = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True)
class BackendReport:
    """What happened to one backend's calls over a run."""

    backend: str
    offered: int
    delivered: int
    failed: int
    dropped: int
    undelivered_at_close: int
    first_error: str | None

    @property
    def lost(self) -> int:
        """Calls this backend did not take: failed, dropped, or still queued at close."""
        return self.failed + self.dropped + self.undelivered_at_close


class BackendWorker:
    """Runs one backend's calls in order on a thread of its own."""

    def __init__(self, backend: BaseTracker, label: str, capacity: int, stall_timeout: float):
        self.backend = backend
        self.label = label
        self.capacity = capacity
        self.stall_timeout = stall_timeout
        self.queue: deque[Call] = deque()
        self.offered = self.completed = self.failed = self.dropped = 0
        self.first_error: str | None = None
        self.init_error: BaseException | None = None
        self.init_done = threading.Event()
        self._busy_since: float | None = None
        self._idle = False
        self._stopping = False
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"noether-trackers:{label}", daemon=True
        )

    def start(self) -> None:
        """Start the thread; its first call is the backend's ``_init``."""
        self._thread.start()

    def offer(self, call: Call) -> None:
        """Queue ``call``, or drop it (counted) when the backend is stalled and backed up."""
        self.offered += 1
        if len(self.queue) >= self.capacity and self.stalled():
            self.dropped += 1
            return
        self.queue.append(call)
        if self._idle:
            self._wake.set()

    def congested(self) -> bool:
        """True while a live backend's queue is full: the producer should wait for it."""
        return len(self.queue) >= self.capacity and not self.stalled()

    def stalled(self) -> bool:
        """True while one call has been running for longer than ``stall_timeout``."""
        busy_since = self._busy_since
        return busy_since is not None and time.monotonic() - busy_since > self.stall_timeout

    def pending(self) -> int:
        """Calls queued or running."""
        return self.offered - self.dropped - self.completed

    def stop(self) -> None:
        """Let the thread end once its queue is empty."""
        self._stopping = True
        self._wake.set()

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
            self.dropped,
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
                self._idle = True
                self._wake.clear()
                if not self.queue and not self._stopping:
                    self._wake.wait()
                self._idle = False
                continue
            self._busy_since = time.monotonic()
            try:
                getattr(self.backend, method)(*args)
            except Exception as error:
                self._record_failure(method, error)
            finally:
                self._busy_since = None
                self.completed += 1
                if method == "_init":
                    self.init_done.set()

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
