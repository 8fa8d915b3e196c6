"""Faults around delivery: signals during close, ignored signals, backends that exit or hang
in ``_init``, a journal whose disk fills up or stalls, runs without a journal, out-of-range
steps. Faulty backends are fault-injection fakes; TensorBoard is the real one."""

from __future__ import annotations

import json
import logging
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import Image, TrackerConfigError, create_tracker
from noether.core.trackers._engine.journal_writer import JournalWriter
from noether.core.trackers.delivery import DeliverySettings
from noether.core.trackers.journal import JOURNAL_FILE, read_journal
from noether.core.trackers.records import LogRecord, Record

CLOSING = Path(__file__).resolve().parents[1] / "support" / "closing_process.py"


def start(output: Path, mode: str, env: dict[str, str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CLOSING), str(output), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **options,
    )


def logged_steps(run_dir: Path) -> list[int]:
    return [record["step"] for record in read_journal(run_dir) if record["op"] == "log"]


def tensorboard_steps(log_dir: Path) -> list[int]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars("loss")]


def wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == expected, process.stderr.read() if process.stderr else line


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str]:
    """Wait for ``process``; its exit status and what it wrote to stderr."""
    status = process.wait(timeout=timeout)
    _, stderr = process.communicate()
    return status, stderr


# ---- signals around close() ------------------------------------------------------------------


def test_sigterm_while_close_waits_for_a_slow_backend_loses_nothing(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start(tmp_path, "slow-close", subprocess_env)
    wait_for_line(process, "closing")
    time.sleep(1.0)  # close() is now waiting for the backend's 5 s _close
    process.send_signal(signal.SIGTERM)
    status, stderr = finish(process)
    assert status == -signal.SIGTERM, stderr
    records = list(read_journal(tmp_path))
    assert logged_steps(tmp_path) == list(range(100))
    assert records[-1]["op"] == "close" and records[-1]["summary"]["loss/last"] == 0.01
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/min"] == 0.01 and summary["_status"] == "finished"
    assert tensorboard_steps(tmp_path / "tensorboard_logs") == list(range(100))


def test_sigterm_after_close_ends_the_process_with_everything_kept(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start(tmp_path, "slow-close", subprocess_env)
    wait_for_line(process, "closing")
    wait_for_line(process, "closed")
    process.send_signal(signal.SIGTERM)
    status, stderr = finish(process)
    assert status == -signal.SIGTERM, stderr
    assert logged_steps(tmp_path) == list(range(100))
    assert list(read_journal(tmp_path))[-1]["status"] == "finished"
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == "finished"


def test_sigkill_while_close_waits_loses_nothing_logged_before(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    process = start(tmp_path, "slow-close", subprocess_env)
    wait_for_line(process, "closing")
    time.sleep(2.0)
    process.kill()
    finish(process)
    assert logged_steps(tmp_path) == list(range(100))  # all logged more than 2 s before
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/last"] == 0.01 and not list(tmp_path.glob(".*.tmp"))


def test_an_ignored_sigterm_stays_ignored(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    process = start(tmp_path, "ignored", subprocess_env)
    wait_for_line(process, "ready")
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.7)  # it trains on, and its tracker with it
    (tmp_path / "stop").touch()
    status, stderr = finish(process)
    assert status == 0, stderr
    steps = logged_steps(tmp_path)
    assert steps == list(range(len(steps))) and len(steps) > 300
    assert list(read_journal(tmp_path))[-1]["status"] == "finished"
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == "finished"
    assert "ignored" not in stderr  # no "log() after close() is ignored" warnings


# ---- backends that exit or never start -------------------------------------------------------


def test_a_backend_raising_system_exit_in_log_is_an_ordinary_failure(
    registry: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker({"kind": "exiting"}, tmp_path, registry=registry)
    tracker.init(run_name="exit")
    for step in range(10):
        tracker.log({"loss": float(step)})
    report = tracker.close()
    [backend] = tracker.backends
    assert [step for _, step in backend.logged()] == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # type: ignore[attr-defined]
    assert backend.calls[-1] == ("close", "finished")  # type: ignore[attr-defined]
    assert report is not None and [r.failed for r in report.backends] == [1]
    assert "SystemExit: the backend library gave up" in (report.backends[0].first_error or "")
    assert any("ExitingTracker failed in _log" in r.getMessage() for r in caplog.records)


def test_a_backend_raising_system_exit_in_init_fails_the_start(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker(
        [{"kind": "exiting-init"}, {"kind": "recorder"}], tmp_path, registry=registry
    )
    with pytest.raises(TrackerConfigError, match=r"tracker\[0\] \(ExitingInitTracker\): failed"):
        tracker.init(run_name="exit")


def test_a_backend_that_failed_to_start_gets_no_further_calls(
    registry: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker({"kind": "failing-init"}, tmp_path, registry=registry)
    with caplog.at_level(logging.WARNING), pytest.raises(TrackerConfigError):
        tracker.init(run_name="bad key")
    [backend] = tracker.backends
    assert backend.calls == []  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_hanging_required_init_raises_within_init_timeout_plus_a_second(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker(
        [{"kind": "hanging-init"}, {"kind": "tensorboard"}],
        tmp_path,
        registry=registry,
        delivery=DeliverySettings(init_timeout=2),
    )
    started = time.monotonic()
    with pytest.raises(TrackerConfigError, match="did not return within 2"):
        tracker.init(run_name="hang")
    assert time.monotonic() - started <= 3.0


# ---- nowhere to spill: no journal, a journal that fills up or stalls --------------------------


def log_in_a_thread(tracker: Any, calls: int, within: float = 30.0) -> None:
    """Log ``calls`` steps on another thread; fail if they do not all return in ``within``."""
    thread = threading.Thread(target=lambda: [tracker.log({"x": step}) for step in range(calls)])
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "log() blocked"


def test_without_a_journal_a_hung_backend_loses_its_oldest_calls_not_the_loop(
    registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker(
        [{"kind": "hanging"}, {"kind": "recorder"}],
        None,
        registry=registry,
        # the engine's policy, with a 1 s close: threads, so that the close is all it measures
        delivery=DeliverySettings(queue_capacity=1000, mode="thread"),
    )
    tracker.init(run_name="no journal")
    log_in_a_thread(tracker, 30_000)
    report = tracker.close(timeout=1)
    assert report is not None and not report.complete
    hanging, recorder = report.backends
    assert (
        hanging.dropped >= 30_000 - 1000 - 1 and hanging.lost == hanging.offered - hanging.delivered
    )
    got = [step for _, step in tracker.backends[1].logged()]  # type: ignore[attr-defined]
    assert got == sorted(got) and len(got) + recorder.dropped == 30_000  # in order, counted
    assert "no journal to spill to" in report.describe()
    warnings = [r.getMessage() for r in caplog.records if "dropping its oldest" in r.getMessage()]
    assert len([w for w in warnings if "HangingTracker" in w]) == 1  # one warning per backend


def test_a_stalled_journal_makes_log_drop_calls_not_wait(
    registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk_answers = threading.Event()
    write = JournalWriter.write

    def hanging_write(self: JournalWriter, record: Record) -> tuple[int, int]:
        if isinstance(record, LogRecord) and record.step >= 10:
            disk_answers.wait()
        return write(self, record)

    monkeypatch.setattr(JournalWriter, "write", hanging_write)
    tracker = create_tracker(
        {"kind": "recorder"},
        tmp_path,
        registry=registry,
        # the journal is patched in this process: the engine must run here
        delivery=DeliverySettings(queue_capacity=100, handover_timeout=0.5, mode="thread"),
    )
    tracker.init(run_name="stalled")
    try:
        log_in_a_thread(tracker, 400)
    finally:
        disk_answers.set()
    report = tracker.close()
    assert report is not None and report.dropped_at_handover > 0 and not report.complete
    assert "dropped before delivery" in report.describe()


def test_a_journal_that_fills_up_keeps_what_a_slow_backend_still_needs_in_order(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    limit = 300_000  # bytes: the journal fills up after about 3,000 of the 20,000 calls

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = start(tmp_path, "journal-limit", subprocess_env, preexec_fn=limit_file_size)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    result = json.loads(stdout.splitlines()[-1])
    steps = result["steps"]
    assert steps == sorted(set(steps))  # in order, none twice
    assert result["failed"] == 0  # nothing read back half-written
    assert len(steps) + result["dropped"] == 20_000 and result["undelivered"] == 0
    assert "File too large" in result["journal_error"]
    assert "journal stopped being written" in stderr and "has it all" not in stderr
    journal = (tmp_path / JOURNAL_FILE).read_bytes()
    assert len(journal) <= limit and journal.endswith(b"\n")
    assert all(json.loads(line) for line in journal.splitlines())  # no half-written record


def test_steps_outside_signed_64_bit_raise_at_the_call(registry: Any) -> None:
    tracker = create_tracker({"kind": "recorder"}, None, registry=registry)
    tracker.init(run_name="big")
    for step in (2**63, np.uint64(2**63), 10**30):
        with pytest.raises(ValueError, match="at most 9223372036854775807"):
            tracker.log({"x": 1}, step=step)  # type: ignore[arg-type]
    tracker.log({"x": 1}, step=2**63 - 1)
    with pytest.raises(ValueError, match="largest step"):
        tracker.log({"x": 2})
    tracker.close()
    [backend] = tracker.backends
    assert [step for _, step in backend.logged()] == [2**63 - 1]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="at most"):
        create_tracker({"kind": "recorder"}, None, registry=registry).init(
            run_name="r", resume_step=2**63
        )


def test_a_huge_summary_is_written_within_the_close_timeout(registry: Any, tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "recorder"}, tmp_path, registry=registry)
    tracker.init(run_name="wide")
    tracker.log({f"layer{index}/loss": float(index) for index in range(100_000)})
    started = time.monotonic()
    report = tracker.close(timeout=8)
    assert time.monotonic() - started <= 9  # a liveness bound, not a speed measurement
    assert report is not None and report.complete
    # (reading 200,000 entries back with PyYAML takes longer than writing them)
    lines = (tmp_path / "summary.yaml").read_text().splitlines()
    assert len(lines) == 200_001 and lines[-1] == "_status: finished"
    assert "layer99999/loss/min: 99999.0" in lines
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "config.yaml",
        "journal.jsonl",
        "summary.yaml",
    ]  # no temporary file left behind


def test_a_resumed_run_never_overwrites_an_earlier_runs_image(
    registry: Any, tmp_path: Path
) -> None:
    for value in (0, 255):  # the same key at the same step, in two processes of one run
        tracker = create_tracker({"kind": "recorder"}, tmp_path, registry=registry)
        tracker.init(run_name="r", run_id="same")
        tracker.log({"img": Image(np.full((2, 2), value, dtype=np.uint8))}, step=0)
        tracker.close()
    images = [
        record["values"]["img"]
        for record in read_journal(tmp_path)
        if "img" in record.get("values", {})
    ]
    assert [int(image.pixels[0, 0, 0]) for image in images] == [0, 255]


def test_media_set_as_summary_values_do_not_cost_the_summary_file(
    registry: Any, tmp_path: Path
) -> None:
    tracker = create_tracker({"kind": "recorder"}, tmp_path, registry=registry)
    tracker.init(run_name="media summary")
    tracker.log({"loss": 0.5})
    tracker.set_summary("best_sample", Image(np.zeros((2, 2), dtype=np.uint8)))
    tracker.close()
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary == {
        "loss/min": 0.5,
        "loss/last": 0.5,
        "best_sample": "<Image>",
        "_status": "finished",
    }
