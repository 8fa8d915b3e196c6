"""Fixtures of the Trackio plugin tests: an offline Hub, refusing and hanging Hub addresses, a
reader of Trackio's own store, and a watch on the threads and processes a test leaves behind.

Runs are real Trackio runs; they are read back with ``trackio.sqlite_storage.SQLiteStorage``,
pointed at the test's store with the plugin's ``use_trackio_dir``. Trackio itself is never
mocked: the only thing replaced is huggingface_hub's offline switch, so that nothing Trackio
does can reach the network whatever the test sets up.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from isolation import REMOTE_VARIABLES
from local_port import free_port

from noether.core.trackers import Tracker, create_tracker


@pytest.fixture
def refused_url() -> str:
    """A Hub address that refuses every connection at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A Hub address that accepts connections (in the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@pytest.fixture(autouse=True)
def offline_hub(
    isolated_environment: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """On top of the suite's isolation: no token, no Space from the environment, the Hub
    endpoint refusing, and huggingface_hub's offline switch on (it reads the environment only
    when first imported, so the switch itself is set too)."""
    for variable in REMOTE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", refused_url)
    monkeypatch.setenv("BROWSER", "true")  # `trackio show` opens a browser: make it a no-op
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", refused_url)
    return isolated_environment


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path("/proc/self/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            pids.update(int(pid) for pid in (task / "children").read_text().split())
    return pids


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """Fail a test that leaves a thread or child process running after it ends."""
    threads = set(threading.enumerate())
    children = _children()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_children = _children() - children
        if not (extra_threads or extra_children) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra_threads, f"threads left running: {extra_threads}"
    assert not extra_children, f"child processes left running: {extra_children}"


class TrackioStore:
    """Reads one Trackio store through Trackio's own ``SQLiteStorage``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from trackio.sqlite_storage import SQLiteStorage

        from noether_trackers_trackio import use_trackio_dir

        with use_trackio_dir(self.directory):
            return getattr(SQLiteStorage, method)(*args, **kwargs)

    def projects(self) -> list[str]:
        """Project names in the store."""
        result: list[str] = self._call("get_projects")
        return result

    def runs(self, project: str) -> list[dict[str, Any]]:
        """Run records (``id``, ``name``, ...) of ``project``, oldest first."""
        result: list[dict[str, Any]] = self._call("get_run_records", project)
        return result

    def logs(self, project: str, run: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every logged row of a run, without its timestamp."""
        rows = self._call("get_logs", project, run, run_id=run_id)
        return [{k: v for k, v in row.items() if k != "timestamp"} for row in rows]

    def config(self, project: str, run: str, run_id: str | None = None) -> dict[str, Any]:
        """The stored config of a run."""
        config = self._call("get_run_config", project, run, run_id=run_id)
        assert config is not None, f"no config stored for run {run!r}"
        result: dict[str, Any] = config
        return result

    def media(self, relative: str) -> Path:
        """The file behind a media value's ``file_path``."""
        return self.directory / "media" / relative


@pytest.fixture
def store(offline_hub: Path) -> TrackioStore:
    """The store a tracker uses by default ($TRACKIO_DIR of the isolated environment)."""
    return TrackioStore(Path(os.environ["TRACKIO_DIR"]))


@pytest.fixture
def make_tracker(tmp_path: Path) -> Iterator[Callable[..., Tracker]]:
    """Build Trackio trackers from YAML-like options; every one is closed at teardown."""
    made: list[Tracker] = []

    def make(project: str = "proj", **options: Any) -> Tracker:
        tracker = create_tracker(
            {"kind": "trackio", "project": project, **options}, tmp_path / f"run{len(made)}"
        )
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close()
