"""Data nested deeper than the documented limit, or containing itself, is a clear ValueError
naming where, in ``log()``, the summary and the config; never a RecursionError or a hang."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from stored_configs import user_config

from noether.core.trackers import values
from recording_plugins import RecordingTracker

#: The documented limit (``values.MAX_NESTING``).
MAX_NESTING = 100

TOO_DEEP = "nested deeper than 100 levels \\(at 'level/level/level/level/level/\\.\\.\\.'"


def nested(levels: int, leaf: Any = 1.0) -> dict[str, Any]:
    """A mapping of ``levels`` levels (the outer one counted), ``level`` keys all the way."""
    data: Any = leaf
    for _ in range(levels):
        data = {"level": data}
    result: dict[str, Any] = data
    return result


def started(tmp_path: Path) -> RecordingTracker:
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(run_name="run", run_id="id1")
    return tracker


def test_the_limit_is_100_levels() -> None:
    assert getattr(values, "MAX_NESTING", None) == MAX_NESTING


def test_log_refuses_data_nested_2000_deep(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    with pytest.raises(ValueError, match=TOO_DEEP):
        tracker.log(nested(2000))
    tracker.log({"loss": 1.0})  # the run goes on
    tracker.close()
    assert [values for values, _ in tracker.logged()] == [{"loss": 1.0}]


def test_the_summary_refuses_data_nested_too_deep(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    with pytest.raises(ValueError, match=TOO_DEEP):
        tracker.update_summary(nested(2000))
    tracker.close()


def test_log_takes_data_exactly_at_the_limit(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    tracker.log(nested(MAX_NESTING))
    with pytest.raises(ValueError, match=TOO_DEEP):
        tracker.log(nested(MAX_NESTING + 1))
    tracker.close()
    [(values, _)] = tracker.logged()
    assert values == {"/".join(["level"] * MAX_NESTING): 1.0}


def test_log_refuses_data_that_contains_itself(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    data: dict[str, Any] = {"loss": 1.0, "inner": {}}
    data["inner"]["again"] = data
    with pytest.raises(ValueError, match="contains itself \\(a cycle\\) at 'inner/again'"):
        tracker.log(data)
    shared = {"x": 1.0}  # the same mapping twice is no cycle
    tracker.log({"a": shared, "b": shared})
    tracker.close()
    assert tracker.logged()[-1][0] == {"a/x": 1.0, "b/x": 1.0}


def test_init_refuses_a_config_nested_2000_deep(tmp_path: Path) -> None:
    tracker = RecordingTracker(output_path=tmp_path)
    with pytest.raises(ValueError, match=TOO_DEEP):
        tracker.init(run_name="run", config=nested(2000))
    tracker.init(run_name="run", config={"lr": 0.1})  # init may be called again
    tracker.close()


def test_a_config_at_the_limit_is_stored(tmp_path: Path) -> None:
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(run_name="run", config=nested(MAX_NESTING))
    tracker.close()
    stored = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert user_config(stored) == nested(MAX_NESTING)


@dataclasses.dataclass
class Node:
    child: Any = None


def cyclic_configs() -> dict[str, Any]:
    looping_dict: dict[str, Any] = {"a": {}}
    looping_dict["a"]["b"] = looping_dict
    looping_list: list[Any] = [1]
    looping_list.append(looping_list)
    looping_node = Node()
    looping_node.child = Node(child=looping_node)
    return {
        "dict": (looping_dict, "a/b"),
        "list": ({"items": looping_list}, "items/1"),
        "dataclass": ({"node": looping_node}, "node/child/child"),
    }


@pytest.mark.parametrize("case", ["dict", "list", "dataclass"])
def test_init_refuses_a_config_that_contains_itself(tmp_path: Path, case: str) -> None:
    config, where = cyclic_configs()[case]
    tracker = RecordingTracker(output_path=tmp_path)
    with pytest.raises(ValueError, match=f"config contains itself \\(a cycle\\) at '{where}'"):
        tracker.init(run_name="run", config=config)
