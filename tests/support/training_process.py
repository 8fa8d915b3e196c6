"""Driving ``train_until_signalled.py`` in a subprocess, for the preemption and crash tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().with_name("train_until_signalled.py")


def start_training(
    output: Path, mode: str, env: dict[str, str], tracker: dict[str, Any] | None = None
) -> subprocess.Popen[str]:
    """Start the training script (see its docstring) and wait until its tracker is running."""
    command = [sys.executable, str(SCRIPT), str(output), mode]
    if tracker is not None:
        command.append(json.dumps(tracker))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read()  # type: ignore[union-attr]
    return process


def signal_after(process: subprocess.Popen[str], seconds: float, signum: int) -> int:
    """Let it train for ``seconds``, send ``signum``, and return its exit status."""
    time.sleep(seconds)
    process.send_signal(signum)
    status = process.wait(timeout=60)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return status


def terminate_after(process: subprocess.Popen[str], seconds: float) -> int:
    """:func:`signal_after` with SIGTERM, as SLURM preempts a job."""
    return signal_after(process, seconds, signal.SIGTERM)


class StepReader(threading.Thread):
    """Reads the steps a training subprocess prints, with the time each was seen."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process, self.seen = process, list[tuple[float, int]]()

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.seen.append((time.monotonic(), int(line)))
