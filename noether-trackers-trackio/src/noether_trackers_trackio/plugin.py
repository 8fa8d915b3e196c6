"""Entry point of the ``trackio`` kind (group ``noether.trackers``)."""

from __future__ import annotations

from noether.core.trackers.plugin import RegisterTracker, hookimpl
from noether_trackers_trackio.tracker import TrackioTracker


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Register :class:`TrackioTracker` as kind ``trackio``."""
    register(TrackioTracker, kind="trackio")
