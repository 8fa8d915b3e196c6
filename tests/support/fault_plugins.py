"""Fault-injection backends: trackers that raise, hang, fill the disk or refuse to start.

They exist to prove that the delivery engine isolates failures; they are not stand-ins for
real backends.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.run_info import RunInfo
from noether.core.trackers.values import Value
from recording_plugins import RecordingTracker


class RaisingTracker(RecordingTracker):
    """Raises on every ``_log``."""

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        raise RuntimeError(f"backend exploded at step {step}")


class HangingTracker(RecordingTracker):
    """Blocks forever in ``_log`` until :attr:`release` is set (by the test's teardown)."""

    release = threading.Event()

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        self.release.wait()

    def _close(self, status: Any) -> None:
        self.release.wait()


class SlowTracker(RecordingTracker):
    """Takes 5 ms per call, like a backend on a slow network."""

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        time.sleep(0.005)
        super()._log(values, step)


class FullDiskTracker(RecordingTracker):
    """Writes every value to ``/dev/full``, where every write fails with ENOSPC."""

    def _init(self, run: RunInfo) -> None:
        self.sink = open("/dev/full", "w")  # noqa: SIM115 - closed in _close

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        self.sink.write(f"{step} {values}\n")
        self.sink.flush()

    def _close(self, status: Any) -> None:
        with contextlib.suppress(OSError):  # the buffered data cannot go anywhere either
            self.sink.close()


class FailingInitTracker(RecordingTracker):
    """Refuses to start, like a backend with a bad API key."""

    def _init(self, run: RunInfo) -> None:
        raise PermissionError("invalid API key")


class SlowMemoryTracker(RecordingTracker):
    """Takes 0.2 ms per ``_log``; keeps what it gets in memory (its storage is not a disk)."""

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        time.sleep(0.0002)
        super()._log(values, step)


class HangingInitTracker(RecordingTracker):
    """Never returns from ``_init`` (until :attr:`release` is set), like a backend whose server
    does not answer."""

    release = threading.Event()

    def _init(self, run: RunInfo) -> None:
        self.calls.append(("init", run))
        self.release.wait()


class SlowCloseTracker(RecordingTracker):
    """Takes ``close_seconds`` in ``_close``, as an online W&B ``finish`` can."""

    def __init__(
        self, *, close_seconds: float = 5.0, output_path: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(output_path=output_path)
        self.close_seconds = close_seconds

    def _close(self, status: Any) -> None:
        time.sleep(self.close_seconds)
        super()._close(status)


class ExitingTracker(RecordingTracker):
    """Raises ``SystemExit`` in ``_log`` at step 3 (a library calling ``sys.exit``)."""

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        if step == 3:
            raise SystemExit("the backend library gave up")
        super()._log(values, step)


class ExitingInitTracker(RecordingTracker):
    """Raises ``SystemExit`` in ``_init``."""

    def _init(self, run: RunInfo) -> None:
        raise SystemExit(1)


class FaultPlugin:
    """Registers the fault-injection trackers as kinds ``raising``, ``hanging``, ``slow``,
    ``full-disk``, ``failing-init``, ``slow-memory``, ``hanging-init``, ``slow-close``,
    ``exiting`` and ``exiting-init``."""

    @hookimpl
    def register_trackers(self, register: RegisterTracker) -> None:
        register(RaisingTracker, kind="raising")
        register(HangingTracker, kind="hanging")
        register(FullDiskTracker, kind="full-disk")
        register(FailingInitTracker, kind="failing-init")
        register(SlowTracker, kind="slow")
        register(SlowMemoryTracker, kind="slow-memory")
        register(HangingInitTracker, kind="hanging-init")
        register(SlowCloseTracker, kind="slow-close")
        register(ExitingTracker, kind="exiting")
        register(ExitingInitTracker, kind="exiting-init")


def fault_registry() -> Any:
    """A registry with the installed plugins, the recording plugin and the fault plugin."""
    from recording_plugins import registry_with_test_plugin

    registry = registry_with_test_plugin()
    registry.add_plugin(FaultPlugin(), name="faults", distribution="tests")
    return registry
