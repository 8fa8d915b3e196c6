"""Names are data: no stage name, run name, run id or metric key puts a file outside the
output path, and the run is read back by TensorBoard's own reader under its stage."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile_names import directories_outside, files_outside, hostile_names
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.util import tensor_util

from noether.core.trackers import Image, create_tracker

NAMES = hostile_names(Path("/ROOT"))  # the ids only; each test builds names for its own root


def read_runs(log_dir: Path) -> EventMultiplexer:
    """Every TensorBoard run under ``log_dir``, as TensorBoard itself discovers them."""
    multiplexer = EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    multiplexer.AddRunsFromDirectory(str(log_dir))
    multiplexer.Reload()
    return multiplexer


def config_text(multiplexer: EventMultiplexer, run: str) -> str:
    (event,) = multiplexer.Tensors(run, "config")
    text: bytes = tensor_util.make_ndarray(event.tensor_proto).item()
    return text.decode()


def log_a_run(output: Path, name: str, *, where: str, log_dir: str = "tensorboard_logs") -> None:
    """A run with ``name`` as its stage, run name or run id (``where``), that logs an image,
    a scalar and text under ``name`` as the key too."""
    names: dict[str, Any] = {"run_name": "run", "run_id": "id-1", "stage_name": "stage"}
    names[where] = name
    tracker = create_tracker({"kind": "tensorboard", "log_dir": log_dir}, output_path=output)
    tracker.init(**names)
    tracker.log({name: Image(np.zeros((2, 3, 3))), "loss": 0.5, f"{name}/text": name}, step=1)
    report = tracker.close()
    assert report is not None and report.backends[0].failed == 0, report


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("where", ["stage_name", "run_name", "run_id"])
def test_no_file_outside_the_output_path(tmp_path: Path, case: str, where: str) -> None:
    name = hostile_names(tmp_path)[case]
    output = tmp_path / "out"
    log_a_run(output, name, where=where)

    assert files_outside(tmp_path, [output]) == []
    assert directories_outside(tmp_path, [output]) == []
    runs = read_runs(output / "tensorboard_logs").Runs()
    assert len(runs) == 1, runs  # one TensorBoard run, one directory right below log_dir
    [(run, tags)] = runs.items()
    assert "/" not in run and tags["scalars"] == ["loss"]


@pytest.mark.parametrize("case", NAMES)
def test_a_stage_is_one_directory_named_after_it(tmp_path: Path, case: str) -> None:
    stage = hostile_names(tmp_path)[case]
    output = tmp_path / "out"
    log_a_run(output, stage, where="stage_name")

    log_dir = output / "tensorboard_logs"
    (directory,) = log_dir.iterdir()
    assert len(directory.name.encode()) <= 200
    if re.fullmatch(r".*~[0-9a-f]{16}", directory.name):
        assert len(stage.encode()) > 150  # only a long name is shortened (with a hash)
    else:
        assert urllib.parse.unquote(directory.name) == stage  # percent-encoded, reversibly
    multiplexer = read_runs(log_dir)
    assert f"run `run/{stage}`" in config_text(multiplexer, directory.name)


@pytest.mark.parametrize("stage", ["train", "finetune-2", "模型", "with space", "v1.0"])
def test_a_plain_stage_name_is_the_directory_name(tmp_path: Path, stage: str) -> None:
    log_a_run(tmp_path, stage, where="stage_name")

    assert [path.name for path in (tmp_path / "tensorboard_logs").iterdir()] == [stage]
    assert list(read_runs(tmp_path / "tensorboard_logs").Runs()) == [stage]


def test_distinct_stages_get_distinct_directories(tmp_path: Path) -> None:
    stages = ["a/b", "a%2Fb", "a_b", ".", "%2E", "", "x" * 1000, "x" * 1001]
    log_dir = tmp_path / "shared"
    for index, stage in enumerate(stages):  # one output path holds one run
        log_a_run(tmp_path / f"out{index}", stage, where="stage_name", log_dir=str(log_dir))

    # the empty stage is "no stage": its events go to log_dir itself
    assert len(read_runs(log_dir).Runs()) == len(stages)


@pytest.mark.parametrize("log_dir", ["absolute", "../sibling"])
def test_a_configured_log_dir_is_used_as_written(tmp_path: Path, log_dir: str) -> None:
    # log_dir is configuration, not data: the user chose it, even outside the output path
    output = tmp_path / "out"
    configured = str(tmp_path / "elsewhere") if log_dir == "absolute" else log_dir
    tracker = create_tracker({"kind": "tensorboard", "log_dir": configured}, output_path=output)
    tracker.init(run_name="run", stage_name="train")
    tracker.log({"loss": 0.5})
    tracker.close()

    expected = tmp_path / ("elsewhere" if log_dir == "absolute" else "sibling")
    assert list(read_runs(expected).Runs()) == ["train"]
