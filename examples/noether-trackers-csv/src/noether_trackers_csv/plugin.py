"""The module the ``noether.trackers`` entry point names: it registers the ``csv`` kind."""

from __future__ import annotations

from noether.core.trackers.plugin import RegisterTracker, hookimpl
from noether_trackers_csv.tracker import CsvTracker


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Make ``kind: csv`` (and ``noether.core.trackers.CsvTracker``) select :class:`CsvTracker`."""
    register(CsvTracker, kind="csv")
