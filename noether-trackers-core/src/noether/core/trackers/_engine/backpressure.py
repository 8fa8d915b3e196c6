"""How much a run holds in memory, and what happens beyond it: the back-pressure policy.

Memory is bounded without making anyone wait on a backend.

- **Per backend** (:class:`BackendQueuePolicy`): a backend's queue holds at most ``capacity``
  calls. A backend that falls behind (slow or hung) gets no more calls in memory; the calls
  it misses are *spilled*: noted as one span of the journal, which the backend reads back
  once its queue is below half full again (half, so that a backend hovering at the limit
  does not read back one call at a time). Without a working journal there is nowhere to
  spill to: the oldest queued call is dropped instead, counted in the report.
- **At the hand-over** (:class:`HandoverGate`): the training thread waits only when it hands
  over calls faster than the dispatcher can journal them, with ``capacity`` calls already
  waiting; if the dispatcher then makes no progress for ``handover_timeout`` seconds (its
  journal's disk hangs), the call is dropped and counted instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from noether.core.trackers._engine.worker import BackendWorker
from noether.core.trackers.records import Call


class BackendQueuePolicy:
    """Decides, per call and backend, between the backend's queue, the journal and dropping."""

    def __init__(self, capacity: int) -> None:
        """At most ``capacity`` calls per backend in memory."""
        self.capacity = capacity
        #: A spilled backend reads its span back once its queue is shorter than this.
        self.read_back_below = capacity // 2

    def ready_to_read_back(self, worker: BackendWorker) -> bool:
        """Whether ``worker`` has a spilled span and room to read it back."""
        return worker.overflow is not None and len(worker.queue) < self.read_back_below

    def place(self, worker: BackendWorker, call: Call, span: tuple[int, int] | None) -> bool:
        """Give ``call`` (journaled at ``span``, None without a working journal) to ``worker``:
        queued in memory, or spilled to the journal, or queued in place of the oldest queued
        call. True in that last case (an older call was dropped)."""
        if worker.overflow is None and len(worker.queue) < self.capacity:
            worker.offer(call)
            return False
        if span is not None:
            worker.spill(*span)
            return False
        dropped = len(worker.queue) >= self.capacity and worker.drop_oldest()
        worker.offer(call)
        return dropped


class HandoverGate:
    """Lets the training thread hand a call over, waiting only for a dispatcher that is
    behind by ``capacity`` calls and still making progress."""

    def __init__(self, capacity: int, timeout: float) -> None:
        """Wait while ``capacity`` calls are waiting, giving up after ``timeout`` seconds
        without progress."""
        self.capacity = capacity
        self.timeout = timeout
        #: Calls dropped because the dispatcher made no progress.
        self.dropped = 0
        # the dispatcher's progress when a hand-over last gave up waiting
        self._stalled_at = -1

    def wait_for_room(
        self,
        waiting: Callable[[], int],
        progress: Callable[[], int],
        dispatcher_alive: Callable[[], bool],
        on_first_stall: Callable[[], None],
    ) -> bool:
        """Called with ``capacity`` calls waiting (the caller checks, so that a hand-over
        with room costs nothing here): True once the call may be queued; False when it is
        dropped (counted in :attr:`dropped`). ``waiting``: calls not yet taken by the
        dispatcher; ``progress``: calls it took so far; ``on_first_stall``: tells the user,
        once per run, that calls are being dropped."""
        if progress() != self._stalled_at:  # still stalled since a call gave up: no wait
            seen, since = progress(), time.monotonic()
            while waiting() >= self.capacity and dispatcher_alive():
                if progress() != seen:
                    seen, since = progress(), time.monotonic()
                elif time.monotonic() - since >= self.timeout:
                    self._stalled_at = seen
                    if self.dropped == 0:
                        on_first_stall()
                    break
                time.sleep(0.0005)
            else:
                return True
        self.dropped += 1
        return False
