"""Test plugins: trackers that record calls in memory or inject faults.

These are for testing the core's own mechanics (registry, config, delivery). Behaviour of
real backends is tested against the real libraries in their own test folders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.registry import TrackerRegistry
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.values import Value


class RecordingTracker(BaseTracker):
    """Keeps every call it receives, for assertions."""

    def __init__(
        self,
        *,
        name: str = "recorder",
        required_level: int | None = None,
        mode: Literal["fast", "slow"] = "fast",
        tags: list[str] | None = None,
        ratio: float = 1.0,
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(output_path=output_path)
        self.name = name
        self.calls: list[tuple[str, Any]] = []

    def _init(self, run: RunInfo) -> None:
        self.calls.append(("init", run))

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        self.calls.append(("log", (dict(values), step)))

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        self.calls.append(("summary", dict(values)))

    def _close(self, status: RunStatus) -> None:
        self.calls.append(("close", status))

    def logged(self) -> list[tuple[dict[str, Value], int]]:
        """The (values, step) of every ``_log`` call."""
        return [args for name, args in self.calls if name == "log"]


class RequiredOptionTracker(RecordingTracker):
    """A tracker with a required option, for schema tests."""

    def __init__(self, *, project: str, output_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(output_path=output_path)
        self.project = project


class ScalarsOnlyTracker(RecordingTracker):
    """A backend that can only show scalars."""

    supported_values = frozenset({"scalar"})


class RecordingPlugin:
    """Registers the test trackers as kinds ``recorder``, ``needs-project`` and ``scalars``."""

    @hookimpl
    def register_trackers(self, register: RegisterTracker) -> None:
        register(RecordingTracker, kind="recorder", aliases=("test.Recorder",))
        register(RequiredOptionTracker, kind="needs-project")
        register(ScalarsOnlyTracker, kind="scalars")


def registry_with_test_plugin() -> TrackerRegistry:
    """A registry holding the installed plugins and the test plugin."""
    registry = TrackerRegistry()
    registry.load_entry_points()
    registry.add_plugin(RecordingPlugin(), name="test", distribution="tests")
    return registry
