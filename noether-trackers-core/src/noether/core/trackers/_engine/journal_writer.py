"""Writing a run's journal: one writer per run directory, appending typed records.

The journal's format is in ``docs/journal.md``; reading it is :mod:`noether.core.trackers.journal`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from noether.core.trackers.errors import JournalLockedError
from noether.core.trackers.journal import read_span
from noether.core.trackers.media import Image
from noether.core.trackers.records import (
    CloseRecord,
    LogRecord,
    Record,
    SummaryRecord,
    encode_values,
    to_json,
)
from noether.core.trackers.run_files import JOURNAL_FILE, MEDIA_DIR

#: Buffered journal lines beyond this many bytes are handed to the OS at once.
FLUSH_BYTES = 1 << 20
logger = logging.getLogger("noether.trackers")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

try:
    import fcntl
except ImportError:  # no advisory file locks (Windows)
    fcntl = None  # type: ignore[assignment]


class JournalWriter:
    """Appends records to ``run_dir/journal.jsonl``; media go to ``run_dir/media/``.

    One thread (the delivery engine's) writes. :meth:`flush` hands buffered lines to the OS;
    :meth:`sync` also asks the OS to put them on disk. Byte offsets let a backend that fell
    behind read a span of records back (:meth:`records`, from any thread) instead of keeping
    them in memory (the engine flushes before it hands such a span on).

    A flush that fails (full disk, file size limit) never leaves half a record in the file:
    the file is cut back to the last whole flush, and the lines that did not make it stay in
    memory, so that spans handed out before the failure still read back whole and in order.
    """

    def __init__(self, run_dir: Path) -> None:
        # first of all: one writer per run directory (JournalLockedError if another holds it)
        self._lock = JournalLock(run_dir)  # makes the directory and the file, too
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL_FILE
        ends_torn = self.path.exists() and _ends_without_newline(self.path)
        self._file: IO[bytes] = self.path.open("ab", buffering=0)
        self.offset = self._file.tell()
        if ends_torn:  # a crashed earlier run left half a line: never glue a record onto it
            _write_all(self._file.fileno(), b"\n")
            self.offset += 1
        #: Bytes of the file known to hold whole records (everything before is on file).
        self.durable = self.offset
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        # Lines from ``durable`` on that a failed flush could not write (see the class doc).
        self._unwritten = b""
        self._media_count = 0
        self.dirty = False

    def write(self, record: Record) -> tuple[int, int]:
        """Append ``record`` (its images written to ``media/``); return its byte span."""
        encoded = None
        if isinstance(record, LogRecord):
            encoded = encode_values(record.values, record.step, self._write_image)
        elif isinstance(record, SummaryRecord):
            encoded = encode_values(record.values, None, self._write_image)
        elif isinstance(record, CloseRecord):
            encoded = encode_values(record.summary, None, self._write_image)
        data = to_json(record, encoded)
        line = (json.dumps(data, separators=(",", ":"), default=str) + "\n").encode()
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        start = self.offset
        self.offset += len(line)
        self.dirty = True
        if self._buffered_bytes >= FLUSH_BYTES:
            self.flush()
        return start, self.offset

    def read_span(self, start: int, end: int) -> Iterator[LogRecord | SummaryRecord]:
        """The records written between byte offsets ``start`` and ``end``, decoded: from the
        file, or from memory for lines a failed flush could not write."""
        data = b""
        on_file = min(end, self.durable)
        if start < on_file:
            with self.path.open("rb") as stream:
                stream.seek(start)
                data = stream.read(on_file - start)
        if end > self.durable:
            data += self._unwritten[max(start, self.durable) - self.durable : end - self.durable]
        return read_span(self.run_dir, data, f"{self.path}: bytes {start}-{end}")

    def _write_image(self, key: str, step: int | None, image: Image) -> str:
        while True:  # a resumed run numbers from 1 again: never overwrite an earlier image
            self._media_count += 1
            name = f"{self._media_count:06d}-step{step}-{_UNSAFE.sub('_', key)[:80]}.png"
            relative = f"{MEDIA_DIR}/{name}"
            if not (self.run_dir / relative).exists():
                break
        (self.run_dir / MEDIA_DIR).mkdir(exist_ok=True)
        (self.run_dir / relative).write_bytes(image.to_png())
        return relative

    def flush(self) -> None:
        """Hand buffered lines to the OS (they survive the process being killed).

        On failure the file is cut back to its last whole flush and the OSError raised; the
        lines stay readable through :meth:`records`, and the journal takes no more writes.
        """
        self.dirty = False
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        try:
            _write_all(self._file.fileno(), data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file.fileno(), self.durable)
            self._unwritten = data
            raise
        self.durable += len(data)

    def sync(self) -> None:
        """Flush and ask the OS to write the journal to disk."""
        self.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        if not self._file.closed:
            try:
                self.sync()
            finally:
                self._file.close()
                self._lock.release()


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` (``os.write`` may write less than asked, e.g. at a size limit)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _ends_without_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        if stream.tell() == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


# ---- one writer per run directory ----------------------------------------------------------


class JournalLock:
    """An exclusive hold on a run's journal, so that one writer at a time appends to it.

    The OS keeps the lock (``flock``) while the holding process lives: it goes away with
    :meth:`release` or when the process dies, however it dies, so a job restarted after a crash
    or SIGKILL takes the lock again. A second tracker of the same process is refused too (the
    OS lock alone would not tell where ``flock`` is emulated with POSIX locks, as on NFS).
    """

    def __init__(self, run_dir: Path) -> None:
        """Lock ``run_dir``'s journal (created empty if needed); raise
        :class:`JournalLockedError` when another process or tracker holds it."""
        self.path = run_dir / JOURNAL_FILE
        run_dir.mkdir(parents=True, exist_ok=True)
        self._descriptor: int | None = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        self._owner = os.getpid()
        status = os.fstat(self._descriptor)
        self._identity = (status.st_dev, status.st_ino)
        with _HELD_GUARD:
            if _HELD.get(self._identity) == self._owner:
                self._close_descriptor()
                raise JournalLockedError(run_dir, same_process=True)
            self._lock_or_raise(run_dir)
            _HELD[self._identity] = self._owner
            _OPEN_LOCKS.add(self)

    def _lock_or_raise(self, run_dir: Path) -> None:
        if fcntl is None:  # no advisory locks (Windows): only the same-process check holds
            return
        assert self._descriptor is not None
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._close_descriptor()
            raise JournalLockedError(run_dir, same_process=False) from None
        except OSError as error:  # a file system without locks must not stop training
            logger.warning(
                "cannot lock %s (%s): make sure no other process writes to %s",
                self.path,
                error.strerror,
                run_dir,
            )

    def release(self) -> None:
        """Let another writer have the journal; safe to call twice."""
        if self._descriptor is None:
            return
        if os.getpid() == self._owner:  # a forked child must not unlock its parent's journal
            with _HELD_GUARD:
                _HELD.pop(self._identity, None)
        self._close_descriptor()

    def _close_descriptor(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            with contextlib.suppress(OSError):
                os.close(descriptor)  # closing the last descriptor releases the OS lock

    def __del__(self) -> None:
        # a writer whose __init__ failed after locking never gets to close(); a stale entry
        # in _HELD would refuse this directory to the process for good
        if getattr(self, "_descriptor", None) is not None:
            try:  # noqa: SIM105 (at interpreter exit, contextlib may be gone already)
                self.release()
            except Exception:
                pass


#: Journals this process holds the lock of: (device, inode) to the holding process id.
_HELD: dict[tuple[int, int], int] = {}
_HELD_GUARD = threading.Lock()
#: The locks open in this process, for a forked child to let go of.
_OPEN_LOCKS: weakref.WeakSet[JournalLock] = weakref.WeakSet()


def _let_go_in_forked_child() -> None:
    """A forked child (a data-loader worker, say) shares its parent's locked descriptors: if
    it outlived a parent killed with SIGKILL, the restarted job would find its run locked.
    The child closes its copies (the parent keeps its lock) and holds nothing."""
    global _HELD_GUARD
    _HELD_GUARD = threading.Lock()  # another thread may have held it at the fork
    _HELD.clear()
    for lock in list(_OPEN_LOCKS):
        lock._close_descriptor()
    _OPEN_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_let_go_in_forked_child)
