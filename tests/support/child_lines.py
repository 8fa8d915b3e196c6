"""A test's child process: starting a script in one, reading what it prints line by line until
it says a given word, and ending it; running a job of several processes to its end."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(
    process: subprocess.Popen[bytes],
    word: str,
    timeout: float = 60.0,
    context: Callable[[], str] = lambda: "",
) -> list[str]:
    """The lines ``process`` prints up to the one starting with ``word``; fails after
    ``timeout`` seconds or when it ends first, with ``context()`` (its log, say) in the
    message."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    buffer = b""
    while not lines or not lines[-1].startswith(word):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"it did not say {word!r} in time: {lines}\n{context()}"
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            continue
        data = os.read(process.stdout.fileno(), 65536)
        assert data, f"it ended ({process.wait()}) before saying {word!r}: {lines}\n{context()}"
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        lines += [line.decode() for line in complete]
    return lines


def start_script(
    folder: Path, source: str, arguments: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``source`` as ``folder/child.py`` with ``arguments`` in a child process whose
    stdout :func:`wait_for` reads (``env``: added to this process's environment)."""
    script = folder / "child.py"
    script.write_text(source)
    return subprocess.Popen(
        [sys.executable, str(script), *arguments],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


def end(child: subprocess.Popen[bytes], how: signal.Signals = signal.SIGKILL) -> None:
    """Send ``how`` (SIGKILL) to ``child`` unless it has ended, then reap it."""
    if child.poll() is None:
        child.send_signal(how)
    child.wait()
    assert child.stdout is not None
    child.stdout.close()


def run_job(
    command: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a launcher and the processes it starts: torchrun and its ranks, a
    DDP trainer and its second rank) to its end, in a session of its own whose every process
    is killed afterwards, whatever happened: a rank left waiting must not outlive the test."""
    job = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = job.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    return subprocess.CompletedProcess(command, job.returncode, stdout, stderr)
