"""Names are data: no run name, stage name, run id or metric key puts a file outside the
Trackio store or the output path, and the run is read back through Trackio's own storage under
the name it shows (the user's name wherever that name is a harmless path)."""

from __future__ import annotations

import logging
import re
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile_names import directories_outside, files_outside, hostile_names
from PIL import Image as PILImage

from noether.core.trackers import Image, create_tracker

NAMES = hostile_names(Path("/ROOT"))  # the ids only; each test builds names for its own root
#: Names Trackio gets unchanged: nothing in them leads out of a directory.
KEPT = {"newline", "unicode", "percent", "tilde", "variable", "trailing-slash"}
#: As a stage (shown as ``run/<stage>``), an absolute path is harmless too: ``run//tmp/x``.
KEPT_AS_STAGE = {*KEPT, "absolute"}
PIXELS = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def log_a_run(output: Path, store: Path, name: str, *, where: str) -> str:
    """A run with ``name`` as its run name, stage or run id (``where``) that logs an image, a
    scalar and text, with ``name`` in their keys too; returns the run's display name."""
    names: dict[str, Any] = {"run_name": "run", "run_id": "id-1", "stage_name": None}
    names[where] = name
    tracker = create_tracker(
        {"kind": "trackio", "project": "proj", "trackio_dir": str(store)}, output_path=output
    )
    tracker.init(**names)
    tracker.log({name: Image(PIXELS), f"{name}/loss": 0.5, f"{name}/text": name}, step=3)
    report = tracker.close()
    assert report is not None and report.backends[0].failed == 0, report
    assert tracker.run is not None
    return tracker.run.display_name


def only_run(reader: Any) -> dict[str, Any]:
    (record,) = reader.runs("proj")
    result: dict[str, Any] = record
    return result


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("where", ["run_name", "stage_name", "run_id"])
def test_no_file_outside_the_store_or_the_output_path(
    tmp_path: Path, isolated_environment: Path, store: Any, case: str, where: str
) -> None:
    name = hostile_names(tmp_path)[case]
    output, custom = tmp_path / "out", tmp_path / "store"
    log_a_run(output, custom, name, where=where)

    assert files_outside(tmp_path, [output, custom]) == []
    assert directories_outside(tmp_path, [output, custom]) == []
    assert files_outside(isolated_environment, []) == []  # nothing in HOME, caches, ...
    reader = type(store)(custom)
    record = only_run(reader)
    (row,) = reader.logs("proj", record["name"], run_id=record["id"])
    assert row["step"] == 3 and row[f"{name}/loss"] == 0.5
    image = reader.media(row[name]["file_path"])
    assert image.resolve().is_relative_to((custom / "media").resolve())
    with PILImage.open(image) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), PIXELS)


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("where", ["run_name", "stage_name"])
def test_the_run_keeps_the_users_name_where_it_can(
    tmp_path: Path, store: Any, caplog: pytest.LogCaptureFixture, case: str, where: str
) -> None:
    name = hostile_names(tmp_path)[case]
    with caplog.at_level(logging.WARNING, logger="noether.trackers.trackio"):
        shown = log_a_run(tmp_path / "out", tmp_path / "store", name, where=where)

    stored = only_run(type(store)(tmp_path / "store"))["name"]
    renamed = [r.getMessage() for r in caplog.records if "cannot be a path" in r.getMessage()]
    if case in (KEPT if where == "run_name" else KEPT_AS_STAGE):
        assert stored == shown and renamed == []
    else:
        assert "/" not in stored and len(stored.encode()) <= 200  # one directory in the store
        if re.fullmatch(r".*~[0-9a-f]{16}", stored):
            assert len(shown.encode()) > 150  # only a long name is shortened (with a hash)
        else:
            assert urllib.parse.unquote(stored) == shown  # percent-encoded, reversibly
        assert len(renamed) == 1 and repr(stored) in renamed[0]


def test_a_renamed_run_is_resumed_under_the_same_name(tmp_path: Path, store: Any) -> None:
    output, custom = tmp_path / "out", tmp_path / "store"
    for step in (1, 2):  # a restarted job: same output path, same run id
        tracker = create_tracker(
            {"kind": "trackio", "project": "proj", "trackio_dir": str(custom)}, output
        )
        tracker.init(run_name="../../exp", run_id="job-1")
        tracker.log({"loss": float(step)}, step=step)
        tracker.close()

    record = only_run(type(store)(custom))
    rows = type(store)(custom).logs("proj", record["name"], run_id=record["id"])
    assert [(row["step"], row["loss"]) for row in rows] == [(1, 1.0), (2, 2.0)]
