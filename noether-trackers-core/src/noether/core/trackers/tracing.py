"""``NOETHER_TRACKERS_TRACE``: the switch that traces plugin hook calls and backend calls.

Set to anything but empty or ``0``, the registry prints every plugin hook call to stderr
(``registry.py``) and every backend's worker prints one line per backend call
(``_engine/worker.py``, :class:`~noether.core.trackers._engine.worker.CallTracer`).
"""

from __future__ import annotations

import os

#: The environment variable that turns tracing on.
TRACE_ENV_VAR = "NOETHER_TRACKERS_TRACE"


def tracing() -> bool:
    """Whether :data:`TRACE_ENV_VAR` asks for tracing (read when a registry or a worker is
    made, so that one that does not trace pays nothing per call)."""
    return os.environ.get(TRACE_ENV_VAR, "") not in ("", "0")
