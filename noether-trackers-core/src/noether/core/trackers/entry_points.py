"""Where plugins are found: the ``noether.trackers`` entry-point group."""

from __future__ import annotations

import importlib.metadata

#: The entry-point group plugins register in; an entry point's name is the plugin's main kind.
ENTRY_POINT_GROUP = "noether.trackers"


def plugin_entry_points() -> importlib.metadata.EntryPoints:
    """The installed plugins' entry points (read from metadata; nothing is imported)."""
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
