"""Every value type through a fan-out of all four backends, read back from each store, and W&B
cleaning up in a fan-out exactly as when alone: no table artifact left in wandb's process-wide
cache, no temporary copy, no thread (the leak issue 11 describes guarded here)."""

from __future__ import annotations

import csv
import importlib
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from wandb_file import WandbRunFile

from noether.core.trackers import Histogram, Image, Table, Tracker, create_tracker
from noether_trackers_csv.tracker import CsvTracker
from noether_trackers_trackio import TrackioTracker, use_trackio_dir
from noether_trackers_wandb import WandBTracker

SECTION = [
    {"kind": "tensorboard"},
    {"kind": "wandb", "mode": "offline"},
    {"kind": "trackio", "project": "fanout-every-value"},
    {"kind": "csv"},
]


def cached_artifact_names() -> list[str]:
    """Names of the artifacts in wandb's process-wide artifact caches."""
    module = importlib.import_module("wandb.sdk.artifacts.artifact_instance_cache")
    caches = [getattr(module, name) for name in dir(module) if name.startswith("artifact_")]
    return [
        str(getattr(artifact, "name", ""))
        for cache in caches
        if isinstance(cache, dict)
        for artifact in cache.values()
    ]


def test_every_value_reaches_every_backend_and_w_and_b_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # wandb writes a table's temporary copy to the system temp dir: make that one we can see
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.chdir(tmp_path)
    threads_before = set(threading.enumerate())
    tracker = create_tracker(SECTION, tmp_path / "out")
    assert type(tracker) is Tracker and len(tracker.backends) == 4
    tracker.init(run_name="every-value", run_id="fan-1")
    # every backend was started with the run's own information, exactly as when alone (in the
    # delivery process: a copy of it, equal to it)
    assert all(backend.run == tracker.run for backend in tracker.backends)  # type: ignore[attr-defined]
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    tracker.log({"loss": 0.5, "note": "hello"}, step=0)
    tracker.log(
        {
            "sample": Image(pixels),
            "weights": Histogram(np.linspace(-1, 1, 101), bins=8),
            "preds": Table(["a", "b"], [[1, "x"], [2, "y"]]),
        },
        step=1,
    )
    tracker.set_summary("best_epoch", 3)
    report = tracker.close()
    assert report.complete  # and one report per backend, each of its own calls:
    assert [(r.backend, r.offered, r.delivered) for r in report.backends] == [
        (name, 6, 6)  # start, two logs, a summary, the final summary, close
        for name in ("TensorboardTracker", "WandBTracker", "TrackioTracker", "CsvTracker")
    ]

    _, wandb_backend, trackio, csv_backend = tracker.backends
    assert isinstance(wandb_backend, WandBTracker) and wandb_backend.run_dir is not None
    assert isinstance(trackio, TrackioTracker) and isinstance(csv_backend, CsvTracker)
    assert trackio.run_name is not None and csv_backend.path is not None

    # TensorBoard
    events = EventAccumulator(
        str(tmp_path / "out" / "tensorboard_logs"),
        size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0},
    )
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(0, 0.5)]
    assert [e.step for e in events.Images("sample")] == [1]
    assert [e.step for e in events.Histograms("weights")] == [1]
    assert {"note", "preds", "summary"} <= set(events.Tags()["tensors"])

    # W&B, from the .wandb file
    [path] = wandb_backend.run_dir.glob("run-*.wandb")
    run_file = WandbRunFile.read(path)
    rows = run_file.history()
    assert [row["loss"] for row in rows if "loss" in row] == [0.5]
    media = next(row for row in rows if "sample" in row)
    assert media["sample"]["_type"] == "image-file"
    assert media["weights"]["_type"] == "histogram"
    assert media["preds"]["_type"] == "table-file"
    assert run_file.summary()["best_epoch"] == 3
    # ... and nothing of it left behind in this process
    assert wandb_backend.wandb_run_id is not None
    assert not [name for name in cached_artifact_names() if wandb_backend.wandb_run_id in name]
    assert not list(temporary.rglob("*.table.json"))
    left = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert not left, left

    # Trackio, through its own storage API
    from trackio.sqlite_storage import SQLiteStorage

    assert trackio.directory is not None
    with use_trackio_dir(trackio.directory):  # trackio read its store once, when imported
        logs = SQLiteStorage.get_logs("fanout-every-value", trackio.run_name)
    assert [log["loss"] for log in logs if "loss" in log] == [0.5]
    assert any("sample" in log and "weights" in log and "preds" in log for log in logs)

    # the CSV example: scalars and text, the rest skipped for it alone
    with csv_backend.path.open() as stream:
        rows_csv = list(csv.DictReader(stream))
    assert {"record": "scalar", "step": "0", "key": "loss", "value": "0.5"} in rows_csv
    assert {"record": "text", "step": "0", "key": "note", "value": "hello"} in rows_csv
    assert not any(row["key"] in ("sample", "weights", "preds") for row in rows_csv)


def test_w_and_b_beside_another_backend_leaves_no_table_artifact_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leak issue 11 reported: ``tracker: [wandb, csv]`` with a Table left the W&B table
    artifact in wandb's process-wide cache, because a backend in a fan-out never learnt its
    run. Each backend now starts with the run's information, alone or not."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    tracker = create_tracker([{"kind": "wandb", "mode": "offline"}, {"kind": "csv"}], tmp_path)
    tracker.init(run_name="leak", run_id="leak-1")
    tracker.log({"preds": Table(["a", "b"], [[1, "x"], [2, "y"]])}, step=0)
    assert tracker.close().complete
    wandb_backend, _ = tracker.backends
    assert isinstance(wandb_backend, WandBTracker) and wandb_backend.run == tracker.run
    assert wandb_backend.wandb_run_id is not None
    assert not [name for name in cached_artifact_names() if wandb_backend.wandb_run_id in name]
    assert not list(temporary.rglob("*.table.json"))
