"""The delivery engine: off the training thread, fan-out, failure isolation, the journal,
preemption. Faulty backends are fault-injection fakes; TensorBoard is the real one."""

from __future__ import annotations

import errno
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from stored_configs import user_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_process import StepReader, start_training

from noether.core.trackers import Histogram, Image, Table, TrackerConfigError, create_tracker
from noether.core.trackers.delivery import DeliverySettings
from noether.core.trackers.journal import JOURNAL_FILE, read_journal
from recording_plugins import RecordingTracker

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def tensorboard_losses(log_dir: Path, tag: str = "loss") -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return (
        [(event.step, event.value) for event in events.Scalars(tag)]
        if tag in events.Tags()["scalars"]
        else []
    )


def journal_logs(run_dir: Path) -> list[dict[str, Any]]:
    return [record for record in read_journal(run_dir) if record["op"] == "log"]


def report_of(tracker: Any, label: str) -> Any:
    [report] = [r for r in tracker.delivery_report.backends if r.backend == label]
    return report


def test_a_raising_backend_never_stops_training_or_the_others(
    registry: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker(
        [{"kind": "raising"}, {"kind": "tensorboard"}], tmp_path, registry=registry
    )
    tracker.init(run_name="r")
    for step in range(200):
        tracker.log({"loss": float(step)})
    report = tracker.close()
    assert report is not None and not report.complete
    assert [step for step, _ in tensorboard_losses(tmp_path / "tensorboard_logs")] == list(
        range(200)
    )
    assert [record["values"]["loss"] for record in journal_logs(tmp_path)] == [
        float(s) for s in range(200)
    ]
    raising = report_of(tracker, "RaisingTracker")
    assert raising.failed == 200 and "backend exploded at step 0" in raising.first_error
    assert report_of(tracker, "TensorboardTracker").lost == 0
    tracebacks = [
        r for r in caplog.records if r.levelname == "ERROR" and "RaisingTracker" in r.getMessage()
    ]
    assert len(tracebacks) == 1 and "Traceback" in tracebacks[0].getMessage()  # reported once
    assert "RaisingTracker: 200 of" in report.describe()


def test_a_hanging_backend_blocks_neither_training_nor_close(registry: Any, tmp_path: Path) -> None:
    tracker = create_tracker(
        [{"kind": "hanging"}, {"kind": "tensorboard"}], tmp_path, registry=registry
    )
    tracker.init(run_name="r")
    started = time.perf_counter()
    for step in range(1000):
        tracker.log({"loss": float(step)})
    logging_time = time.perf_counter() - started
    started = time.monotonic()
    report = tracker.close(timeout=2)
    closing_time = time.monotonic() - started
    assert logging_time < 1.0  # 1000 calls; a blocked loop would never finish
    assert 1.5 <= closing_time <= 3.0
    assert report is not None
    hanging = report_of(tracker, "HangingTracker")
    assert hanging.undelivered_at_close >= 1000  # every call but the one it is stuck in, + close
    assert len(tensorboard_losses(tmp_path / "tensorboard_logs")) == 1000
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["loss/last"] == 999.0


def test_a_backend_that_falls_behind_reads_its_overflow_back_from_the_journal(
    registry: Any, tmp_path: Path
) -> None:
    # the engine's back-pressure, looked at from inside (it runs the same in a delivery process)
    settings = DeliverySettings(queue_capacity=20, mode="thread")
    tracker = create_tracker(
        [{"kind": "slow"}, {"kind": "tensorboard"}], tmp_path, registry=registry, delivery=settings
    )
    tracker.init(run_name="r")
    [slow_worker, _] = tracker._engine.workers  # type: ignore[union-attr]
    longest_queue = 0
    started = time.perf_counter()
    for step in range(300):
        tracker.log(
            {"loss": float(step), "img": Image(np.full((2, 2), step % 256, dtype=np.uint8))}
        )
        longest_queue = max(longest_queue, len(slow_worker.queue))
    logging_time = time.perf_counter() - started
    tracker.update_summary({"note": "end"})
    report = tracker.close(timeout=60)
    assert logging_time < 1.5  # the slow backend needs 300 x 5 ms: the loop did not wait for it
    assert longest_queue <= 22  # memory stays bounded: capacity plus one span
    assert report is not None and report.complete
    slow = tracker.backends[0]
    assert isinstance(slow, RecordingTracker)
    logged = slow.logged()
    assert [step for _, step in logged] == list(range(300))  # every call, in order
    assert [values["loss"] for values, _ in logged] == [float(step) for step in range(300)]
    assert all(values["img"].pixels[0, 0, 0] == step % 256 for values, step in logged)
    summaries = [args for name, args in slow.calls if name == "summary"]
    assert summaries[0] == {"note": "end"} and summaries[-1]["loss/last"] == 299.0
    assert len(tensorboard_losses(tmp_path / "tensorboard_logs")) == 300


def test_a_hanging_backend_keeps_memory_bounded(registry: Any, tmp_path: Path) -> None:
    tracker = create_tracker(
        [{"kind": "hanging"}, {"kind": "tensorboard"}],
        tmp_path,
        registry=registry,
        # the engine's memory bound, looked at from inside (the same in a delivery process)
        delivery=DeliverySettings(queue_capacity=50, mode="thread"),
    )
    tracker.init(run_name="r")
    [hanging_worker, _] = tracker._engine.workers  # type: ignore[union-attr]
    for step in range(2000):
        tracker.log({"loss": float(step)})
    assert len(hanging_worker.queue) <= 51
    report = tracker.close(timeout=1)
    assert report is not None and report_of(tracker, "HangingTracker").undelivered_at_close >= 2000
    assert len(journal_logs(tmp_path)) == 2000  # nothing is lost: the journal has it all


def test_a_backend_on_a_full_disk(registry: Any, tmp_path: Path) -> None:
    assert os.path.exists("/dev/full"), "this test writes to the always-full device /dev/full"
    tracker = create_tracker(
        [{"kind": "full-disk"}, {"kind": "tensorboard"}], tmp_path, registry=registry
    )
    tracker.init(run_name="r")
    for step in range(50):
        tracker.log({"loss": float(step)})
    tracker.close()
    full = report_of(tracker, "FullDiskTracker")
    assert full.failed == 50 and f"[Errno {errno.ENOSPC}]" in full.first_error
    assert len(tensorboard_losses(tmp_path / "tensorboard_logs")) == 50


def test_eight_threads_each_call_reaches_every_backend_once_in_order(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker(
        [{"kind": "recorder", "name": "a"}, {"kind": "recorder", "name": "b"}],
        tmp_path,
        registry=registry,
    )
    tracker.init(run_name="threads")
    calls = 10_000

    def work(thread: int) -> None:
        for index in range(calls):
            tracker.log({f"thread{thread}": index})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = tracker.close(timeout=60)
    assert report is not None and report.complete
    for backend in tracker.backends:
        assert isinstance(backend, RecordingTracker)
        logged = backend.logged()
        assert len(logged) == 8 * calls
        assert sorted(step for _, step in logged) == list(range(8 * calls))  # one step per call
        for thread in range(8):
            sequence = [
                values[f"thread{thread}"] for values, _ in logged if f"thread{thread}" in values
            ]
            assert sequence == list(range(calls))
    assert len(journal_logs(tmp_path)) == 8 * calls


def test_a_backend_that_fails_to_start_stops_the_run_before_training(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker(
        [{"kind": "tensorboard"}, {"kind": "failing-init"}], tmp_path, registry=registry
    )
    with pytest.raises(TrackerConfigError) as caught:
        tracker.init(run_name="r")
    message = str(caught.value)
    assert (
        "tracker[1] (FailingInitTracker): failed to start: PermissionError: invalid API key"
        in message
    )
    assert "required: false" in message
    assert tracker.status == "failed"


def test_required_false_continues_without_the_backend(
    registry: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker(
        [{"kind": "tensorboard"}, {"kind": "failing-init", "required": False}],
        tmp_path,
        registry=registry,
    )
    tracker.init(run_name="r")
    tracker.log({"loss": 1.0})
    report = tracker.close()
    assert report is not None and report.complete
    assert "continuing without it" in caplog.text
    assert len(tensorboard_losses(tmp_path / "tensorboard_logs")) == 1


def test_journal_holds_every_call_and_reads_back(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)
    tracker.init(
        run_name="j", run_id="id-7", stage_name="train", config={"lr": 0.1, "api_key": "sk"}
    )
    pixels = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    tracker.log({"loss": float("nan"), "acc": math.inf, "note": "hi"}, step=3)
    tracker.log(
        {
            "img": Image(pixels, caption="c"),
            "hist": Histogram([1, 2, 3], bins=3),
            "table": Table(["a"], [[np.float32(1.5)]]),
        },
        step=1,
    )
    tracker.set_summary("best", 2)
    tracker.close(status="interrupted")
    records = list(read_journal(tmp_path))
    assert [r["op"] for r in records] == ["journal", "init", "log", "log", "summary", "close"]
    init = records[1]
    assert (init["run_name"], init["run_id"], init["stage_name"]) == ("j", "id-7", "train")
    assert user_config(init["config"]) == {"lr": 0.1, "api_key": "***REDACTED***"}
    first, second = records[2], records[3]
    assert (
        first["step"] == 3
        and math.isnan(first["values"]["loss"])
        and first["values"]["acc"] == math.inf
    )
    assert first["values"]["note"] == "hi" and first["t"] > 0
    image = second["values"]["img"]
    assert np.array_equal(image.pixels, pixels) and image.caption == "c"
    assert list(second["values"]["hist"].counts) == [1, 1, 1]
    assert second["values"]["table"].rows == [[1.5]]
    assert records[4]["values"] == {"best": 2}
    close = records[5]
    assert (
        close["status"] == "interrupted"
        and close["summary"]["best"] == 2
        and close["undelivered"] == {}
    )
    assert math.isnan(close["summary"]["loss/last"])


def test_journal_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)
    tracker.init(run_name="torn", run_id="torn")
    tracker.log({"loss": 1.0})
    tracker.close()
    with (tmp_path / JOURNAL_FILE).open("a") as stream:
        stream.write('{"op":"log","t":1,"step":9,"val')
    assert [r["op"] for r in read_journal(tmp_path)][-1] == "close"
    resumed = create_tracker({"kind": "tensorboard"}, tmp_path)  # appending never glues onto it
    resumed.init(run_name="torn", run_id="torn")
    resumed.log({"loss": 2.0})
    resumed.close()
    assert [r["values"]["loss"] for r in journal_logs(tmp_path)] == [1.0, 2.0]


def test_sigterm_closes_every_backend_and_exits_as_terminated(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start_training(tmp_path, "plain", subprocess_env)
    reader = StepReader(process)
    reader.start()
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM, process.stderr.read()  # type: ignore[union-attr]
    reader.join(timeout=5)
    last_printed = reader.seen[-1][1]
    steps_in_journal = [record["step"] for record in journal_logs(tmp_path)]
    assert steps_in_journal[: last_printed + 1] == list(range(last_printed + 1))
    assert [
        step for step, _ in tensorboard_losses(tmp_path / "tensorboard_logs")
    ] == steps_in_journal
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == "terminated"
    assert list(read_journal(tmp_path))[-1]["status"] == "terminated"


def test_sigterm_chains_the_users_own_handler(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start_training(tmp_path, "user-handler", subprocess_env)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 7
    assert (tmp_path / "user_handler_ran").read_text() == "yes"
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == "terminated"


def test_sigkill_leaves_a_journal_with_all_but_the_last_second(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start_training(tmp_path, "plain", subprocess_env)
    reader = StepReader(process)
    reader.start()
    time.sleep(2.5)
    killed_at = time.monotonic()
    process.kill()
    process.wait(timeout=30)
    reader.join(timeout=5)
    logged_a_second_before = max(step for seen, step in reader.seen if seen <= killed_at - 1.0)
    steps = [record["step"] for record in journal_logs(tmp_path)]  # parses despite the kill
    assert steps[: logged_a_second_before + 1] == list(range(logged_a_second_before + 1))


@pytest.mark.parametrize(("mode", "status"), [("exit", "finished"), ("crash", "failed")])
def test_an_unclosed_tracker_is_closed_at_interpreter_exit(
    tmp_path: Path, subprocess_env: dict[str, str], mode: str, status: str
) -> None:
    process = start_training(tmp_path, mode, subprocess_env)
    process.wait(timeout=60)
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == status
    assert len(tensorboard_losses(tmp_path / "tensorboard_logs")) == 100
