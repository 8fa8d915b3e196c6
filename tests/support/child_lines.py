"""Reading what a test's child process prints, line by line, until it says a given word."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable


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
