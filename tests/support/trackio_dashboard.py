"""Running ``trackio show`` as a user does and asking its dashboard API what it shows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LAUNCHED = re.compile(r"launched at: (http://[^/\s]+)")


@contextmanager
def running_dashboard(
    command: str | Sequence[str], env: dict[str, str], log: Path, within: float = 60.0
) -> Iterator[str]:
    """Start ``command`` (a shell line, or an argument list), wait until its dashboard says
    where it listens and yield that URL; stop it and everything it started on the way out."""
    with log.open("w") as output:
        dashboard = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            start_new_session=True,  # the shell and trackio: stopped together below
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + within
        found = None
        while found is None and time.monotonic() < deadline and dashboard.poll() is None:
            found = LAUNCHED.search(log.read_text())
            time.sleep(0.1)
        assert found is not None, log.read_text()
        yield found.group(1)
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)
        dashboard.wait(timeout=30)


def ask(url: str, payload: dict[str, Any]) -> Any:
    """POST ``payload`` to one of the dashboard's API endpoints; its ``data``."""
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]
