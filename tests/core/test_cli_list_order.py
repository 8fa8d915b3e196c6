"""Issue 10, point 12: ``noether-trackers list`` sorts its rows by kind, whatever order the
plugins were loaded in."""

from __future__ import annotations

import json

import pytest

from noether.core.trackers import registry as registry_module
from noether.core.trackers.cli import main
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.registry import TrackerRegistry
from recording_plugins import RecordingTracker, RequiredOptionTracker, ScalarsOnlyTracker

#: Registered in this order, which is not the order of their kinds.
KINDS = {"zeta": ScalarsOnlyTracker, "alpha": RecordingTracker, "mid": RequiredOptionTracker}


class UnsortedPlugin:
    """Registers :data:`KINDS` in an order that is not sorted."""

    @hookimpl
    def register_trackers(self, register: RegisterTracker) -> None:
        for kind, tracker_class in KINDS.items():
            register(tracker_class, kind=kind)


@pytest.fixture
def unsorted_registry(monkeypatch: pytest.MonkeyPatch) -> TrackerRegistry:
    """The process-wide registry replaced by one whose kinds were loaded unsorted."""
    registry = TrackerRegistry()
    registry.add_plugin(UnsortedPlugin(), name="unsorted", distribution="tests", version="1")
    assert [entry.kind for entry in registry.kinds] == list(KINDS)
    monkeypatch.setattr(registry_module, "get_registry", lambda: registry)
    return registry


def test_list_json_is_sorted_by_kind(
    unsorted_registry: TrackerRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--json"]) == 0
    kinds = [row["kind"] for row in json.loads(capsys.readouterr().out)["trackers"]]
    assert kinds == ["alpha", "mid", "zeta"]


def test_list_table_is_sorted_by_kind(
    unsorted_registry: TrackerRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.startswith("KIND")
    assert [row.split()[0] for row in rows] == ["alpha", "mid", "zeta"]
