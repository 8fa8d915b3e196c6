"""The backend object behind a run built by ``create_tracker``, for the tests that read its
own attributes (``run_dir``, ``log_dir``, ``directory``, ...)."""

from __future__ import annotations

from typing import TypeVar

from noether.core.trackers import Tracker

BackendT = TypeVar("BackendT")


def backend_of(tracker: Tracker, kind: type[BackendT], index: int | None = None) -> BackendT:
    """The backend of ``tracker`` at ``index`` (its only one when None), checked to be a
    ``kind``."""
    if index is None:
        [backend] = tracker.backends
    else:
        backend = tracker.backends[index]
    assert isinstance(backend, kind), f"expected a {kind.__name__}, got {backend!r}"
    return backend
