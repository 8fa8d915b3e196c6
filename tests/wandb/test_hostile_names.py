"""Names are data: no run id, run name, stage name or metric key puts a file outside the W&B
directory (and wandb's cache), and the offline run is read back from its ``.wandb`` file under
its name, with a W&B run id that is the run id wherever W&B takes it and stable where not."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backends_of import backend_of
from hostile_names import directories_outside, files_outside, hostile_names

from noether.core.trackers import Image, Table, create_tracker
from noether_trackers_wandb import WandBTracker

NAMES = hostile_names(Path("/ROOT"))  # the ids only; each test builds names for its own root
#: Run ids W&B gets unchanged: it takes them, and they can name its files.
KEPT_IDS = {"dot", "dotdot", "tilde", "variable"}
PIXELS = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def log_a_run(output: Path, name: str, **names: str) -> Any:
    """An offline W&B run with ``names`` that logs an image, a table, a scalar and text with
    ``name`` in their keys; returns the W&B backend of the closed run."""
    tracker = create_tracker({"kind": "wandb", "mode": "offline"}, output_path=output)
    backend = backend_of(tracker, WandBTracker)
    arguments: dict[str, Any] = {"run_name": "run", "run_id": "id-1", **names}
    tracker.init(**arguments)
    tracker.log(
        {
            name: Image(PIXELS),
            f"{name}/table": Table(["k"], [[1]]),
            f"{name}/loss": 0.5,
            f"{name}/text": name,
        },
        step=3,
    )
    report = tracker.close()
    assert report is not None and report.backends[0].failed == 0, report
    return backend


def assert_nothing_outside(sandbox: Any, output: Path) -> None:
    """Every file is in the output path (W&B's directory is there) or wandb's cache."""
    assert files_outside(sandbox.root, [output, sandbox.cache]) == []
    own = [output, sandbox.cache, sandbox.home, sandbox.tmp, sandbox.cwd, sandbox.config]
    assert directories_outside(sandbox.root, own) == []


def history_row(helpers: Any, backend: Any, key: str) -> dict[str, Any]:
    (row,) = [row for row in helpers.run_file(backend.run_dir).history() if key in row]
    result: dict[str, Any] = row
    return result


@pytest.mark.parametrize("case", NAMES)
def test_a_hostile_run_id_stays_inside_and_maps_to_a_stable_w_and_b_id(
    sandbox: Any, helpers: Any, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    run_id = hostile_names(sandbox.root)[case]
    output = sandbox.root / "out"
    with caplog.at_level(logging.WARNING, logger="noether.trackers.wandb"):
        backend = log_a_run(output, "loss", run_id=run_id)

    assert_nothing_outside(sandbox, output)
    assert backend.run_dir.parent == output / "wandb"
    records = helpers.run_file(backend.run_dir)
    assert records.run.run_id == backend.wandb_run_id
    assert backend.run_dir.name.endswith(f"-{backend.wandb_run_id}")
    assert history_row(helpers, backend, "loss/loss")["loss/loss"] == 0.5
    mapped = [r.getMessage() for r in caplog.records if "not a valid W&B run id" in r.getMessage()]
    if case in KEPT_IDS:
        assert backend.wandb_run_id == run_id and mapped == []
    else:
        assert backend.wandb_run_id != run_id and len(mapped) == 1
        assert repr(backend.wandb_run_id) in mapped[0]


@pytest.mark.parametrize("case", NAMES)
def test_a_hostile_run_name_stage_and_key_stay_inside_and_are_shown(
    sandbox: Any, helpers: Any, case: str
) -> None:
    name = hostile_names(sandbox.root)[case]
    output = sandbox.root / "out"
    backend = log_a_run(output, name, run_name=name, stage_name=name)

    assert_nothing_outside(sandbox, output)
    run = helpers.run_file(backend.run_dir).run
    assert (run.run_id, run.display_name) == ("id-1", f"{name}/{name}")
    row = history_row(helpers, backend, f"{name}/loss")
    assert row[f"{name}/text"] == name  # plain values keep their key, whatever it is
    media = {value["_type"]: value for value in row.values() if isinstance(value, dict)}
    assert set(media) == {"image-file", "table-file"}  # both arrived (under a key W&B takes)
    for reference in media.values():
        path = backend.run_dir / "files" / str(reference["path"])
        assert path.is_file() and path.resolve().is_relative_to(backend.run_dir.resolve())


def test_a_mapped_run_id_resumes_the_same_w_and_b_run(sandbox: Any, helpers: Any) -> None:
    ids = []
    for attempt in range(2):  # a restarted job: same output path, same run id
        tracker = create_tracker({"kind": "wandb", "mode": "offline"}, sandbox.root / "out")
        backend = backend_of(tracker, WandBTracker)
        tracker.init(run_name="resumable", run_id="job/7: restart")
        tracker.log({"loss": float(attempt)}, step=attempt)
        tracker.close()
        records = helpers.run_file(backend.run_dir)
        ids.append(records.run.run_id)
        assert records.run.resume
        assert [row["global_step"] for row in records.history()] == [attempt]
    assert ids[0] == ids[1] == backend.wandb_run_id
    assert ids[0].startswith("job_7_restart-")
