"""noether-trackers: one experiment-tracking interface, every backend a plugin.

Importing this package is cheap: plugins (and their backend libraries) load only when a tracker
kind is resolved. ``from noether.core.trackers import TensorboardTracker`` (or any class a
plugin registers) goes through the plugin registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noether.core.trackers.base import BaseTracker, FanoutTracker, NoopTracker
from noether.core.trackers.distributed import reduce_metrics
from noether.core.trackers.errors import TrackerConfigError, TrackerNotInstalledError
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.run_location import RunLocation

if TYPE_CHECKING:
    from noether.core.trackers.config import create_tracker, load_tracker_section

__all__ = [
    "BaseTracker",
    "FanoutTracker",
    "Histogram",
    "Image",
    "NoopTracker",
    "RunInfo",
    "RunLocation",
    "RunStatus",
    "Table",
    "TrackerConfigError",
    "TrackerNotInstalledError",
    "create_tracker",
    "load_tracker_section",
    "reduce_metrics",
]

_LAZY = {"create_tracker", "load_tracker_section"}


def __getattr__(name: str) -> Any:
    # config pulls in omegaconf and the registry pulls in pluggy and entry points: load them on
    # first use so that importing this package stays cheap.
    if name in _LAZY:
        from noether.core.trackers import config

        return getattr(config, name)
    if name[:1].isupper():
        from noether.core.trackers.registry import resolve_tracker_class

        return resolve_tracker_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
