"""The example CSV plugin: no run id, run name, stage name or metric key puts a file outside the
output path, and each run's file is read back by the run id it stands for."""

from __future__ import annotations

import csv
import urllib.parse
from pathlib import Path

import pytest
from hostile_names import directories_outside, files_outside, hostile_names

from noether.core.trackers import create_tracker

NAMES = hostile_names(Path("/ROOT"))  # the ids only; each test builds names for its own root


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("where", ["run_id", "run_name", "stage_name"])
def test_no_file_outside_the_output_path(tmp_path: Path, case: str, where: str) -> None:
    name = hostile_names(tmp_path)[case]
    output = tmp_path / "out"
    names = {"run_name": "run", "run_id": "id-1", "stage_name": "stage", where: name}
    tracker = create_tracker({"kind": "csv"}, output_path=output)
    tracker.init(**names)
    tracker.log({name: 0.5, f"{name}/text": name}, step=2)
    tracker.close()

    assert files_outside(tmp_path, [output]) == []
    assert directories_outside(tmp_path, [output]) == []
    (path,) = (output / "csv_logs").iterdir()
    if where == "run_id" and len(name) < 100:
        assert urllib.parse.unquote(path.name) == f"{name}.csv"  # percent-encoded, reversibly
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if row["step"] == "2"]
    assert [(row["key"], row["value"]) for row in rows] == [
        (name, "0.5"),
        (f"{name}/text", name),
    ]


def test_a_plain_run_id_is_the_file_name(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "csv"}, output_path=tmp_path)
    tracker.init(run_name="run", run_id="abc-123")
    tracker.close()

    assert [path.name for path in (tmp_path / "csv_logs").iterdir()] == ["abc-123.csv"]
