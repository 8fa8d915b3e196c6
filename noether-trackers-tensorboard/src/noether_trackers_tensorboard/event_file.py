"""Writing one TensorBoard event file: TFRecord framing with CRC32C computed in C.

TensorBoard's own writer computes the record checksums in pure Python (about 100 us for a
small event), which makes it, and torch's ``SummaryWriter`` built on it, slow. The format is
simple: each record is ``length (u64 LE) | masked crc32c(length) | data | masked
crc32c(data)``; the first record declares the event file version. TensorBoard reads the
result with its own reader, as the tests show.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import struct
import threading
import time
from pathlib import Path
from typing import IO, Any

import google_crc32c
from tensorboard.compat.proto.event_pb2 import Event

#: Every flusher thread's name starts with this (the event file's name follows).
FLUSHER_THREAD_NAME = "noether-tensorboard-flusher"
logger = logging.getLogger("noether.trackers")
_file_numbers = itertools.count()
_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    """The CRC32C of ``data``, masked as TFRecord requires."""
    crc: int = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class EventFile:
    """Appends events to a new ``events.out.tfevents.*`` file in ``directory``.

    Written by one thread (its tracker's delivery thread). Writes are buffered; a flusher
    thread hands them to the OS within ``flush_secs`` of being written, even when nothing is
    written after them, as TensorBoard's own writer does. :meth:`flush` and :meth:`close` flush
    at once; :meth:`close` also stops the flusher thread.
    """

    def __init__(self, directory: Path, flush_secs: float) -> None:
        if not flush_secs > 0:  # the flusher thread would spin: no period, no wait
            raise ValueError(f"flush_secs must be positive; got {flush_secs}")
        directory.mkdir(parents=True, exist_ok=True)
        # TensorBoard reads a directory's event files in name order: the file number is
        # zero-padded so that a process's 10th file sorts after its 9th (a resumed run's file,
        # written in the same second, must come after the one it resumes)
        name = (
            f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
            f"{os.getpid()}.{next(_file_numbers):06d}"
        )
        self.path = directory / name
        # unbuffered, with a buffer of whole records of its own: the file holds exactly what
        # was flushed, so that a delivery process that took over after a kill gives TensorBoard
        # again precisely the events after the last flush (a file object's own buffer would
        # write some of them on its own, and TensorBoard would show them twice)
        self._file: IO[bytes] = self.path.open("ab", buffering=0)
        self._buffer: list[bytes] = []
        # Guards the file between the writing thread and the flusher thread.
        self._lock = threading.Lock()
        self._dirty = False
        self._stop = threading.Event()
        self.write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        self.flush()
        self._flusher = threading.Thread(
            target=self._flush_periodically,
            args=(flush_secs,),
            name=f"{FLUSHER_THREAD_NAME} {name}",
            daemon=True,  # close() stops it; a process that never closes must still exit
        )
        self._flusher.start()

    def write(self, event: Any) -> None:
        """Append one ``Event`` proto (to the buffer: no system call for a small event)."""
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        record = (
            header
            + struct.pack("<I", masked_crc32c(header))
            + data
            + struct.pack("<I", masked_crc32c(data))
        )
        with self._lock:
            self._buffer.append(record)
            self._dirty = True

    @property
    def dirty(self) -> bool:
        """Whether events were written since the last flush (read without the lock: a stale
        answer only delays a flush until the next check)."""
        return self._dirty

    def flush(self) -> None:
        """Hand buffered events to the OS: once this returns, they survive the death of this
        process (not of the machine: that takes :meth:`close`, which syncs)."""
        with self._lock:
            data = b"".join(self._buffer)
            self._buffer.clear()
            self._dirty = False
            view = memoryview(data)
            try:
                while view:  # a raw write may take less than it was given
                    view = view[self._file.write(view) or 0 :]
            except OSError:
                self._buffer.insert(0, bytes(view))  # kept for the next try (a full disk)
                self._dirty = True
                raise

    def close(self) -> None:
        """Stop the flusher thread; flush, sync and close the file."""
        self._stop.set()
        self._flusher.join()
        if not self._file.closed:
            self.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def _flush_periodically(self, flush_secs: float) -> None:
        """The flusher thread: every ``flush_secs``, flush if anything was written since."""
        warned = False
        while not self._stop.wait(flush_secs):
            if not self._dirty:
                continue  # an idle run costs one wake-up per period, no system call
            try:
                self.flush()
            except OSError as error:
                # A full disk, say: the next period tries again, and close() flushes once more
                # and reports a failure to the delivery engine.
                if not warned:
                    logger.warning("TensorBoard: could not flush %s: %s", self.path, error)
                warned = True
