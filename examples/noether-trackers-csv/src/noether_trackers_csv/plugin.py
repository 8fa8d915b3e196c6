"""The hook implementation, the module the ``noether.trackers`` entry point names: it
registers the tracker kind ``csv``.

Every program that loads the tracker registry imports it (``noether-trackers list`` too): keep
it cheap, and import the backend library in the tracker's ``_init``, never here.
"""

from __future__ import annotations

from noether.core.trackers.plugin import RegisterTracker, hookimpl
from noether_trackers_csv.tracker import CsvTracker


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Make ``kind: csv`` in YAML select the tracker class (so does
    ``noether.core.trackers.CsvTracker``)."""
    register(CsvTracker, kind="csv")
