"""The core's own plugin: the ``noop`` kind (same as ``tracker: null``)."""

from __future__ import annotations

from noether.core.trackers.base import NoopTracker
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Register :class:`NoopTracker` as kind ``noop``."""
    register(NoopTracker, kind="noop")
