"""Sending what Trackio prints to ``logging`` instead of the training log.

Trackio announces itself with ``print()`` (project banners, dashboard hints, "Run finished").
Inside :func:`prints_to_logging`, lines printed *by the calling thread* become INFO records of
the given logger, ANSI colours removed. ``sys.stdout`` is swapped for a router while at least
one such block is open, and the router passes every other thread's output straight through,
so the training loop's own prints are never captured or reordered.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_install_lock = threading.Lock()
_open_blocks = 0
_local = threading.local()


class _StdoutRouter:
    """Stands in for ``sys.stdout``: captured threads go to a logger, others to the original."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        logger: logging.Logger | None = getattr(_local, "logger", None)
        if logger is None:
            return self.original.write(text)
        pending: str = getattr(_local, "pending", "") + text
        *lines, _local.pending = pending.split("\n")
        for line in lines:
            _emit(logger, line)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty(), fileno(), ...: whatever the real stream answers.
        return getattr(self.original, name)


def _emit(logger: logging.Logger, line: str) -> None:
    text = _ANSI.sub("", line).strip()
    if text:
        logger.info("%s", text)


@contextmanager
def prints_to_logging(logger: logging.Logger) -> Iterator[None]:
    """Turn this thread's ``print()`` output into INFO records of ``logger`` in the block."""
    global _open_blocks
    if sys.stdout is None:  # pythonw and friends: print() already goes nowhere
        yield
        return
    with _install_lock:
        if not isinstance(sys.stdout, _StdoutRouter):
            sys.stdout = _StdoutRouter(sys.stdout)
        router = sys.stdout
        _open_blocks += 1
    outer = getattr(_local, "logger", None)
    _local.logger = logger
    try:
        yield
    finally:
        leftover = getattr(_local, "pending", "")
        _local.pending = ""
        _local.logger = outer
        if leftover:
            _emit(logger, leftover)
        with _install_lock:
            _open_blocks -= 1
            # Only undo our own swap: if someone replaced stdout meanwhile, theirs stays.
            if not _open_blocks and sys.stdout is router and isinstance(router, _StdoutRouter):
                sys.stdout = router.original
