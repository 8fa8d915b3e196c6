"""A real offline W&B run, read back from the ``.wandb`` file wandb writes.

One run is shared by every test here (starting wandb costs about a second): it logs scalars,
NaN and inf, text, images, a histogram and a table, an evaluation at an earlier step, a repeated
step and a "resumed" stretch, sets a summary and closes. The tests check what W&B would show
after ``wandb sync``: history rows with their steps, config, summary, media, run identity and
exit code; and that the run left no process, thread or file behind.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backends_of import backend_of
from omegaconf import OmegaConf
from PIL import Image as PILImage
from stored_configs import user_config

from noether.core.trackers import Histogram, Image, Table, create_tracker
from noether.core.trackers.redaction import REDACTED
from noether_trackers_wandb import WandBTracker

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
GREY = np.array([[0, 64], [128, 255]], dtype=np.uint8)
HISTOGRAM_VALUES = np.linspace(-1.0, 1.0, 1001)
TRAIN_STEPS = range(10)
RESUMED_STEPS = (5, 6)  # logged again after step 9, as a run resumed from a checkpoint would


@dataclass
class SharedRun:
    """Everything the tests need to know about the shared run."""

    backend: WandBTracker
    records: Any
    output: Path
    w_and_b_dir: Path
    processes_while_running: dict[int, str]
    wandb_core_command: list[str]
    threads_before: set[threading.Thread]
    threads_after: set[threading.Thread]
    streams_before: tuple[Any, ...]
    streams_during: tuple[Any, ...]
    streams_after: tuple[Any, ...]
    files: list[Path]
    init_seconds: float
    close_seconds: float


def _streams() -> tuple[Any, ...]:
    return (sys.stdout, sys.stderr, sys.exit, sys.excepthook)


@pytest.fixture(scope="module")
def shared(module_sandbox: Any, helpers: Any) -> SharedRun:
    output = module_sandbox.root / "out"
    w_and_b_dir = module_sandbox.root / "wandb-dir"
    config = OmegaConf.create(
        {
            "optimizer": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.999]},
            "schedule": None,
            "layers": [64, 64],
            "wandb_api_key": "s3cret-value",
            "data": {"token": "hf_abc", "max_tokens": 512, "root": "${optimizer.name}-data"},
        }
    )
    tracker = create_tracker(
        {
            "kind": "wandb",
            "project": "noether-tests",
            "entity": "team",
            "mode": "offline",
            "group": "sweep-1",
            "tags": ["baseline", "offline"],
            "notes": "read back from disk",
            "dir": str(w_and_b_dir),
        },
        output_path=output,
    )
    backend = backend_of(tracker, WandBTracker)
    threads_before = set(threading.enumerate())
    streams_before = _streams()
    started = time.monotonic()
    tracker.init(run_name="demo", run_id="run-1", stage_name="train", config=config)
    init_seconds = time.monotonic() - started
    streams_during = _streams()
    processes = helpers.wandb_processes()
    core = [pid for pid, name in processes.items() if name == "wandb-core"]
    command = Path(f"/proc/{core[0]}/cmdline").read_bytes().split(b"\0") if core else []

    for step in TRAIN_STEPS:
        tracker.log({"train/loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
    tracker.log({"val/accuracy": 0.75, "val/loss": 0.4}, step=4)  # evaluation, earlier step
    tracker.log({"train/extra": 5.0}, step=9)  # repeated step
    for step in RESUMED_STEPS:
        tracker.log({"train/loss": 0.01 * step}, step=step)
    tracker.log(
        {
            "train/grad_norm": float("nan"),
            "train/overflow": float("inf"),
            "train/underflow": float("-inf"),
            "samples/text": "the quick brown fox",
            "media/rgb": Image(RGB, caption="an RGB image"),
            "media/grey": Image(GREY),
            "media/histogram": Histogram(HISTOGRAM_VALUES, bins=1000),
            "media/table": Table(["id", "score", "label"], [[1, 0.5, "a"], [2, math.nan, None]]),
        },
        step=10,
    )
    tracker.update_summary({"best_epoch": 3, "note": "ok"})
    started = time.monotonic()
    tracker.close(status="finished")
    close_seconds = time.monotonic() - started
    return SharedRun(
        backend=backend,
        records=helpers.run_file(backend.run_dir),
        output=output,
        w_and_b_dir=w_and_b_dir,
        processes_while_running=processes,
        wandb_core_command=[part.decode() for part in command],
        threads_before=threads_before,
        threads_after=set(threading.enumerate()),
        streams_before=streams_before,
        streams_during=streams_during,
        streams_after=_streams(),
        files=module_sandbox.files(),
        init_seconds=init_seconds,
        close_seconds=close_seconds,
    )


def rows_with(shared: SharedRun, key: str) -> list[dict[str, Any]]:
    return [row for row in shared.records.history() if key in row]


# ---- 2. a faithful run ------------------------------------------------------------------------


def test_one_run_named_after_run_and_stage_with_run_id(shared: SharedRun) -> None:
    run = shared.records.run
    assert run.run_id == "run-1"
    assert run.display_name == "demo/train"
    assert run.job_type == "train"
    assert (run.project, run.entity, run.run_group) == ("noether-tests", "team", "sweep-1")
    assert list(run.tags) == ["baseline", "offline"]
    assert run.notes == "read back from disk"
    assert shared.backend.run_dir is not None
    assert shared.backend.run_dir.parent == shared.w_and_b_dir / "wandb"
    assert shared.backend.run_dir.name.startswith("offline-run-")
    assert shared.backend.run_dir.name.endswith("-run-1")


def test_config_is_intact_and_redacted(shared: SharedRun) -> None:
    assert user_config(shared.records.config()) == {
        "optimizer": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.999]},
        "schedule": None,
        "layers": [64, 64],
        "wandb_api_key": REDACTED,
        "data": {"token": REDACTED, "max_tokens": 512, "root": "adamw-data"},
    }


def test_scalars_keep_their_steps(shared: SharedRun) -> None:
    loss = [(row["global_step"], row["train/loss"]) for row in rows_with(shared, "train/loss")]
    expected = [(step, 1.0 / (step + 1)) for step in TRAIN_STEPS]
    expected += [(step, 0.01 * step) for step in RESUMED_STEPS]
    assert loss == expected
    assert [row["lr"] for row in rows_with(shared, "lr")] == [0.1] * len(TRAIN_STEPS)


def test_nan_and_inf_are_values(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "train/grad_norm")
    assert math.isnan(row["train/grad_norm"])
    assert row["train/overflow"] == math.inf
    assert row["train/underflow"] == -math.inf
    assert row["global_step"] == 10


def test_text_is_a_text_value(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "samples/text")
    assert row["samples/text"] == "the quick brown fox"


def _media_file(shared: SharedRun, reference: dict[str, Any]) -> Path:
    assert shared.backend.run_dir is not None
    path = shared.backend.run_dir / "files" / str(reference["path"])
    assert path.is_file(), path
    return path


def test_images_are_wandb_images_pixel_for_pixel(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "media/rgb")
    rgb, grey = row["media/rgb"], row["media/grey"]
    assert rgb["_type"] == grey["_type"] == "image-file"
    assert (rgb["width"], rgb["height"]) == (5, 4)
    with PILImage.open(io.BytesIO(_media_file(shared, rgb).read_bytes())) as decoded:
        assert np.array_equal(np.asarray(decoded.convert("RGB")), RGB)
    with PILImage.open(io.BytesIO(_media_file(shared, grey).read_bytes())) as decoded:
        assert np.array_equal(np.asarray(decoded.convert("L")), GREY)


def test_image_caption_is_kept(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "media/rgb")
    assert row["media/rgb"]["caption"] == "an RGB image"


def test_histogram_is_a_wandb_histogram_within_its_bin_limit(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "media/histogram")
    histogram = row["media/histogram"]
    assert histogram["_type"] == "histogram"
    # 1000 bins are more than W&B takes (512): pairs of neighbours are merged, counts exact
    counts, edges = np.histogram(HISTOGRAM_VALUES, bins=1000)
    assert histogram["values"] == (counts[0::2] + counts[1::2]).tolist()
    assert histogram["bins"] == pytest.approx(edges[0::2].tolist())


def test_table_is_a_wandb_table(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "media/table")
    reference = row["media/table"]
    assert reference["_type"] == "table-file"
    table = json.loads(_media_file(shared, reference).read_text())
    assert table["columns"] == ["id", "score", "label"]
    assert table["data"][0] == [1, 0.5, "a"]
    assert table["data"][1][0] == 2 and math.isnan(table["data"][1][1])
    assert table["data"][1][2] is None


def test_summary_has_user_values_and_end_of_run_summary(shared: SharedRun) -> None:
    summary = shared.records.summary()
    assert summary["best_epoch"] == 3
    assert summary["note"] == "ok"
    assert summary["train/loss/min"] == pytest.approx(0.05)
    assert summary["train/loss/last"] == pytest.approx(0.06)
    assert summary["val/accuracy/max"] == 0.75
    assert summary["val/loss/min"] == 0.4
    assert summary["lr/last"] == 0.1
    assert "lr/min" not in summary and "lr/max" not in summary
    assert summary["train/overflow/last"] == math.inf
    assert summary["train/underflow/last"] == -math.inf


def test_summary_nan(shared: SharedRun) -> None:
    summary = shared.records.summary()
    # W&B's own summary of a logged key (its last value) keeps NaN...
    assert math.isnan(summary["train/grad_norm"])
    # ...but wandb's Python summary encoder turns a NaN it is given into null
    # (wandb.util.json_friendly); W&B shows it as empty. A W&B limitation, not a lost key.
    assert summary["train/grad_norm/last"] is None


def test_finished_run_has_exit_code_zero(shared: SharedRun) -> None:
    assert shared.records.exit_code == 0


# ---- 3. steps ----------------------------------------------------------------------------------


def test_every_metric_is_plotted_against_the_step_metric(shared: SharedRun) -> None:
    metrics = {
        metric.glob_name or metric.name: metric for metric in shared.records.of_type("metric")
    }
    assert metrics["*"].step_metric == "global_step"
    assert "global_step" in metrics


def test_evaluation_at_an_earlier_step_arrives(shared: SharedRun) -> None:
    (row,) = rows_with(shared, "val/accuracy")
    assert (row["global_step"], row["val/accuracy"], row["val/loss"]) == (4, 0.75, 0.4)
    # logged after step 9: W&B's own step moved on, so nothing was dropped
    last_train = rows_with(shared, "train/loss")[len(TRAIN_STEPS) - 1]
    assert row["_step"] > last_train["_step"]


def test_repeated_and_resumed_steps_arrive(shared: SharedRun) -> None:
    (extra,) = rows_with(shared, "train/extra")
    assert (extra["global_step"], extra["train/extra"]) == (9, 5.0)
    resumed = rows_with(shared, "train/loss")[len(TRAIN_STEPS) :]
    assert [row["global_step"] for row in resumed] == list(RESUMED_STEPS)
    w_and_b_steps = [row["_step"] for row in shared.records.history()]
    assert w_and_b_steps == sorted(set(w_and_b_steps)), "W&B's own step only ever increases"


# ---- 5. clean processes ------------------------------------------------------------------------


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_wandb_service_ran_and_is_gone_after_close(shared: SharedRun, helpers: Any) -> None:
    assert "wandb-core" in shared.processes_while_running.values()
    assert helpers.alive(list(shared.processes_while_running), grace=2.0) == []
    assert helpers.wandb_processes() == {}
    assert helpers.wandb_singleton() is None


def test_offline_service_reports_nothing_over_the_network(shared: SharedRun) -> None:
    assert "--no-observability" in shared.wandb_core_command


def test_no_thread_is_left_after_close(shared: SharedRun) -> None:
    left = {thread.name for thread in shared.threads_after - shared.threads_before}
    assert left == set()


def test_the_training_process_keeps_its_exit_hooks(shared: SharedRun) -> None:
    # wandb replaces sys.exit and sys.excepthook while its service runs: in the delivery
    # process, never in the training process
    assert shared.streams_during == shared.streams_before == shared.streams_after


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_exit_hooks_are_restored_with_thread_delivery(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "wandb", "mode": "offline"}, output_path=tmp_path / "out")
    before = _streams()
    tracker.init(run_name="hooks")
    during = _streams()
    tracker.close()
    assert during[2:] != before[2:]  # wandb's service replaced them while it ran ...
    assert _streams() == before  # ... and they are back


def test_files_only_in_the_w_and_b_and_cache_directories(shared: SharedRun) -> None:
    outside = [
        path
        for path in shared.files
        if path.parts[0] not in ("wandb-dir", "cache")
        and not (path.parts[0] == "out" and "wandb" not in str(path))  # the core's own files
    ]
    assert outside == []
    assert any(path.parts[0] == "wandb-dir" for path in shared.files)
    assert all(path.parts[0] != "home" for path in shared.files)


def test_artifact_staging_stays_in_the_run_directory(shared: SharedRun) -> None:
    # a logged Table is also staged as a W&B artifact; wandb would put that under ~/.local
    assert shared.backend.run_dir is not None
    staged = list((shared.backend.run_dir / "data" / "artifacts" / "staging").iterdir())
    assert staged


def test_start_and_close_are_quick(shared: SharedRun) -> None:
    assert shared.init_seconds < 15
    assert shared.close_seconds < 10
