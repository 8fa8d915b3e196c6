"""The rows of an offline W&B run that are not in its ``.wandb`` file yet, kept where the
process that resumes the run after a SIGKILL finds them.

``wandb-core`` writes an offline run's records to its ``.wandb`` file (LevelDB's log format)
one whole 32 KiB block at a time: a record reaches the file when the block it ends in is
full, or when the run finishes. When the process that started ``wandb-core`` dies, it quits at
once without writing ("no need to sync uncommitted data"), and wandb has no request that
writes a block early. A SIGKILL therefore loses the run's last, partly filled block: up to
about a hundred rows of scalars, and in a short run everything, the run record included.

So the tracker keeps every row it logged that the file does not hold yet in a file of its own
next to the run directories, ``<wandb dir>/noether-unsaved-<W&B id>.rows``: :meth:`flush`
appends the new rows (one write, handed to the OS), and reads the blocks ``wandb-core`` has
written since to drop the rows they hold. A resumed run reads the file and the ``.wandb``
file it names and logs again, before anything else, the rows that did not make it
(:func:`lost_rows`). Each row is one history record: ``wandb-core`` writes them in the order
of the ``run.log`` calls, so the n-th row logged is the n-th history record of the file.

The reverse happens too: ``wandb-core`` may have written rows logged after the last flush.
A delivery process that takes over from a killed one (``RunInfo.redelivery``) gets exactly
those calls again first; :func:`lost_rows` counts how many of them the file holds, and the
tracker skips that many, so that each row is in the run once. The count in force is kept in
the file at every flush, for a replacement that is killed in turn.

The file is private to this plugin: frames of ``length | crc32 | pickle``; the first holds
the ``.wandb`` file's path, how far it was read and the last row written, the others
numbered rows; each also the count of calls to skip at that point. A frame cut off
by a kill fails its checksum and ends the file there. Runs that finish delete it. It is read
back as data: unpickling makes nothing but plain values, numpy arrays and the media types
(anything else ends the file with a warning), so a file planted in the run's directory cannot
run code in the process that resumes the run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import pickle
import struct
import zlib
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from noether.core.trackers.plugin import Value

logger = logging.getLogger("noether.trackers.wandb")

#: A row as logged: the values (before conversion to W&B's types) and the step.
Row = tuple[dict[str, Value], int]

#: LevelDB's log format as ``wandb-core`` writes it: a 7-byte W&B header, then 32 KiB blocks of
#: chunks, each with a 7-byte header (CRC-32 of type and data, length, type).
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FILE_HEADER_SIZE = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4

_FRAME = struct.Struct("<II")  # length and CRC-32 of the pickled frame that follows
_FORMAT = 1
#: Bytes of rows that the ``.wandb`` file holds too, after which the file is written anew
#: without them.
COMPACT_AFTER_BYTES = 1 << 20


def file_name(wandb_id: str) -> str:
    """The name of the file of unsaved rows of the W&B run ``wandb_id``."""
    return f"noether-unsaved-{wandb_id}.rows"


class HistoryCounter:
    """Counts the history records of a ``.wandb`` file, reading only what it has not read.

    :attr:`offset` is where the first record not counted yet begins (a chunk header), and
    :attr:`rows` how many history records come before it. Only whole, intact records count:
    a block that ``wandb-core`` is still writing is read again next time.
    """

    def __init__(self, path: Path, offset: int = FILE_HEADER_SIZE, rows: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.rows = rows
        self._record_type: Any = None
        self._warned = False

    def advance(self) -> int:
        """Count the records written since the last call; the history records so far."""
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
        except OSError:
            return self.rows
        position = 0  # in data; the file offset is self.offset + position
        record_start = 0
        parts: list[bytes] | None = None
        while position + CHUNK_HEADER.size <= len(data):
            left_in_block = BLOCK_SIZE - (self.offset + position) % BLOCK_SIZE
            if left_in_block < CHUNK_HEADER.size:  # a block's zero-filled tail
                position += left_in_block
                if parts is None:
                    record_start = position
                continue
            checksum, length, kind = CHUNK_HEADER.unpack_from(data, position)
            end = position + CHUNK_HEADER.size + length
            if end > len(data) or length > left_in_block - CHUNK_HEADER.size:
                break  # not written yet (or not intact): read again next time
            chunk = data[position + CHUNK_HEADER.size : end]
            if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != checksum:
                break
            if kind in (_FULL, _FIRST):
                record_start, parts = position, [chunk]
            elif kind in (_MIDDLE, _LAST) and parts is not None:
                parts.append(chunk)
            else:
                break  # a chunk type this reader does not know: stop rather than guess
            position = end
            if kind in (_FULL, _LAST):
                assert parts is not None
                self.rows += self._is_history(b"".join(parts))
                parts = None
                record_start = position
        self.offset += record_start if parts is not None else position
        return self.rows

    def _is_history(self, payload: bytes) -> bool:
        """Whether ``payload`` is a history record; False when it cannot be parsed (a row not
        counted is only logged again, never lost)."""
        try:
            if self._record_type is None:
                module = importlib.import_module("wandb.proto.wandb_internal_pb2")
                self._record_type = module.Record
            record = self._record_type()
            record.ParseFromString(payload)
            return bool(record.WhichOneof("record_type") == "history")
        except Exception as error:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "W&B: cannot read the records of %s (%s); rows a killed process logged to "
                    "it may be logged twice when its run is resumed",
                    self.path,
                    error,
                )
            return False


class UnsavedRows:
    """The file of rows of one offline run that its ``.wandb`` file may not hold yet.

    Used by one thread (the tracker's delivery thread). :meth:`add` costs no system call;
    :meth:`flush` one write and one ``stat`` when rows were added, nothing otherwise. Rows are
    kept in memory only until the next flush: the file holds them after that.
    """

    def __init__(self, path: Path, wandb_file: Path, carried: list[Row], skip: int = 0) -> None:
        """Start the file at ``path`` (replacing any) for the run writing ``wandb_file``, with
        ``carried``: rows an earlier process lost, which the caller logs first, right after;
        and ``skip``: calls given again that an earlier process's ``.wandb`` file holds."""
        self.path = path
        self.counter = HistoryCounter(wandb_file)
        #: Calls still to skip (the caller counts them down as they come).
        self.skip = skip
        self._written_skip = skip  # the count the file says
        self._next = 1  # the number of the next row logged (its history record's, from 1)
        self._unwritten: list[Row] = []  # added since the last flush
        #: The frames of rows in the file that the ``.wandb`` file may not hold all of yet:
        #: (number of the first row, of the last, offset of the frame in the file).
        self._frames: deque[tuple[int, int, int]] = deque()
        self._seen_size = -1
        self._header_size = 0
        # the carried rows replace the file that held them in one step: a kill loses neither
        first = _frame(("rows", 1, carried, skip)) if carried else b""
        self._file, self._size = self._rewrite(first)
        if carried:
            self._frames.append((1, len(carried), self._header_size))
            self._next = len(carried) + 1

    def add(self, values: Mapping[str, Value], step: int) -> None:
        """Note a row just logged (``run.log`` returned)."""
        self._unwritten.append((dict(values), step))

    def flush(self) -> None:
        """Write the rows added (and the calls skipped) since the last flush to the file and
        hand them to the OS; then forget the rows ``wandb-core`` has written to the ``.wandb``
        file meanwhile."""
        if not self._unwritten and self.skip == self._written_skip:
            return
        first, last = self._next, self._next + len(self._unwritten) - 1
        frame = _frame(("rows", first, self._unwritten, self.skip))
        try:
            self._file.write(frame)
            self._file.flush()
        except BaseException:
            self._cut_back()  # no torn frame before the next flush writes this one again
            raise
        if self._unwritten:
            self._frames.append((first, last, self._size))
        self._size += len(frame)
        self._next = last + 1
        self._unwritten = []
        self._written_skip = self.skip
        self._forget_saved()

    def close(self, *, finished: bool) -> None:
        """Close the file; delete it when the run ``finished`` (its ``.wandb`` file is
        complete), else keep it for a resumed run."""
        self._file.close()
        if finished:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _cut_back(self) -> None:
        """Drop whatever a failed write left after the last whole frame."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.truncate(self.path, self._size)
        self._file = self.path.open("ab")

    def _forget_saved(self) -> None:
        try:
            size = self.counter.path.stat().st_size
        except OSError:
            return
        if size == self._seen_size:
            return  # wandb-core wrote nothing since: nothing to read
        self._seen_size = size
        saved = self.counter.advance()
        while self._frames and self._frames[0][1] <= saved:
            self._frames.popleft()
        live = self._frames[0][2] if self._frames else self._size
        if live - self._header_size >= COMPACT_AFTER_BYTES:
            self._file.close()
            with self.path.open("rb") as file:
                file.seek(live)
                tail = file.read()
            self._file, self._size = self._rewrite(tail)
            moved = self._header_size - live
            self._frames = deque((first, last, at + moved) for first, last, at in self._frames)

    def _rewrite(self, frames: bytes) -> tuple[IO[bytes], int]:
        """Write the file anew (atomically): where the ``.wandb`` file was read up to, then
        ``frames``; return it open for appending, and its size."""
        counter = self.counter
        written = self._next - 1  # rows are numbered as they are written
        where = (str(counter.path), counter.offset, counter.rows, written, self._written_skip)
        header = _frame(("header", _FORMAT, *where))
        self._header_size = len(header)
        temporary = self.path.with_name(self.path.name + ".new")
        with temporary.open("wb") as file:
            file.write(header + frames)
        os.replace(temporary, self.path)
        return self.path.open("ab"), len(header) + len(frames)


def lost_rows(path: Path) -> tuple[list[Row], int]:
    """What the run which left the file of unsaved rows at ``path`` needs of its successor:
    the rows it logged up to its last flush that its ``.wandb`` file does not hold, in order,
    and how many of the calls given again after that flush the file does hold (the calls a
    replacement delivery process skips). Nothing (``[], 0``) when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    frames = list(_frames(data))
    try:
        (kind, version, wandb_file, offset, saved, written, skip), *rows = frames
        if (kind, version) != ("header", _FORMAT):
            raise ValueError(f"a {kind!r} frame of version {version!r} first")
        saved = HistoryCounter(Path(wandb_file), offset, saved).advance()
        lost: list[Row] = []
        for _, first, logged, skip_then in rows:
            lost += logged[max(0, saved + 1 - first) :]
            written = max(written, first + len(logged) - 1)
            skip = skip_then
    except (ValueError, TypeError) as error:
        logger.warning(
            "W&B: %s is not a file of unsaved rows this plugin can read (%s)", path, error
        )
        return [], 0
    return lost, skip + max(0, saved - written)


def _frame(content: Any) -> bytes:
    payload = pickle.dumps(content, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


#: What unpickling a frame may make besides plain values: the media types, and numpy arrays
#: (numpy 2 and 1 spell their modules differently) of numbers (numpy makes no object array of
#: a buffer).
_ALLOWED = frozenset(
    {
        ("noether.core.trackers.media", "Image"),
        ("noether.core.trackers.media", "Histogram"),
        ("noether.core.trackers.media", "Table"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
    }
)


class _RowUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a value of a logged row")
        return super().find_class(module, name)


def _frames(data: bytes) -> Any:
    """The frames of a file of unsaved rows, up to the first cut-off or damaged one."""
    position = 0
    while position + _FRAME.size <= len(data):
        length, checksum = _FRAME.unpack_from(data, position)
        payload = data[position + _FRAME.size : position + _FRAME.size + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            return  # cut off by a kill: the frames before it are whole
        try:
            yield _RowUnpickler(io.BytesIO(payload)).load()
        except Exception as error:
            logger.warning("W&B: a file of unsaved rows ends in a frame it cannot read: %s", error)
            return
        position += _FRAME.size + length
