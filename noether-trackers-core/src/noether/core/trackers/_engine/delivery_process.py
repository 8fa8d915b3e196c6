"""The delivery process: runs a run's backends and journal away from the training process.

Started by :mod:`.process_delivery` as ``python -c ... SOCKET_FD BOARD_FD``, it runs the same
:class:`~.dispatcher.DeliveryEngine` as thread delivery, fed from the socket (messages in
:mod:`.messages`). It ignores SIGINT and SIGTERM (a job's signals are for the trainer, which
closes the run), and notices when the training process is gone (the socket ends, or its
parent changes): it then delivers everything it was handed, closes every backend with status
``failed`` (the trainer died) and exits. Its log records go to the training process's logging.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time
from typing import Any, ClassVar

from noether.core.trackers._engine import wire
from noether.core.trackers._engine.dispatcher import DeliveryEngine
from noether.core.trackers._engine.messages import (
    BackendState,
    Calls,
    Close,
    Closed,
    Detach,
    Flush,
    Flushed,
    LogLine,
    Open,
    Opened,
    Start,
    Started,
)
from noether.core.trackers._engine.progress import ProgressBoard
from noether.core.trackers.resume import previous_run
from noether.core.trackers.run_info import RunInfo, RunStatus
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.values import Value

logger = logging.getLogger("noether.trackers")
#: How often the process checks that the training process is still there (seconds).
PARENT_CHECK_INTERVAL = 0.1


class Link:
    """The socket to the training process; several threads send whole frames on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        """Send ``message``; nothing happens once the training process is gone."""
        with self._lock, contextlib.suppress(OSError):
            wire.send(self.sock, message)


class ForwardLogs(logging.Handler):
    """Sends this process's log records to the training process, where they are logged as if
    they came from there (its handlers, levels and capture apply)."""

    def __init__(self, link: Link) -> None:
        super().__init__(logging.INFO)
        self.link = link

    def filter(self, record: logging.LogRecord) -> bool:
        """Warnings and errors of every library, and noether's own information."""
        return record.levelno >= logging.WARNING or record.name.startswith("noether")

    def emit(self, record: logging.LogRecord) -> None:
        """Send ``record`` with its message and traceback already formatted."""
        attributes = dict(record.__dict__)
        attributes["msg"] = record.getMessage()
        attributes["args"] = None
        if record.exc_info:
            attributes["exc_text"] = logging.Formatter().formatException(record.exc_info)
        attributes["exc_info"] = None
        self.link.send(LogLine(attributes))


class Unloadable:
    """Stands for a backend this process could not unpickle (its plugin cannot be imported
    here): it fails to start, as the engine reports any backend that does."""

    stores_nothing: ClassVar[bool] = False

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def _receive_start(self, run: RunInfo) -> None:
        raise ImportError(f"cannot load the backend in the delivery process: {self.error}")

    def _receive_log(
        self, values: dict[str, Value], step: int, wall_time: float | None = None
    ) -> None:
        """Never called: it never starts."""

    def _receive_summary(self, values: dict[str, Value]) -> None:
        """Never called: it never starts."""

    def _update_summary(self, values: dict[str, Value]) -> None:
        """Never called: it never starts."""

    def _close(self, status: RunStatus) -> None:
        """Never called: it never starts."""

    def _flush(self) -> None:
        """Never called: it never starts."""

    def run_location(self) -> RunLocation | None:
        """It has none."""
        return None


class DeliveryProcess:
    """Serves one run: reads messages until the run is closed or the training process ends."""

    def __init__(self, link: Link, board_descriptor: int) -> None:
        self.link = link
        self.board_descriptor = board_descriptor
        self.engine: DeliveryEngine | None = None
        self.started = False
        self._closer: threading.Thread | None = None

    def serve(self) -> None:
        """Open the run, then handle messages until it is closed."""
        if not self._open(wire.receive(self.link.sock)):
            return
        while True:
            try:
                message = wire.receive(self.link.sock)
            except (wire.ConnectionLost, OSError):
                self._training_process_gone()
                return
            self._handle(message)

    def _open(self, message: Open) -> bool:
        board = ProgressBoard(len(message.backends), self.board_descriptor)
        backends = [_load(data) for data in message.backends]
        try:
            previous = message.previous
            run = message.run
            if message.catch_up is not None and run.output_path is not None:
                # the summary so far is what the journal holds (the predecessor's notes died)
                previous = (
                    previous_run(run.output_path, run.run_id, None, run.summary_directions)
                    or previous
                )
            self.engine = DeliveryEngine(
                list(zip(backends, message.labels, strict=True)),
                run,
                message.settings,
                previous,
                board=board,
                catch_up=message.catch_up,
                # getattr: an Open pickled by a core without the field (never in practice:
                # both processes run the same core)
                config_paths=message.config_paths,
            )
        except BaseException as error:
            self.link.send(Opened(_picklable(error)))
            return False
        self.link.send(Opened(None))
        return True

    def _handle(self, message: Any) -> None:
        engine = self.engine
        assert engine is not None
        if isinstance(message, Calls):
            skip = engine.calls_before - message.first  # already journaled by a predecessor
            for record in message.records[max(0, skip) :]:
                engine.submit(record)
        elif isinstance(message, Start):
            failures = engine.start()
            self.started = True
            self.link.send(Started(failures, self._states(), engine.session_start))
        elif isinstance(message, Flush):
            complete = engine.flush(message.timeout)
            self.link.send(Flushed(message.token, complete, self._states()))
        elif isinstance(message, Detach):
            engine.detach(message.index)
        elif isinstance(message, Close):
            self._close(message.status, message.timeout)

    def _close(self, status: RunStatus, timeout: float) -> None:
        engine = self.engine
        assert engine is not None
        if self._closer is not None:  # a second close (SIGTERM during close) hurries the first
            engine.close(status, timeout)
            return
        if not self.started:
            engine.abandon()
            self.link.send(Closed(engine._report(status), []))
            return

        def close() -> None:
            report = engine.close(status, timeout)
            self.link.send(Closed(report, self._states()))

        self._closer = threading.Thread(target=close, name="noether-trackers:close")
        self._closer.start()

    def _training_process_gone(self) -> None:
        """The training process ended without closing the run (it was killed): deliver what
        it handed over and close the run as failed."""
        engine = self.engine
        assert engine is not None
        if self._closer is not None:
            self._closer.join()
            return
        if not self.started:
            engine.abandon()
            return
        logger.warning(
            "noether-trackers: the training process of run %s ended without closing it; "
            "delivering what it handed over and closing the run as failed",
            engine.run.display_name,
        )
        engine.close("failed", engine.settings.close_timeout)

    def _states(self) -> list[BackendState]:
        assert self.engine is not None
        states: list[BackendState] = []
        by_index = {worker.index: worker.backend for worker in self.engine.workers}
        for index in range(max(by_index, default=-1) + 1):
            backend = by_index.get(index)
            states.append(_state_of(backend) if backend is not None else {})
        return states


def _load(data: bytes) -> Any:
    """A backend unpickled, or :class:`Unloadable` when its class cannot be imported here."""
    try:
        return pickle.loads(data)
    except Exception as error:
        return Unloadable(error)


def _state_of(backend: Any) -> BackendState:
    """The attributes of ``backend`` that can be pickled."""
    state: BackendState = {}
    for name, value in getattr(backend, "__dict__", {}).items():
        if name == "_alone":
            continue
        try:
            pickle.dumps(value, protocol=5)
        except Exception:
            continue
        state[name] = value
    return state


def _picklable(error: BaseException) -> BaseException:
    """``error``, or a RuntimeError with its text if it would not survive pickling."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _watch_parent(parent: int, sock: socket.socket) -> None:
    """End the socket when the training process is gone (a forked worker may keep its end
    open after the trainer died, so the end of the stream alone is not enough)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_INTERVAL)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def main() -> None:
    """Serve the run whose socket and progress board descriptors are the arguments."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(sys.argv[1]))
    link = Link(sock)
    root = logging.getLogger()
    root.addHandler(ForwardLogs(link))
    root.setLevel(logging.INFO)
    parent = int(sys.argv[3]) if len(sys.argv) > 3 else os.getppid()
    threading.Thread(
        target=_watch_parent, args=(parent, sock), name="noether-trackers:parent", daemon=True
    ).start()
    try:
        DeliveryProcess(link, int(sys.argv[2])).serve()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)  # threads of a backend that hangs must not keep this process alive


if __name__ == "__main__":
    main()
