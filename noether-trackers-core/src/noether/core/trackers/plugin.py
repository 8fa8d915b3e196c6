"""The plugin API: everything a tracker plugin imports from noether-trackers core.

A plugin is a distribution with a ``noether.trackers`` entry point naming a module that
implements :func:`register_trackers` with :data:`hookimpl`; the module registers one or more
:class:`BaseTracker` subclasses::

    from noether.core.trackers.plugin import BaseTracker, RegisterTracker, RunInfo, hookimpl

    class CsvTracker(BaseTracker):
        plugin_api = "1.0"
        def _init(self, run: RunInfo) -> None: ...
        def _log(self, values, step, *, wall_time): ...

    @hookimpl
    def register_trackers(register: RegisterTracker) -> None:
        register(CsvTracker, kind="csv")

Everything here is public and kept working across releases: :data:`PLUGIN_API` is its version,
and a minor release only adds to it (see ``docs/plugin-reference.md``); the rest of the core is
not part of the plugin API. ``noether-trackers new-plugin NAME`` writes a plugin to start
from. The conformance kit is :mod:`noether.core.trackers.testing`.
"""

from __future__ import annotations

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.entry_points import ENTRY_POINT_GROUP
from noether.core.trackers.errors import OptionError, first_line
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.plugin_api import PLUGIN_API
from noether.core.trackers.run_files import dump_yaml, flatten
from noether.core.trackers.run_info import RUN_STATUSES, RunInfo, RunStatus
from noether.core.trackers.run_location import (
    RunLocation,
    installed_command,
    shell_command,
    shown_path,
)
from noether.core.trackers.safe_names import (
    digest,
    is_safe_relative_path,
    safe_component,
    safe_relative_path,
)
from noether.core.trackers.schema import Constraint, Finite, Ge, Gt
from noether.core.trackers.summary import Direction, SummaryDirections
from noether.core.trackers.values import VALUE_KINDS, Value

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_API",
    "RUN_STATUSES",
    "VALUE_KINDS",
    "BaseTracker",
    "Constraint",
    "Direction",
    "Finite",
    "Ge",
    "Gt",
    "Histogram",
    "Image",
    "OptionError",
    "RegisterTracker",
    "RunInfo",
    "RunLocation",
    "RunStatus",
    "SummaryDirections",
    "Table",
    "Value",
    "digest",
    "dump_yaml",
    "first_line",
    "flatten",
    "hookimpl",
    "installed_command",
    "is_safe_relative_path",
    "safe_component",
    "safe_relative_path",
    "shell_command",
    "shown_path",
]
