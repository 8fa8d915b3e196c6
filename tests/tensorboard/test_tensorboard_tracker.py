"""The TensorBoard plugin, read back with TensorBoard's own reader and server."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_port import free_port
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from noether.core.trackers import Histogram, Image, Table, create_tracker


def read_events(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(log_dir),
        size_guidance={
            "scalars": 0,
            "tensors": 0,
            "images": 0,
            "histograms": 0,
            "compressedHistograms": 0,
        },
    )
    accumulator.Reload()
    return accumulator


def text_of(accumulator: EventAccumulator, tag: str) -> list[tuple[int, str]]:
    return [
        (event.step, tensor_util.make_ndarray(event.tensor_proto).item().decode())
        for event in accumulator.Tensors(tag)
    ]


def scalars_of(accumulator: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    tracker = create_tracker(
        {"kind": "noether.core.trackers.TensorboardTracker", "flush_secs": 600}, tmp_path
    )
    tracker.init(
        run_name="tb", run_id="id-1", config={"lr": 0.1, "nested": {"depth": 2}, "token": "s3cret"}
    )
    for step in range(5):
        tracker.log(
            {
                "loss": 1.0 / (step + 1),
                "acc": step / 10,
                "misc": {"nan": float("nan"), "inf": math.inf},
            }
        )
    tracker.log({"eval/loss": 0.7}, step=2)  # an evaluation at an earlier step
    tracker.log({"loss": 9.0}, step=2)  # a repeated step
    tracker.log(
        {
            "note": "hello **markdown**",
            "weights": Histogram(np.arange(100), bins=10),
            "picture": Image(np.full((6, 4, 3), 0.5)),
            "table": Table(["name", "score"], [["a", 1], ["b", 2]]),
        },
        step=7,
    )
    tracker.close()  # flush_secs is long: only close() can have put the values on disk
    return tmp_path / "tensorboard_logs"


def test_scalars_read_back_with_steps_nan_inf_and_earlier_steps(run_dir: Path) -> None:
    events = read_events(run_dir)
    steps, values = zip(*scalars_of(events, "loss"), strict=True)
    assert steps == (0, 1, 2, 3, 4, 2)  # TensorBoard stores float32: compare values approximately
    assert values == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2, 9.0])
    assert scalars_of(events, "eval/loss") == [(2, pytest.approx(0.7))]
    assert all(math.isnan(value) for _, value in scalars_of(events, "misc/nan"))
    assert [value for _, value in scalars_of(events, "misc/inf")] == [math.inf] * 5


def test_all_scalars_of_one_log_call_share_one_event(run_dir: Path) -> None:
    events = read_events(run_dir)
    loss, acc = events.Scalars("loss")[:5], events.Scalars("acc")
    assert [e.wall_time for e in loss] == [e.wall_time for e in acc]


def test_text_table_histogram_and_image(run_dir: Path) -> None:
    events = read_events(run_dir)
    assert text_of(events, "note") == [(7, "hello **markdown**")]
    assert text_of(events, "table") == [(7, "| name | score |\n|---|---|\n| a | 1 |\n| b | 2 |")]
    [histogram] = events.Histograms("weights")
    assert histogram.step == 7 and histogram.histogram_value.num == 100
    assert list(histogram.histogram_value.bucket) == [10.0] * 10
    assert histogram.histogram_value.max == 99.0
    [image] = events.Images("picture")
    assert (image.step, image.width, image.height) == (7, 4, 6)
    assert image.encoded_image_string.startswith(b"\x89PNG")


def test_config_and_summary_are_written_as_text(run_dir: Path) -> None:
    events = read_events(run_dir)
    [(_, config)] = text_of(events, "config")
    assert "lr: 0.1" in config and "depth: 2" in config and "s3cret" not in config
    summary = text_of(events, "summary")[-1][1]
    assert "| loss/min | 0.2 |" in summary and "| acc/max | 0.4 |" in summary


def test_stage_writes_a_separate_tensorboard_run(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "tensorboard", "log_dir": "tb"}, tmp_path)
    tracker.init(run_name="r", stage_name="finetune")
    tracker.log({"loss": 1.0})
    tracker.close()
    assert scalars_of(read_events(tmp_path / "tb" / "finetune"), "loss") == [(0, 1.0)]


def get_json(url: str, deadline: float) -> Any:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_real_tensorboard_server_serves_the_logged_scalars(
    run_dir: Path, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(run_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load_fast",
        "false",
        "--reload_interval",
        "1",
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env
    )
    try:
        deadline = time.monotonic() + 90
        base = f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?run=.&tag="
        while True:
            points = get_json(base + "loss", deadline)
            if isinstance(points, list) and len(points) == 6:
                break
            assert time.monotonic() < deadline, f"server never served the scalars: {points}"
            time.sleep(0.5)
        assert [(step, value) for _, step, value in points][:2] == [(0, 1.0), (1, 0.5)]
        assert [step for _, step, _ in get_json(base + "eval%2Floss", deadline)] == [2]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if the server ignores SIGTERM
            server.kill()
            server.wait()
