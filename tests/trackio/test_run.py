"""A run, read back through Trackio's own storage: values and steps, media, config, summary."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from noether.core.trackers import Histogram, Image, Table, Tracker, create_tracker

Make = Callable[..., Tracker]


def test_every_value_is_stored_with_its_step(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker()
    tracker.init(run_name="values")
    tracker.log({"loss": 0.5, "accuracy": 0.9})  # the seed's call: step 0
    tracker.log({"loss": 0.25, "note": "halfway"}, step=10)
    tracker.log({"count": 7, "flag": True, "nested": {"depth": np.float32(1.5)}})  # step 11
    tracker.close()

    assert store.logs("proj", "values") == [
        {"loss": 0.5, "accuracy": 0.9, "step": 0},
        {"loss": 0.25, "note": {"_type": "trackio.markdown", "_value": "halfway"}, "step": 10},
        {"count": 7, "flag": 1, "nested/depth": 1.5, "step": 11},
    ]
    assert [run["name"] for run in store.runs("proj")] == ["values"]


def test_media_become_trackio_image_histogram_and_table(make_tracker: Make, store: Any) -> None:
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    grey = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    samples = np.random.default_rng(0).normal(size=500)
    histogram = Histogram(samples, bins=16)
    tracker = make_tracker()
    tracker.init(run_name="media")
    tracker.log(
        {
            "rgb": Image(rgb, caption="gradient"),
            "grey": Image(grey),
            "weights": histogram,
            "predictions": Table(["id", "label", "score"], [[1, "cat", 0.9], [2, "dog", 0.4]]),
        },
        step=3,
    )
    tracker.close()

    (row,) = store.logs("proj", "media")
    assert row["step"] == 3
    assert row["rgb"]["_type"] == "trackio.image" and row["rgb"]["caption"] == "gradient"
    with PILImage.open(store.media(row["rgb"]["file_path"])) as png:
        assert np.array_equal(np.asarray(png.convert("RGB")), rgb)
    with PILImage.open(store.media(row["grey"]["file_path"])) as png:
        assert np.array_equal(np.asarray(png.convert("L")), Image(grey).pixels[:, :, 0])
    assert row["weights"] == {
        "_type": "trackio.histogram",
        "bins": histogram.edges.tolist(),
        "values": histogram.counts.tolist(),
    }
    assert row["predictions"] == {
        "_type": "trackio.table",
        "_value": [
            {"id": 1, "label": "cat", "score": 0.9},
            {"id": 2, "label": "dog", "score": 0.4},
        ],
    }


def test_config_is_the_redacted_hyperparameters(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker()
    tracker.init(
        run_name="config",
        config={
            "lr": 0.001,
            "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
            "api_key": "hf_secret",
            "wandb": {"token": "abc"},
            "_target_": "models.Net",  # Trackio reserves top-level "_" keys
        },
    )
    tracker.log({"loss": 1.0})
    tracker.close()

    config = store.config("proj", "config")
    assert config["lr"] == 0.001
    assert config["optimizer"] == {"name": "adam", "betas": [0.9, 0.999]}
    assert config["api_key"] == "***REDACTED***"
    assert config["wandb"] == {"token": "***REDACTED***"}
    assert config["cfg_target_"] == "models.Net"
    assert "hf_secret" not in str(config) and "abc" not in str(config)
    assert {"_Username", "_Created", "_Group"} <= set(config)  # Trackio's own entries


def test_summary_with_best_and_last_values_is_in_the_run_config(
    make_tracker: Make, store: Any
) -> None:
    tracker = make_tracker()
    tracker.init(run_name="summary", config={"lr": 0.1})
    for step, (loss, accuracy) in enumerate([(0.9, 0.1), (0.3, 0.7), (0.5, 0.6)]):
        tracker.log({"train/loss": loss, "val/accuracy": accuracy, "lr": 0.1 / (step + 1)})
    tracker.set_summary("test/accuracy", 0.66)
    tracker.update_summary({"best_epoch": 1, "notes": "fine"})
    tracker.close()

    config = store.config("proj", "summary")
    assert config["lr"] == 0.1
    assert config["summary"] == {
        "test/accuracy": 0.66,
        "best_epoch": 1,
        "notes": "fine",
        "train/loss/min": 0.3,
        "train/loss/last": 0.5,
        "val/accuracy/max": 0.7,
        "val/accuracy/last": 0.6,
        "lr/last": 0.1 / 3,
        "_status": "finished",
    }
    # Written in place: no row is added for it.
    assert [row["step"] for row in store.logs("proj", "summary")] == [0, 1, 2]


def test_nan_and_inf_are_kept(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker()
    tracker.init(run_name="nonfinite")
    tracker.log({"loss": float("nan"), "grad_norm": float("inf"), "margin": -math.inf})
    tracker.log({"loss": 0.5, "grad_norm": np.float64("nan")})
    tracker.close()

    first, second = store.logs("proj", "nonfinite")
    assert math.isnan(first["loss"]) and first["grad_norm"] == math.inf
    assert first["margin"] == -math.inf
    assert second["loss"] == 0.5 and math.isnan(second["grad_norm"])
    summary = store.config("proj", "nonfinite")["summary"]
    # Trackio's JSON spells non-finite numbers as strings inside nested config values.
    assert summary["loss/min"] == 0.5 and summary["loss/last"] == 0.5
    assert summary["grad_norm/last"] == "NaN" and summary["margin/last"] == "-Infinity"


def test_an_evaluation_at_an_earlier_step_is_kept(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker()
    tracker.init(run_name="eval")
    for step in range(10):
        tracker.log({"train/loss": 1.0 / (step + 1)}, step=step)
    tracker.log({"val/loss": 0.42}, step=5)  # computed later, belongs to step 5
    tracker.log({"train/loss": 0.05}, step=9)  # the same step again
    tracker.log({"train/loss": 0.04})  # continues after the highest step
    tracker.close()

    rows = store.logs("proj", "eval")
    assert [(row["step"], row.get("val/loss")) for row in rows if "val/loss" in row] == [(5, 0.42)]
    train = [(row["step"], row["train/loss"]) for row in rows if "train/loss" in row]
    assert train == [(s, 1.0 / (s + 1)) for s in range(10)] + [(9, 0.05), (10, 0.04)]


def test_values_logged_just_before_close_are_on_disk(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker()
    tracker.init(run_name="burst")
    for step in range(2000):
        tracker.log({"loss": float(step)})
    tracker.log({"final": 123.0})
    tracker.close()

    rows = store.logs("proj", "burst")
    assert len(rows) == 2001
    assert [row["loss"] for row in rows[:-1]] == [float(step) for step in range(2000)]
    assert rows[-1] == {"final": 123.0, "step": 2000}


def test_two_runs_of_a_project_one_after_the_other(make_tracker: Make, store: Any) -> None:
    for name, scale in (("first", 1.0), ("second", 2.0), ("second", 3.0)):
        tracker = make_tracker()
        tracker.init(run_name=name, config={"scale": scale})
        for step in range(3):
            tracker.log({"loss": scale * step})
        tracker.close()

    records = store.runs("proj")
    assert [record["name"] for record in records] == ["first", "second", "second"]
    assert len({record["id"] for record in records}) == 3  # same name, yet separate runs
    for record, scale in zip(records, (1.0, 2.0, 3.0), strict=True):
        rows = store.logs("proj", record["name"], run_id=record["id"])
        assert [(row["step"], row["loss"]) for row in rows] == [(s, scale * s) for s in range(3)]
        config = store.config("proj", record["name"], run_id=record["id"])
        assert config["scale"] == scale
        assert config["summary"]["loss/last"] == scale * 2


def test_a_stage_is_its_own_run_grouped_under_the_run_name(make_tracker: Make, store: Any) -> None:
    for stage in ("pretrain", "finetune"):
        tracker = make_tracker()
        tracker.init(run_name="exp", stage_name=stage)
        tracker.log({"loss": 1.0})
        tracker.close()

    assert [record["name"] for record in store.runs("proj")] == [
        "exp/pretrain",
        "exp/finetune",
    ]
    assert store.config("proj", "exp/finetune")["_Group"] == "exp"


def test_name_and_group_options_override_the_defaults(make_tracker: Make, store: Any) -> None:
    tracker = make_tracker(name="baseline", group="sweep-7")
    tracker.init(run_name="ignored-for-the-name")
    tracker.log({"loss": 1.0})
    tracker.close()

    assert [record["name"] for record in store.runs("proj")] == ["baseline"]
    assert store.config("proj", "baseline")["_Group"] == "sweep-7"


def test_a_run_that_logged_nothing_still_shows_its_config_and_status(
    make_tracker: Make, store: Any
) -> None:
    tracker = make_tracker()
    with pytest.raises(RuntimeError), tracker:
        tracker.init(run_name="crashed", config={"lr": 0.5})
        raise RuntimeError("diverged before the first step")

    assert [record["name"] for record in store.runs("proj")] == ["crashed"]
    config = store.config("proj", "crashed")
    assert config["lr"] == 0.5 and config["summary"] == {"_status": "failed"}
    assert store.logs("proj", "crashed") == [{"step": 0}]


def test_resume_allow_continues_the_named_run(make_tracker: Make, store: Any) -> None:
    for attempt in range(2):
        tracker = make_tracker(name="long-job", resume="allow")
        tracker.init(run_name="job")
        tracker.log({"loss": float(attempt)}, step=attempt)
        tracker.close()

    (record,) = store.runs("proj")
    assert [(row["step"], row["loss"]) for row in store.logs("proj", "long-job")] == [
        (0, 0.0),
        (1, 1.0),
    ]
    assert store.config("proj", "long-job")["summary"]["loss/last"] == 1.0
    assert record["name"] == "long-job"


def test_the_callers_own_trackio_run_is_left_alone(make_tracker: Make, store: Any) -> None:
    import trackio

    from noether_trackers_trackio import use_trackio_dir

    with use_trackio_dir():
        own = trackio.init(project="mine", name="own", embed=False)
        try:
            tracker = make_tracker()
            tracker.init(run_name="tracked")
            tracker.log({"loss": 1.0})
            tracker.close()
            trackio.log({"mine": 2.0})  # still goes to the caller's current run
        finally:
            trackio.finish()

    assert own.name == "own"
    assert store.logs("mine", "own") == [{"mine": 2.0, "step": 0}]
    assert store.logs("proj", "tracked") == [{"loss": 1.0, "step": 0}]


def test_a_jsonl_store_gets_the_summary_through_the_run(
    make_tracker: Make, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trackio's mode for network filesystems: rows go to JSONL fragments that the dashboard
    # imports, so the summary travels with a row of its own.
    monkeypatch.setenv("TRACKIO_STORAGE_MODE", "jsonl")
    tracker = make_tracker()
    tracker.init(run_name="jsonl", config={"lr": 0.1})
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)})
    tracker.close()

    from trackio import fragments

    from noether_trackers_trackio import use_trackio_dir

    with use_trackio_dir(store.directory):
        fragments.import_inbox_dir()  # what `trackio show` does before reading
    assert store.logs("proj", "jsonl") == [
        {"loss": 1.0, "step": 0},
        {"loss": 0.5, "step": 1},
        {"loss": 1 / 3, "step": 2},
        {"step": 2},
    ]
    config = store.config("proj", "jsonl")
    assert config["lr"] == 0.1
    assert config["summary"] == {"loss/min": 1 / 3, "loss/last": 1 / 3, "_status": "finished"}


def test_a_resumed_run_continues_its_trackio_run(tmp_path: Path, store: Any) -> None:
    """The same run id in the same output path (a restarted job) continues the Trackio run."""
    for attempt in range(2):
        tracker = create_tracker({"kind": "trackio", "project": "proj"}, tmp_path / "out")
        tracker.init(run_name="restarted", run_id="job-7")
        assert tracker.run is not None and tracker.run.resumed == (attempt == 1)
        tracker.log({"loss": float(attempt)})  # steps continue: 0, then 1
        tracker.close()
    assert [run["name"] for run in store.runs("proj")] == ["restarted"]  # one run, continued
    assert [(row["step"], row["loss"]) for row in store.logs("proj", "restarted")] == [
        (0, 0.0),
        (1, 1.0),
    ]
    assert store.config("proj", "restarted")["summary"]["loss/min"] == 0.0
