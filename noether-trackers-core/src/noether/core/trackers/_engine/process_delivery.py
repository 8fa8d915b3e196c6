"""Process delivery, the training process's side: the run's backends and journal run in a
delivery process of the run's own (:mod:`.delivery_process`), started with ``spawn`` semantics
(a fresh interpreter, never a fork of a training process that may hold CUDA contexts).

:class:`ProcessDelivery` has the interface of the thread engine
(:class:`~.dispatcher.DeliveryEngine`), so the run uses either. ``submit`` appends the call to
a queue, as with threads; the process-wide sender (:mod:`.sender`) numbers and sends it.

**Nothing lost.** The delivery process writes the journal. Until it says (on the progress
board, :mod:`.progress`) that the journal holds a call, this side keeps the call. If the
delivery process dies, the next one is started at once: it reads the journal to find what its
predecessor's backends had not durably taken, gives it to them, and gets every call the journal
did not hold yet from here again. Training never waits for it; ``log()`` only queues. If the
training process dies, the delivery process sees its socket end, delivers what it was handed
and closes the run as ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from noether.core.trackers._engine import wire
from noether.core.trackers._engine.backpressure import HandoverGate
from noether.core.trackers._engine.dispatcher import CatchUp
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
from noether.core.trackers._engine.run_summary import RunSummary
from noether.core.trackers._engine.sender import sender
from noether.core.trackers._engine.startup import StartFailure
from noether.core.trackers._engine.worker import Backend
from noether.core.trackers.delivery import BackendReport, DeliveryReport, DeliverySettings
from noether.core.trackers.errors import JournalLockedError
from noether.core.trackers.records import LogRecord, SummaryRecord
from noether.core.trackers.run_info import RunInfo, RunStatus

logger = logging.getLogger("noether.trackers")

#: How many times a run starts a new delivery process after one died, before it gives up.
MAX_RESTARTS = 3
#: Seconds a delivery process gets to exit after it answered the close (or the close's time
#: ran out) before it is killed.
EXIT_GRACE = 2.0
#: What the new interpreter runs: the training process's import path, then the serving loop.
_BOOTSTRAP = (
    "import os, sys; sys.path[:] = os.environ.pop('NOETHER_TRACKERS_SYS_PATH').split(os.pathsep); "
    "from noether.core.trackers._engine.delivery_process import main; main()"
)

Item = LogRecord | SummaryRecord | Flush | Close | Detach


class DeliveryProcessUnavailable(RuntimeError):
    """A delivery process could not be started or did not answer (the run then uses thread
    delivery), or a backend cannot be pickled to run in one."""


class ProcessDelivery:
    """A run's delivery through a delivery process."""

    def __init__(
        self,
        backends: Sequence[tuple[Backend, str]],
        run: RunInfo,
        settings: DeliverySettings,
        previous: RunSummary | None = None,
        *,
        config_paths: Sequence[str | None] | None = None,
    ) -> None:
        """Start the delivery process of ``run`` and have it open the journal: raises what
        opening raised there (``JournalLockedError``), and :class:`DeliveryProcessUnavailable`
        when a backend cannot be pickled or the process does not come up. ``config_paths``:
        per backend, where the YAML configured it (for traces)."""
        self.run = run
        self.settings = settings
        self.backends = [backend for backend, _ in backends]
        self.labels = [label for _, label in backends]
        self.config_paths = list(config_paths) if config_paths is not None else None
        self._pickled = [_pickled(backend, label) for backend, label in backends]
        self._previous = previous
        self.board = ProgressBoard(len(self.backends))
        self.handover = HandoverGate(settings.queue_capacity, settings.handover_timeout)
        self.report: DeliveryReport | None = None
        # the training thread appends; the sender takes
        self._pending: deque[Item] = deque()
        self._taken = 0  # items the sender took (the hand-over gate's progress)
        # the run's calls sent and not yet kept by the journal: (number, call)
        self._unkept: deque[tuple[int, LogRecord | SummaryRecord]] = deque()
        self._next_call = 0
        self._detached: set[int] = set()
        self._failed_to_start: set[int] = set()
        self._session_start: int | None = None
        self._flush_token = 0
        self._answers: dict[int, Flushed] = {}
        self._answered = threading.Condition()
        self._closed_answer: Closed | None = None
        self._close_request: Close | None = None
        self._deadline = math.inf
        self._restarts = 0
        self._gave_up = False
        self._forked_copy = False
        self._stopped = False
        # one writer per run directory: the lock is the delivery process's, so a second run
        # of this process on the same directory is refused here, as the thread engine does
        self._directory = _claim(run.output_path if settings.journal else None)
        try:
            self._process, self._sock = self._spawn()
        except BaseException:
            _release(self._directory)
            raise
        _OPEN.add(self)
        self._send_directly(
            Open(
                self._pickled,
                self.labels,
                run,
                settings,
                previous,
                config_paths=self.config_paths,
            )
        )
        opened = self._await_directly(Opened, settings.init_timeout)
        if opened.error is not None:
            self.abandon()
            raise opened.error

    # ---- the engine's interface (the run calls these under its lock) ----------------------------

    def start(self) -> list[StartFailure]:
        """Start every backend in the delivery process; the backends that failed to start."""
        self._send_directly(Start())
        started: Started = self._await_directly(Started, self.settings.init_timeout + 30.0)
        self._session_start = started.session_start
        self._apply(started.states)
        self._failed_to_start = {failure.index for failure in started.failures}
        sender().attach(self)
        return started.failures

    def abandon(self) -> None:
        """Stop the delivery process without starting (``init`` failed before)."""
        self._stop_process(0.0)

    def detach(self, index: int) -> None:
        """Stop delivering to backend number ``index`` (it failed to start)."""
        self._detached.add(index)
        self._pending.append(Detach(index))

    def started_backends(self) -> list[Backend]:
        """The backends whose start succeeded."""
        left_out = self._failed_to_start | self._detached
        return [backend for index, backend in enumerate(self.backends) if index not in left_out]

    def submit(self, record: LogRecord | SummaryRecord) -> None:
        """Queue a call for the sender; waits only as the hand-over gate says."""
        if self._forked_copy:
            return
        if len(self._pending) >= self.handover.capacity and not self.handover.wait_for_room(
            self._pending.__len__, lambda: self._taken, lambda: True, self._warn_stalled
        ):
            return
        self._pending.append(record)

    def flush(self, timeout: float) -> bool:
        """Wait until every call so far is journaled and flushed by every backend."""
        if self._forked_copy or self._gave_up:
            return False
        with self._answered:
            self._flush_token += 1
            token = self._flush_token
        self._pending.append(Flush(token, timeout))
        deadline = time.monotonic() + timeout
        with self._answered:
            while token not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._answered.wait(left)
            answer = self._answers.pop(token)
        self._apply(answer.states)
        return answer.complete

    def close(self, status: RunStatus, timeout: float) -> DeliveryReport:
        """Close the run in the delivery process, at most ``timeout`` seconds; a second call
        (SIGTERM during a close) hurries it."""
        self._deadline = min(self._deadline, time.monotonic() + timeout)
        left = max(0.0, self._deadline - time.monotonic())
        # the delivery process's own deadline comes a little earlier, so that its answer
        # (and report) arrives within this one
        request = Close(status, max(0.0, left - min(1.0, 0.2 * left)))
        if self._close_request is None:
            self._close_request = request
        self._pending.append(request)
        with self._answered:
            while self._closed_answer is None and not self._gave_up:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    break
                self._answered.wait(min(left, 0.05))
            answer = self._closed_answer
        if answer is not None:
            self._apply(answer.states)
            self.report = answer.report
        elif self.report is None:
            self.report = self._report_without_answer(self._close_request.status)
        self._stop_process(EXIT_GRACE if answer is not None else 0.0)
        return self.report

    # ---- the sender's side (sender thread) -------------------------------------------------------

    def fileno(self) -> int:
        """The socket's descriptor."""
        return self._sock.fileno()

    def pump(self) -> None:
        """Send what was queued, in order; forget the calls the journal now holds."""
        if self._gave_up:
            self._pending.clear()
            return
        kept = self.board.kept
        while self._unkept and self._unkept[0][0] < kept:
            self._unkept.popleft()
        batch: list[LogRecord | SummaryRecord] = []
        first = self._next_call
        try:
            while True:
                try:
                    item = self._pending.popleft()
                except IndexError:
                    break
                self._taken += 1
                if isinstance(item, LogRecord | SummaryRecord):
                    self._unkept.append((self._next_call, item))
                    self._next_call += 1
                    batch.append(item)
                    continue
                if batch:
                    wire.send(self._sock, Calls(first, batch))
                    batch, first = [], self._next_call
                wire.send(self._sock, item)
            if batch:
                wire.send(self._sock, Calls(first, batch))
        except OSError:  # the delivery process died; the calls are in _unkept
            self._restart()

    def receive(self) -> None:
        """Handle one answer of the delivery process."""
        try:
            message = wire.receive(self._sock)
        except (wire.ConnectionLost, OSError):
            if self._closed_answer is None:
                self._restart()
            else:
                sender().detach(self)
            return
        if isinstance(message, LogLine):
            _log_here(message)
        elif isinstance(message, Flushed):
            with self._answered:
                self._answers[message.token] = message
                self._answered.notify_all()
        elif isinstance(message, Closed):
            with self._answered:
                self._closed_answer = message
                self._answered.notify_all()
            sender().detach(self)
        elif isinstance(message, Opened) and message.error is not None:
            self._give_up(f"the new delivery process could not open the run: {message.error}")
        elif isinstance(message, Started):
            self._session_start = message.session_start
            for failure in message.failures:
                if failure.index not in self._detached | self._failed_to_start:
                    logger.error(
                        "noether-trackers: backend %s did not start again in the new delivery "
                        "process (%s); its calls stay in the journal",
                        failure.label,
                        failure.error,
                    )

    # ---- the delivery process --------------------------------------------------------------------

    def _spawn(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["NOETHER_TRACKERS_SYS_PATH"] = os.pathsep.join(sys.path)
        arguments = [str(theirs.fileno()), str(self.board.descriptor), str(os.getpid())]
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, *arguments],
                pass_fds=(theirs.fileno(), self.board.descriptor),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as error:
            ours.close()
            raise DeliveryProcessUnavailable(f"cannot start {sys.executable}: {error}") from error
        finally:
            theirs.close()
        return process, ours

    def _send_directly(self, message: Any) -> None:
        """Send from the training thread (before the sender serves this run)."""
        try:
            wire.send(self._sock, message)
        except OSError as error:
            self._stop_process(0.0)
            raise DeliveryProcessUnavailable(f"the delivery process went away: {error}") from error

    def _await_directly(self, kind: type[Any], timeout: float) -> Any:
        """The next answer of type ``kind``, read on the training thread (log lines before it
        are logged here)."""
        self._sock.settimeout(timeout)
        try:
            while True:
                message = wire.receive(self._sock)
                if isinstance(message, LogLine):
                    _log_here(message)
                elif isinstance(message, kind):
                    return message
        except (wire.ConnectionLost, OSError) as error:
            code = self._process.poll()
            self._stop_process(0.0)
            why = "did not answer in time" if isinstance(error, TimeoutError) else f"ended ({code})"
            raise DeliveryProcessUnavailable(f"the delivery process {why}") from error
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(None)

    def _restart(self) -> None:
        """The delivery process died: start another that catches up (sender thread)."""
        if self._stopped or self._gave_up:
            return
        with contextlib.suppress(OSError):
            self._sock.close()
        code = _wait(self._process, 5.0)
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            self._give_up(f"it died {self._restarts} times (last exit status {code})")
            return
        logger.warning(
            "noether-trackers: the delivery process of run %s died (exit status %s); training "
            "goes on, and a new one catches up from the journal",
            self.run.display_name,
            code,
        )
        durable = [self.board.durable(index) for index in range(len(self.backends))]
        resend_from = self._unkept[0][0] if self._unkept else self._next_call
        catch_up = CatchUp(self._session_start, durable, resend_from)
        backends = [
            b"" if index in self._detached | self._failed_to_start else data
            for index, data in enumerate(self._pickled)
        ]
        run = replace(self.run, resumed=True, resume_step=None, redelivery=True)
        try:
            self._process, self._sock = self._spawn()
            wire.send(
                self._sock,
                Open(
                    backends,
                    self.labels,
                    run,
                    self.settings,
                    self._previous,
                    catch_up,
                    self.config_paths,
                ),
            )
            wire.send(self._sock, Start())
            for index in sorted(self._detached | self._failed_to_start):
                wire.send(self._sock, Detach(index))
            calls = [call for _, call in self._unkept]
            if calls:
                wire.send(self._sock, Calls(resend_from, calls))
            with self._answered:
                unanswered = [
                    Flush(token, self.settings.close_timeout)
                    for token in range(1, self._flush_token + 1)
                    if token not in self._answers
                ]
            for request in [*unanswered, *([self._close_request] if self._close_request else [])]:
                wire.send(self._sock, request)
        except (OSError, DeliveryProcessUnavailable) as error:
            self._give_up(f"a new one could not be started: {error}")

    def _give_up(self, why: str) -> None:
        if self._gave_up:
            return
        self._gave_up = True
        logger.error(
            "noether-trackers: giving up the delivery of run %s: %s; calls logged from now on "
            "are not delivered (what the journal holds can be replayed)",
            self.run.display_name,
            why,
        )
        sender().detach(self)
        with self._answered:
            self._answered.notify_all()

    def _stop_process(self, grace: float) -> None:
        """Let the delivery process exit within ``grace`` seconds, else kill it; reap it."""
        self._stopped = True
        sender().detach(self)
        with contextlib.suppress(OSError):
            self._sock.close()
        if _wait(self._process, grace) is None:
            self._process.kill()
            _wait(self._process, 5.0)
        _OPEN.discard(self)
        _release(self._directory)
        with contextlib.suppress(OSError, ValueError):
            self.board.close()

    def _apply(self, states: list[BackendState]) -> None:
        """Update the backends here with their state in the delivery process."""
        for backend, state in zip(self.backends, states, strict=False):
            with contextlib.suppress(Exception):
                vars(backend).update(state)

    def _report_without_answer(self, status: RunStatus) -> DeliveryReport:
        """The report of a close the delivery process did not answer in time."""
        calls = self._next_call + len(self._pending)
        kept = "the journal has every call" if self._directory else "no journal was kept"
        why = f"the delivery process did not finish closing in time ({kept})"
        return DeliveryReport(
            status,
            tuple(
                BackendReport(
                    label,
                    calls,
                    self.board.durable(index),
                    0,
                    calls - self.board.durable(index),
                    why,
                )
                for index, label in enumerate(self.labels)
                if index not in self._detached | self._failed_to_start
            ),
            None,
            self.handover.dropped,
        )

    def _warn_stalled(self) -> None:
        logger.error(
            "noether-trackers: the delivery process of run %s took no call for %ss; dropping "
            "calls until it does",
            self.run.display_name,
            self.settings.handover_timeout,
        )


#: The run directories whose journal a delivery process of this process holds.
_CLAIMED: set[str] = set()
_CLAIMED_LOCK = threading.Lock()


def _claim(directory: Path | None) -> str | None:
    """Claim ``directory`` for a run of this process; JournalLockedError if one holds it."""
    if directory is None:
        return None
    key = str(directory.resolve())
    with _CLAIMED_LOCK:
        if key in _CLAIMED:
            raise JournalLockedError(directory, same_process=True)
        _CLAIMED.add(key)
    return key


def _release(key: str | None) -> None:
    with _CLAIMED_LOCK:
        _CLAIMED.discard(key or "")


def _pickled(backend: Backend, label: str) -> bytes:
    if type(backend).__module__ == "__main__":
        raise DeliveryProcessUnavailable(
            f"backend {label} is a class of the main script, which a delivery process does "
            "not run (define it in a module to deliver it from a process)"
        )
    try:
        return pickle.dumps(backend, protocol=5)
    except Exception as error:
        raise DeliveryProcessUnavailable(
            f"backend {label} cannot be pickled to run in a delivery process "
            f"({type(error).__name__}: {error})"
        ) from error


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit status of ``process`` once it ended within ``timeout`` seconds, else None."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def _log_here(line: LogLine) -> None:
    """Log a record of the delivery process here, as if it were this process's."""
    record = logging.makeLogRecord(line.attributes)
    target = logging.getLogger(record.name)
    if target.isEnabledFor(record.levelno):
        target.handle(record)


#: Runs delivered by a process in this process, for a forked child to leave alone.
_OPEN: weakref.WeakSet[ProcessDelivery] = weakref.WeakSet()


def _leave_alone_in_forked_child() -> None:
    """A forked child (a data-loader worker) holds copies of the parent's runs: it must never
    write to their delivery processes, nor close them. Its copy of each socket is closed (so
    that a delivery process also sees its socket end when the trainer dies)."""
    for delivery in list(_OPEN):
        delivery._forked_copy = True
        delivery._gave_up = True
        with contextlib.suppress(OSError):
            delivery._sock.close()
    _OPEN.clear()
    _CLAIMED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_leave_alone_in_forked_child)
