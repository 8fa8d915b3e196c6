"""``NOETHER_TRACKERS_TRACE=1`` traces every backend call on stderr: one line per call naming
the backend, the method, the step of a ``_log`` and how long it took; also from a delivery
process, whose stderr is the training process's. Unset, nothing is traced and a worker calls
its backend directly."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from noether.core.trackers._engine import worker
from noether.core.trackers._engine.worker import BackendWorker, deliver
from noether.core.trackers.base import NoopTracker
from noether.core.trackers.records import CloseCall, LogRecord, StartCall
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.tracing import TRACE_ENV_VAR
from noether.core.trackers.values import Value

TRAINING = """
import os, sys
from noether.core.trackers import create_tracker
tracker = create_tracker({"kind": "tensorboard"}, sys.argv[1])
tracker.init(run_name="traced", run_id="traced-1")
for step in range(3):
    tracker.log({"loss": float(step)})
tracker.update_summary({"best": 1.0, "note": "x"})
if sys.argv[2] == "flush":
    tracker.flush()
tracker.log({"last": 1.0})  # just before close: taken after the last flush
tracker.close()
print("training pid", os.getpid(), "delivery", tracker.delivery_mode)
"""

#: One trace line: pid, run, backend (label and class), method, duration.
TRACE_LINE = re.compile(
    r"^noether-trackers trace: pid (?P<pid>\d+) run (?P<run>\S+): "
    r"(?P<label>\S+) \((?P<cls>[\w.]+)(?:, (?P<path>[^)]+))?\) (?P<method>_\w+(?: [^:]+)?): "
    r"(?P<ms>\d+\.\d{3}) ms$"
)


def run_training(
    tmp_path: Path, env: dict[str, str], mode: str, flush: bool = True
) -> tuple[str, list[str]]:
    """Run a short training in a child process; its stdout and its trace lines."""
    env = {**env, "NOETHER_TRACKERS_DELIVERY": mode}
    result = subprocess.run(
        [sys.executable, "-c", TRAINING, str(tmp_path / "run"), "flush" if flush else "-"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "noether-trackers trace" in line]
    return result.stdout, lines


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_every_backend_call_is_traced_on_stderr(
    tmp_path: Path, subprocess_env: dict[str, str], mode: str
) -> None:
    stdout, lines = run_training(tmp_path, {**subprocess_env, TRACE_ENV_VAR: "1"}, mode)
    training_pid = int(stdout.split()[2])
    assert f"delivery {mode}" in stdout

    parsed = [TRACE_LINE.match(line) for line in lines]
    assert all(parsed), lines
    calls = [match.groupdict() for match in parsed if match]
    assert {call["label"] for call in calls} == {"TensorboardTracker"}
    assert {call["cls"] for call in calls} == {
        "noether_trackers_tensorboard.tracker.TensorboardTracker"
    }
    assert {call["run"] for call in calls} == {"traced"}
    methods = [call["method"] for call in calls]
    assert methods[0] == "_init"
    assert [m for m in methods if m.startswith("_log")] == [
        "_log step=0",
        "_log step=1",
        "_log step=2",
        "_log step=3",
    ]
    assert "_update_summary" in methods  # update_summary() of two values
    assert "_update_summary (end-of-run summary)" in methods
    assert "_flush" in methods
    assert methods[-1] == "_close status=finished"
    assert all(float(call["ms"]) >= 0 for call in calls)
    # with process delivery the lines come from the delivery process, through the stderr it
    # shares with the training process
    pids = {int(call["pid"]) for call in calls}
    if mode == "process":
        assert training_pid not in pids and len(pids) == 1
    else:
        assert pids == {training_pid}


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_a_closed_backend_gets_no_further_call(
    tmp_path: Path, subprocess_env: dict[str, str], mode: str
) -> None:
    # no flush() before close(): the calls taken since the backend's last _flush are made
    # durable by its _close, never by a _flush after it
    _, lines = run_training(tmp_path, {**subprocess_env, TRACE_ENV_VAR: "1"}, mode, flush=False)
    methods = [match["method"] for match in map(TRACE_LINE.match, lines) if match]
    assert methods[-1] == "_close status=finished", methods
    assert methods.count("_close status=finished") == 1


def test_nothing_is_traced_without_the_variable(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    subprocess_env.pop(TRACE_ENV_VAR, None)
    _, lines = run_training(tmp_path, subprocess_env, "process")
    assert lines == []


def test_a_worker_that_does_not_trace_calls_its_backend_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TRACE_ENV_VAR, raising=False)
    quiet = BackendWorker(NoopTracker(), "NoopTracker")
    assert quiet._tracer is None and quiet._deliver is deliver
    for value in ("", "0"):
        monkeypatch.setenv(TRACE_ENV_VAR, value)
        assert not worker.tracing()
    monkeypatch.setenv(TRACE_ENV_VAR, "1")
    assert BackendWorker(NoopTracker(), "NoopTracker")._tracer is not None


def test_a_trace_names_where_the_yaml_configured_the_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRACE_ENV_VAR, "1")
    traced = BackendWorker(NoopTracker(), "NoopTracker", config_path="tracker[1]")
    assert traced._tracer is not None
    assert traced._tracer.backend_name == (
        "NoopTracker (noether.core.trackers.base.NoopTracker, tracker[1])"
    )


def test_a_failing_call_is_traced_with_what_it_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TRACE_ENV_VAR, "1")

    class Failing(NoopTracker):
        def _flush(self) -> None:
            raise OSError("disk full")

    traced = BackendWorker(Failing(), "Failing")
    assert traced._tracer is not None
    with pytest.raises(OSError):
        traced._tracer.flush(traced.backend)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("noether-trackers trace: pid ")
    assert re.search(r"Failing\) _flush: \d+\.\d{3} ms, raised OSError$", line), line


def test_a_worker_never_flushes_a_closed_backend(tmp_path: Path) -> None:
    # The calls taken since the last _flush are kept by _close (its contract): the worker
    # queues log, close and stop at once, so its calls run dry only after _close.
    class Recording(NoopTracker):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def _init(self, run: RunInfo) -> None:
            self.calls.append("_init")

        def _log(self, values: Mapping[str, Value], step: int) -> None:
            self.calls.append("_log")

        def _flush(self) -> None:
            self.calls.append("_flush")

        def _close(self, status: RunStatus) -> None:
            self.calls.append("_close")

    backend = Recording()
    closing = BackendWorker(backend, "Recording")
    for call in (
        StartCall(RunInfo("run", "run-1", None, {}, tmp_path)),
        LogRecord(0, {"loss": 1.0}, 0.0),
        CloseCall("finished"),
    ):
        closing.offer(call)
    closing.stop()
    closing._thread.start()  # what start() does, after the calls are queued
    closing._thread.join(10)
    assert backend.calls == ["_init", "_log", "_close"]
    assert closing.settled() and closing.flushed_at == closing.taken == 1
