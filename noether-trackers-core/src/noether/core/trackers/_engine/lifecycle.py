"""Closing open trackers when the process ends: on SIGTERM and at interpreter exit.

SLURM and Kubernetes preempt a job with SIGTERM. The handler closes every open tracker with
status ``terminated`` (bounded by :data:`SIGTERM_CLOSE_TIMEOUT`), then hands the signal on: to
the handler that was installed before (chained, not replaced), or, if that was the default
action, by re-raising it so that the process ends exactly as SIGTERM would have ended it.
A SIGTERM the program ignores (``SIG_IGN`` set before the run starts) stays ignored. A SIGTERM
that arrives while ``close()`` waits for a slow backend makes that close hurry (at most
:data:`SIGTERM_CLOSE_TIMEOUT`) and waits for it before the process ends.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

from noether.core.trackers.run_info import status_for_exception


class OpenRun(Protocol):
    """A run this module may have to close: what it needs of
    :class:`~noether.core.trackers.tracker.Tracker`."""

    def close(self, timeout: float | None = None, *, status: Any = "finished") -> Any: ...


#: Seconds that closing all trackers may take on SIGTERM (SLURM's grace period is often 30 s).
SIGTERM_CLOSE_TIMEOUT = 10.0
_open_trackers: weakref.WeakSet[OpenRun] = weakref.WeakSet()
_previous_handler: Any = signal.SIG_DFL
_atexit_registered = False


def register_open(tracker: OpenRun) -> None:
    """Close ``tracker`` on SIGTERM or interpreter exit unless it is closed before."""
    global _atexit_registered
    _open_trackers.add(tracker)
    if not _atexit_registered:
        atexit.register(_close_at_exit)
        _atexit_registered = True
    _install_sigterm_handler()


def unregister(tracker: OpenRun) -> None:
    """``tracker`` is closed: nothing left to do for it at exit."""
    _open_trackers.discard(tracker)


def forget_open_runs() -> list[OpenRun]:
    """Forget every open run and return them (a forked child must not close its parent's)."""
    runs = list(_open_trackers)
    _open_trackers.clear()
    return runs


def _install_sigterm_handler() -> None:
    global _previous_handler
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm or current == signal.SIG_IGN:
        return  # an ignored SIGTERM stays ignored: the run goes on, as the process does
    _previous_handler = current  # e.g. the user's own handler, or one set by a launcher
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    close_all(status="terminated", timeout=SIGTERM_CLOSE_TIMEOUT)
    previous = _previous_handler
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def close_all(*, status: Any, timeout: float) -> None:
    """Close every open tracker with ``status``."""
    for tracker in list(_open_trackers):
        tracker.close(timeout=timeout, status=status)


def _close_at_exit() -> None:
    # set when an exception ended the program (Ctrl+C included): a run it ended is not finished
    error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    close_all(status=status_for_exception(error), timeout=SIGTERM_CLOSE_TIMEOUT)
