"""Fixtures of the W&B plugin tests: an isolated environment, a refusing server address,
fault-injection servers, a reader for ``.wandb`` files and a watch on wandb's processes.

Runs are real wandb runs in offline mode (or online runs that cannot reach a server), read back
from the files wandb writes; wandb itself is never mocked. Module-scoped runs (shared by many
assertions, since starting wandb costs about a second) cannot use the suite's function-scoped
isolation, so :func:`isolate` is applied here at module scope too.
"""

from __future__ import annotations

import http.server
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from wandb_file import WandbRunFile

WANDB_PROCESS_NAMES = ("wandb-core", "wandb-symon")


@dataclass(frozen=True)
class Sandbox:
    """Directories a test's W&B run may see; everything lives under :attr:`root`."""

    root: Path
    home: Path
    tmp: Path
    cwd: Path
    cache: Path
    config: Path
    refused_url: str

    def files(self) -> list[Path]:
        """Every file under the sandbox, relative to its root."""
        return sorted(p.relative_to(self.root) for p in self.root.rglob("*") if not p.is_dir())


def refused_address() -> str:
    """``http://127.0.0.1:<port>`` of a port that nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> Sandbox:
    """Point HOME, the temp dir, the working dir and every wandb setting into ``root``.

    Every ``WANDB_*`` variable of the outer environment is removed, and the server URL is a
    refusing local address: even a run that tried to go online could not reach a network.
    """
    sandbox = Sandbox(
        root=root,
        home=root / "home",
        tmp=root / "tmp",
        cwd=root / "cwd",
        cache=root / "cache",
        config=root / "config",
        refused_url=refused_address(),
    )
    for directory in (sandbox.home, sandbox.tmp, sandbox.cwd, sandbox.cache, sandbox.config):
        directory.mkdir(parents=True, exist_ok=True)
    for variable in [name for name in os.environ if name.startswith("WANDB_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(sandbox.home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(sandbox.home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(sandbox.home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(sandbox.home / ".local" / "share"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(sandbox.cache))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(sandbox.config))
    monkeypatch.setenv("WANDB_BASE_URL", sandbox.refused_url)
    monkeypatch.setenv("TMPDIR", str(sandbox.tmp))
    # Python caches its temp dir on first use; wandb-core (Go) reads TMPDIR itself.
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox.tmp))
    monkeypatch.chdir(sandbox.cwd)
    return sandbox


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A test's own isolated environment (see :func:`isolate`)."""
    return isolate(monkeypatch, tmp_path / "sandbox")


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """:func:`isolate` for the runs a whole module shares; undone after the module."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield isolate(monkeypatch, tmp_path_factory.mktemp("wandb-sandbox"))


def run_file(run_dir: Path) -> Any:
    """The decoded ``.wandb`` file of the W&B run directory ``run_dir``."""
    (path,) = run_dir.glob("run-*.wandb")
    return WandbRunFile.read(path)


def wandb_processes() -> dict[int, str]:
    """wandb's processes that descend from this one: pid to name."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        state, parent_pid = rest.split()[:2]
        if state != "Z":
            parents[int(entry.name)] = int(parent_pid)
            names[int(entry.name)] = name
    found: dict[int, str] = {}
    frontier = [os.getpid()]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in found:
                found[pid] = names[pid]
                frontier.append(pid)
    return {pid: name for pid, name in found.items() if name in WANDB_PROCESS_NAMES}


def alive(pids: Iterable[int], grace: float = 0.0) -> list[int]:
    """Those of ``pids`` still running (not gone, not a zombie) after up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        running = []
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2] != "Z":
                running.append(pid)
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.05)
        pids = running


def wandb_singleton() -> Any:
    """wandb's process-wide state object, if wandb is imported and has one."""
    setup = sys.modules.get("wandb.sdk.wandb_setup")
    return getattr(setup, "_singleton", None) if setup is not None else None


def _handler(page_status: int, api_status: int) -> type[http.server.BaseHTTPRequestHandler]:
    class FaultyServer(http.server.BaseHTTPRequestHandler):
        """Answers GET/HEAD with ``page_status`` and API calls (POST) with ``api_status``."""

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(api_status if self.command == "POST" else page_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return FaultyServer


@pytest.fixture
def fault_server() -> Iterator[Callable[[int, int], str]]:
    """Fault injection: ``fault_server(page_status, api_status)`` starts a local HTTP server
    answering pages and API calls with those statuses, and returns its URL (stopped after)."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(page_status: int, api_status: int) -> str:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), _handler(page_status, api_status)
        )
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fault-server", daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Fault injection: the URL of a port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes handshakes; nobody ever reads or replies
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


class Helpers:
    """The helpers above, for test modules (which cannot import this conftest by name)."""

    run_file = staticmethod(run_file)
    wandb_processes = staticmethod(wandb_processes)
    alive = staticmethod(alive)
    wandb_singleton = staticmethod(wandb_singleton)
    refused_address = staticmethod(refused_address)


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    """:class:`Helpers`: reading ``.wandb`` files, watching wandb's processes."""
    return Helpers


@pytest.fixture(autouse=True)
def no_wandb_left_behind() -> Iterator[None]:
    """Fail a test that leaves wandb's service, processes or global run state behind."""
    yield
    leftovers = wandb_processes()
    singleton = wandb_singleton()
    if singleton is not None:
        sys.modules["wandb"].teardown()
    assert not leftovers, f"wandb processes left running: {leftovers}"
    assert singleton is None, "wandb's process state was left set up"
