"""Every config the README allows is stored: mappings, dataclasses and omegaconf nodes nested in
each other, holding paths, enums, numpy scalars and arrays, sets, tuples, datetimes, bytes and
other objects. ``config.yaml``, the journal and every backend get the same plain data; what has
no plain form is stored as its string.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from run_every_backend import FinishedRun, run_scenario
from stored_configs import tensorboard_config, trackio_config, user_config, wandb_config

from recording_plugins import RecordingTracker


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Mode(str, enum.Enum):
    FAST = "fast"


class Opaque:
    def __str__(self) -> str:
        return "opaque thing"


@dataclasses.dataclass
class PathConfig:
    """The issue's case: a dataclass config with a ``pathlib.Path`` field."""

    data_dir: Path = Path("/data/imagenet")
    lr: float = 0.1


CASES: dict[str, tuple[Any, Any]] = {
    "path": (Path("/data/x"), "/data/x"),
    "pure path": (PureWindowsPath("C:/data"), "C:\\data"),
    "enum": (Color.RED, "RED"),
    "int enum": (Level.HIGH, "HIGH"),
    "str enum": (Mode.FAST, "FAST"),
    "numpy float": (np.float32(0.5), 0.5),
    "numpy int": (np.int64(7), 7),
    "numpy bool": (np.bool_(True), True),
    "numpy str": (np.str_("text"), "text"),
    "0-d array": (np.array(2.5), 2.5),
    "array": (np.arange(4).reshape(2, 2), [[0, 1], [2, 3]]),
    "datetime64": (np.datetime64("2024-05-06T07:08"), "2024-05-06T07:08"),
    "set": ({"b", "c", "a"}, ["a", "b", "c"]),
    "frozenset": (frozenset({2, 1}), [1, 2]),
    "mixed set": ({1, "a"}, None),  # unsortable: any order
    "tuple": ((1, (2, "x")), [1, [2, "x"]]),
    "datetime": (datetime.datetime(2024, 5, 6, 7, 8, 9), "2024-05-06T07:08:09"),
    "date": (datetime.date(2024, 5, 6), "2024-05-06"),
    "time": (datetime.time(7, 8), "07:08:00"),
    "timedelta": (datetime.timedelta(minutes=5), "0:05:00"),
    "bytes": (b"abc", "abc"),
    "binary bytes": (b"\xff\x00", "b'\\xff\\x00'"),
    "decimal": (decimal.Decimal("0.01"), "0.01"),
    "complex": (1 + 2j, "(1+2j)"),
    "object": (Opaque(), "opaque thing"),
    "int key mapping": ({1: "a", Color.RED: "b"}, {"1": "a", "RED": "b"}),
    "dataclass": (PathConfig(), {"data_dir": "/data/imagenet", "lr": 0.1}),
    "omegaconf": (OmegaConf.create({"a": {"b": [1, 2]}}), {"a": {"b": [1, 2]}}),
}


def stored_configs(tmp_path: Path, config: Any) -> list[Any]:
    """The config as ``config.yaml``, the journal and a backend got it."""
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(run_name="run", run_id="id1", config=config)
    tracker.close()
    [run] = [args for name, args in tracker.calls if name == "init"]
    [journaled] = [
        record["config"]
        for record in map(json.loads, (tmp_path / "journal.jsonl").read_text().splitlines())
        if record["op"] == "init"
    ]
    stored = [yaml.safe_load((tmp_path / "config.yaml").read_text()), journaled, run.config]
    return [user_config(config) for config in stored]


@pytest.mark.parametrize("case", CASES)
def test_each_kind_of_value_is_stored_in_plain_form(tmp_path: Path, case: str) -> None:
    value, expected = CASES[case]
    for stored in stored_configs(tmp_path, {"value": value, "in_list": [value]}):
        if expected is None:
            assert sorted(stored["value"], key=str) == [1, "a"]
        else:
            assert stored == {"value": expected, "in_list": [expected]}


def test_a_dataclass_config_with_a_path_is_stored(tmp_path: Path) -> None:
    for stored in stored_configs(tmp_path, PathConfig()):
        assert stored == {"data_dir": "/data/imagenet", "lr": 0.1}


def test_configs_nest_in_each_other(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Outer:
        node: Any
        paths: tuple[Path, ...] = (Path("a"), Path("b"))

    config = {
        "outer": Outer(node=OmegaConf.create({"inner": {"p": "x"}})),
        "node": OmegaConf.create({"width": 8}),
        "structured": OmegaConf.structured(PathConfig),
    }
    for stored in stored_configs(tmp_path, config):
        assert stored == {
            "outer": {"node": {"inner": {"p": "x"}}, "paths": ["a", "b"]},
            "node": {"width": 8},
            "structured": {"data_dir": "/data/imagenet", "lr": 0.1},
        }


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    tracker = RecordingTracker(output_path=tmp_path)
    with pytest.raises(TypeError, match="mapping, dataclass or omegaconf node"):
        tracker.init(run_name="run", config=[1, 2])


# ---- every real backend ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def typed_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """The config-types scenario of ``support/run_every_backend.py``: TensorBoard, W&B and
    Trackio in one real run whose config holds every kind of value."""
    return run_scenario(
        tmp_path_factory.mktemp("sandbox"), tmp_path_factory.mktemp("spec"), "config-types"
    )


def expected_typed_config(markers: dict[str, str]) -> dict[str, Any]:
    """What ``run_every_backend.typed_config`` must be stored as."""
    return {
        "data": {
            "root": markers["path"],
            "optimizer": "ADAM_W",
            "precision": "BF16",
            "splits": ["train", "val"],
            "classes": ["cat", "dog"],
            "seen": [1, 2, 3],
            "created": "2024-05-06T07:08:09",
            "day": "2024-05-06",
            "patience": "0:05:00",
            "salt": "visible-bytes",
            "raw": "b'\\xff\\xfe'",
            "weight_decay": "0.01",
            "lr": 0.5,
            "steps": 7,
            "flag": True,
            "mean": [[1.0, 2.0], [3.0, 4.0]],
            "scale": 2.5,
            "when": "2024-05-06T07:08:09",
        },
        "model": {"width": 8, "checkpoint": markers["checkpoint"]},
        "pure": "/pure/path",
        "nested": {"inner": {"depth": 2}},
        "marker": markers["config"],
    }


def test_every_backend_stores_the_typed_config(typed_run: FinishedRun) -> None:
    expected = expected_typed_config(typed_run.markers)
    output = typed_run.output
    assert list(typed_run.lost.values()) == [0, 0, 0], typed_run.lost
    trackio = trackio_config(typed_run.sandbox / "trackio", "every-backend", "typed")
    stored = {
        "config.yaml": user_config(yaml.safe_load((output / "config.yaml").read_text())),
        "TensorBoard": user_config(tensorboard_config(output / "tensorboard_logs")),
        "W&B": user_config(wandb_config(output / "wandb")),
        "Trackio": {key: trackio[key] for key in expected if key in trackio},  # + its own keys
    }
    for sink, config in stored.items():
        assert config == expected, sink
