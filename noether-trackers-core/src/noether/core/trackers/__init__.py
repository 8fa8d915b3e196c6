"""noether-trackers: one experiment-tracking interface, every backend a plugin.

Training code holds a :class:`Tracker` (the run, from :func:`create_tracker`); backends
subclass :class:`BaseTracker` (plugin authors import from :mod:`noether.core.trackers.plugin`).

Importing this package is cheap: plugins (and their backend libraries) load only when a tracker
kind is resolved. ``from noether.core.trackers import TensorboardTracker`` (or any class a
plugin registers) goes through the plugin registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from noether.core.trackers.base import BaseTracker, NoopTracker
from noether.core.trackers.delivery import DeliveryReport, DeliverySettings
from noether.core.trackers.distributed import reduce_metrics
from noether.core.trackers.errors import TrackerConfigError, TrackerNotInstalledError
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.plugin_api import PLUGIN_API
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.tracker import FanoutTracker, Tracker

if TYPE_CHECKING:
    from noether.core.trackers.config import create_tracker, load_tracker_section

__all__ = [
    "PLUGIN_API",
    "BaseTracker",
    "DeliveryReport",
    "DeliverySettings",
    "FanoutTracker",
    "Histogram",
    "Image",
    "NoopTracker",
    "RunInfo",
    "RunLocation",
    "RunStatus",
    "Table",
    "Tracker",
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
