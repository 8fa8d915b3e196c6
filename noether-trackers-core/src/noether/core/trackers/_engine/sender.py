"""The process-wide sender: one thread that moves every open run's calls to its delivery process.

The training thread only appends a call to its run's queue. The sender wakes every
:data:`SEND_INTERVAL`, writes what each run queued to that run's socket as one frame,
and reads what the delivery processes answer (flush and close answers, log records). Waiting
on the sockets and writing to them releases the interpreter lock, so the sender costs the
training thread little more than the moments it pickles a batch. The thread ends when no run is
open and starts again with the next one: a process that creates and closes runs keeps none.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import Protocol

logger = logging.getLogger("noether.trackers")
#: How often the sender sends what was queued (seconds). Each wake-up takes the interpreter
#: lock from the training thread for a moment, so it batches: 20 ms is 50 wake-ups a second,
#: and a call is in the delivery process well within the 100 ms a killed trainer may lose.
SEND_INTERVAL = 0.02


class Channel(Protocol):
    """What the sender needs of a run delivered by a process."""

    def fileno(self) -> int:
        """The socket's descriptor (for waiting on answers)."""
        ...

    def pump(self) -> None:
        """Send what the run queued (and notice a delivery process that died)."""
        ...

    def receive(self) -> None:
        """Read one answer that is waiting."""
        ...


class Sender:
    """The sender thread and the channels it serves."""

    def __init__(self) -> None:
        self._channels: list[Channel] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def attach(self, channel: Channel) -> None:
        """Serve ``channel`` from now on (starting the thread if need be)."""
        with self._lock:
            self._channels.append(channel)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="noether-trackers:sender", daemon=True
                )
                self._thread.start()

    def detach(self, channel: Channel) -> None:
        """Stop serving ``channel`` (the thread ends when it served the last one)."""
        with self._lock:
            if channel in self._channels:
                self._channels.remove(channel)

    def serves(self, channel: Channel) -> bool:
        """Whether ``channel`` is served."""
        with self._lock:
            return channel in self._channels

    def _run(self) -> None:
        while True:
            with self._lock:
                channels = list(self._channels)
                if not channels:
                    self._thread = None
                    return
            for channel in channels:
                self._safely(channel.pump)
            by_descriptor = {}
            for channel in channels:
                try:
                    by_descriptor[channel.fileno()] = channel
                except OSError:  # closed meanwhile
                    continue
            try:
                ready, _, _ = select.select(list(by_descriptor), [], [], SEND_INTERVAL)
            except (OSError, ValueError):  # a socket closed while waiting: look again
                continue
            for descriptor in ready:
                self._safely(by_descriptor[descriptor].receive)

    @staticmethod
    def _safely(action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except Exception:  # a bug here must not stop the delivery of every other run
            logger.exception("noether-trackers: the sender failed")


_sender: Sender | None = None
_sender_lock = threading.Lock()


def sender() -> Sender:
    """The process's sender."""
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = Sender()
        return _sender


def _forget_in_forked_child() -> None:
    """A forked child has no sender thread; its runs are copies it must leave alone."""
    global _sender, _sender_lock
    _sender = None
    _sender_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)
