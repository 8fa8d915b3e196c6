"""The run journal: an append-only JSON Lines record of every call, readable after a crash.

The format is documented in ``docs/journal.md``. In short: one JSON object per line, each with
``op`` (``journal``, ``init``, ``log``, ``summary`` or ``close``) and ``t`` (wall time). Logged
values are JSON numbers (NaN and infinities as ``NaN``/``Infinity``/``-Infinity``, as Python's
json writes them), strings (text), or objects with a ``type`` for media: ``image`` (a PNG under
``media/``), ``histogram`` (bins inline) and ``table`` (cells inline).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
import re
import stat
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.run_files import to_plain_value
from noether.core.trackers.run_info import MAX_STEP
from noether.core.trackers.values import Value

JOURNAL_FILE = "journal.jsonl"
MEDIA_DIR = "media"
FORMAT_VERSION = 1
#: Buffered journal lines beyond this many bytes are handed to the OS at once.
FLUSH_BYTES = 1 << 20
logger = logging.getLogger("noether.trackers")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

try:
    import fcntl
except ImportError:  # no advisory file locks (Windows)
    fcntl = None  # type: ignore[assignment]


class JournalError(ValueError):
    """A journal line or value that cannot be read (:class:`JournalReader` skips them)."""


class JournalLockedError(TrackerConfigError):
    """Another process, or another tracker of this process, is writing the run in this output
    directory (its journal is locked): ``init()`` refuses to start a second writer there."""

    def __init__(self, run_dir: Path, *, same_process: bool) -> None:
        """The error for ``run_dir``, held by this process or another."""
        #: The output directory another writer holds.
        self.run_dir = run_dir
        if same_process:
            who, then = "another tracker of this process", "close that tracker first"
        else:
            who, then = "another process", "wait until it ends"
        super().__init__(
            [
                f"output_path {run_dir}: {who} is writing a run in this directory "
                f"(its {JOURNAL_FILE} is locked); {then}, or give this run an output path "
                "of its own"
            ]
        )


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

    def write(self, record: Mapping[str, Any]) -> tuple[int, int]:
        """Append one record (its ``values``, if any, already encoded); return its byte span."""
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        start = self.offset
        self.offset += len(line)
        self.dirty = True
        if self._buffered_bytes >= FLUSH_BYTES:
            self.flush()
        return start, self.offset

    def records(self, start: int, end: int) -> Iterator[dict[str, Any]]:
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
        for line in data.splitlines():
            yield _strict_record(line, f"{self.path}: bytes {start}-{end}", self.run_dir)

    def encode_values(self, values: Mapping[str, Value], step: int | None) -> dict[str, Any]:
        """Values as JSON data; images are written to ``media/`` and referenced by path."""
        encoded: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, int | float | str):
                encoded[key] = value
            elif isinstance(value, Image):
                encoded[key] = {
                    "type": "image",
                    "path": self._write_image(key, step, value),
                    "caption": value.caption,
                }
            elif isinstance(value, Histogram):
                encoded[key] = {
                    "type": "histogram",
                    "edges": value.edges.tolist(),
                    "counts": value.counts.tolist(),
                    "min": value.min,
                    "max": value.max,
                    "sum": value.sum,
                    "sum_squares": value.sum_squares,
                    "dropped": value.dropped,
                }
            else:
                encoded[key] = {
                    "type": "table",
                    "columns": list(value.columns),
                    "rows": [[to_plain_value(cell) for cell in row] for row in value.rows],
                }
        return encoded

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


# ---- reading -------------------------------------------------------------------------------

#: Journaled values that are already what they decode to.
_PLAIN_VALUES = frozenset({float, int, str})


def _is_step(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_STEP


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


#: Per ``op``: the fields a record needs, each with its check and what the check wants. A
#: record of an ``op`` not listed here (a later format version) is passed on as it is.
_FIELDS: dict[str, tuple[tuple[str, Callable[[Any], bool], str], ...]] = {
    "journal": (("version", lambda value: type(value) is int, "an int"),),
    "init": (
        ("run_name", _is_str, "a string"),
        ("run_id", _is_str, "a string"),
        ("stage_name", lambda value: value is None or isinstance(value, str), "a string or null"),
    ),
    "log": (
        ("step", _is_step, "a step (an int from 0 to 2**63-1)"),
        ("values", _is_dict, "an object"),
    ),
    "summary": (("values", _is_dict, "an object"),),
    "rewind": (("step", _is_step, "a step (an int from 0 to 2**63-1)"),),
    "close": (("status", _is_str, "a string"),),
}
#: Fields that may be missing from a record; a reader fills in these defaults.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "init": {"stage_name": None, "config": None},
    "close": {"summary": {}, "undelivered": {}},
}


def check_record(record: Any) -> str | None:
    """Why ``record`` (one parsed journal line) is not a journal record; None when it is one.

    A known ``op`` needs its fields, of the right types (``docs/journal.md``); optional fields
    that are missing are filled in.
    """
    if not isinstance(record, dict):
        return f"not a JSON object (a JSON {type(record).__name__})"
    operation = record.get("op")
    if operation == "log" and _is_step(record.get("step")) and type(record.get("values")) is dict:
        return None  # the common case, checked first
    if not isinstance(operation, str):
        return "a JSON object without an `op`"
    for name, default in _DEFAULTS.get(operation, {}).items():
        if name not in record:
            record[name] = copy.copy(default)  # never one dict shared by several records
    for name, check, wanted in _FIELDS.get(operation, ()):
        if name not in record:
            return f"a `{operation}` record without `{name}`"
        if not check(record[name]):
            return f"a `{operation}` record whose `{name}` is not {wanted}"
    return None


@dataclass(frozen=True)
class SkippedLine:
    """A journal line that a reader left out (or, with a ``key``, one value of it), and why."""

    line: int
    reason: str
    key: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", value '{self.key}'" if self.key is not None else "")
        return f"{where}: {self.reason}"


class JournalReader:
    """The records of a run's journal, read leniently: what cannot be read is skipped and
    counted, never raised.

    Iterate it for the records, in order (values decoded back to noether-trackers values unless
    ``decode=False``). A line that is not a journal record (a torn line from a crash, bad JSON
    or UTF-8, not an object, a record without the fields its ``op`` needs) is skipped as a
    whole; a logged value that cannot be decoded (an unknown type, a malformed histogram or
    table, an image file that is missing, unreadable or outside the run's ``media/`` folder) is
    left out of its record. After iterating, :attr:`skipped_lines`, :attr:`skipped_values`
    and :attr:`first_skipped` say what was left out and :meth:`describe_skipped` says it in one
    sentence. Reading the file itself can raise ``OSError`` (missing, a directory, no
    permission). For example::

        reader = JournalReader("outputs/run1")
        records = list(reader)
        if reader.skipped:
            print(reader.describe_skipped())
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, decode: bool = True) -> None:
        """Read ``run_dir/journal.jsonl`` (or ``run_dir`` itself, when it is a journal file)."""
        directory = Path(run_dir)
        #: The journal file.
        self.path = directory / JOURNAL_FILE if directory.is_dir() else directory
        self.decode = decode
        #: Lines skipped as a whole, and values left out of the records yielded.
        self.skipped_lines = self.skipped_values = 0
        #: The first line (or value) skipped, with the reason.
        self.first_skipped: SkippedLine | None = None

    @property
    def skipped(self) -> int:
        """Lines and values skipped so far."""
        return self.skipped_lines + self.skipped_values

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.skipped_lines = self.skipped_values = 0
        self.first_skipped = None
        base = self.path.parent
        for number, line, following in _numbered_lines(self.path):
            record, reason = _parse(line, following)
            if reason is None:
                reason = check_record(record)
            if reason is not None:
                self._skip(SkippedLine(number, reason))
                continue
            if self.decode and record["op"] in ("log", "summary"):
                record["values"] = self._decoded_values(record["values"], number, base)
            yield record

    def _decoded_values(self, values: dict[str, Any], number: int, base: Path) -> dict[str, Value]:
        decoded: dict[str, Value] = {}
        for key, value in values.items():
            if type(value) in _PLAIN_VALUES:  # numbers and text, most values: nothing to decode
                decoded[key] = value
                continue
            try:
                decoded[key] = decode_value(value, base)
            except JournalError as error:
                self._skip(SkippedLine(number, str(error), key))
        return decoded

    def _skip(self, skipped: SkippedLine) -> None:
        if skipped.key is None:
            self.skipped_lines += 1
        else:
            self.skipped_values += 1
        if self.first_skipped is None:
            self.first_skipped = skipped

    def count_skipped(self) -> str:
        """How many lines and values were skipped, in words (``"2 unreadable lines"``)."""
        parts = [
            f"{count} unreadable {noun}{'s' if count != 1 else ''}"
            for count, noun in ((self.skipped_lines, "line"), (self.skipped_values, "value"))
            if count
        ]
        return " and ".join(parts) or "nothing"

    def describe_skipped(self) -> str | None:
        """What was skipped, in one sentence naming the file; None when nothing was."""
        if self.first_skipped is None:
            return None
        return f"{self.path}: skipped {self.count_skipped()} (first: {self.first_skipped})"

    def warn_skipped(self, consequence: str = "") -> None:
        """Log :meth:`describe_skipped` as one warning (if anything was skipped)."""
        description = self.describe_skipped()
        if description is not None:
            logger.warning("%s%s", description, consequence)


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes, bytes | None]]:
    """The non-blank lines of ``path``, numbered from 1, each with the next one (or None)."""
    with _open_regular_file(path) as stream:
        previous: tuple[int, bytes] | None = None
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            if previous is not None:
                yield (*previous, line)
            previous = (number, line)
        if previous is not None:
            yield (*previous, None)


def _open_regular_file(path: Path, *, follow: bool = True) -> IO[bytes]:
    """``path`` opened for reading; ``OSError`` unless it is a regular file (a FIFO or device
    where a journal or image should be would block or never end). ``follow=False``: not
    through a symlink either."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags)
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(descriptor, "rb")


def _parse(line: bytes, following: bytes | None) -> tuple[Any, str | None]:
    """The JSON value of ``line``, or why it has none."""
    try:
        return json.loads(line.decode("utf-8")), None
    except (ValueError, RecursionError) as error:
        if following is None or following.startswith(b'{"op":"journal"'):
            # the last line, or one a reopening writer started after: a write cut short
            return None, "a torn line (the run was killed mid-write)"
        if isinstance(error, UnicodeDecodeError):
            return None, "not UTF-8 text"
        if isinstance(error, RecursionError):
            return None, "JSON nested too deeply to read"
        # JSONDecodeError, or an int literal too long to convert
        return None, f"not JSON ({getattr(error, 'msg', error)})"


def read_journal(run_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a run's journal, values decoded back to noether-trackers values.

    Lines (and values) that cannot be read are skipped: a torn line from a crash, or a line
    damaged anywhere in the file. Once the journal is read to its end, one warning names the
    file, how many were skipped and the first of them. Use :class:`JournalReader` to get the
    counts.
    """
    reader = JournalReader(run_dir)
    yield from reader
    reader.warn_skipped()


def _strict_record(line: bytes, where: str, base: Path) -> dict[str, Any]:
    """One journal line that must be a record (a span is handed out for exactly the records
    written there), decoded; :class:`JournalError` naming ``where`` when it is not."""
    record, reason = _parse(line, b"")
    reason = reason or check_record(record)
    if reason is not None:
        raise JournalError(f"{where}: {reason}")
    return decode_record(record, base)


def decode_record(record: dict[str, Any], base: Path) -> dict[str, Any]:
    """``record`` with the values of a ``log`` or ``summary`` record decoded (in place);
    :class:`JournalError` for a value that cannot be (see :func:`decode_value`)."""
    if "values" in record and record.get("op") in ("log", "summary"):
        record["values"] = {
            key: decode_value(value, base) for key, value in record["values"].items()
        }
    return record


def decode_value(value: Any, base: Path) -> Value:
    """One journaled value of the run in ``base`` back as a number, text or media object.

    Raises :class:`JournalError` for anything else: an unknown type, a malformed histogram or
    table, an image that is not a PNG file inside ``base/media/`` (see :func:`read_media`).
    """
    if isinstance(value, int | float | str):
        return value
    if not isinstance(value, dict):
        raise JournalError(f"not a journal value (a JSON {type(value).__name__})")
    kind = value.get("type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise JournalError(f"unknown journal value type {kind!r}")
    try:
        return decoder(value, base)
    except JournalError:
        raise
    except Exception as error:  # hostile or damaged data may break a decoder in any way
        raise JournalError(f"malformed {kind} value ({type(error).__name__}: {error})") from error


def _decode_image(value: dict[str, Any], base: Path) -> Image:
    caption = value.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise JournalError("an image caption that is not a string")
    return Image.from_png(read_media(base, value.get("path")), caption=caption)


def _decode_histogram(value: dict[str, Any], base: Path) -> Histogram:
    statistics = {name: value[name] for name in ("min", "max", "sum", "sum_squares", "dropped")}
    return Histogram.from_bins(value["edges"], value["counts"], **statistics)


def _decode_table(value: dict[str, Any], base: Path) -> Table:
    return Table(value["columns"], value["rows"])


_DECODERS: dict[str, Callable[[dict[str, Any], Path], Value]] = {
    "image": _decode_image,
    "histogram": _decode_histogram,
    "table": _decode_table,
}


def read_media(run_dir: Path, relative: Any) -> bytes:
    """The bytes of the media file a journal names ``relative`` (``media/...``) in ``run_dir``.

    Only a regular file inside the run's own ``media/`` folder is read. A path that leads
    anywhere else (absolute, through ``..``, or through a symlink, ``media/`` itself included)
    raises :class:`JournalError` without being read: a journal from elsewhere must not make a
    replay upload the replaying machine's files.
    """
    if not isinstance(relative, str) or not relative:
        raise JournalError("an image without a file path")
    try:
        root = run_dir.resolve()
        target = (root / relative).resolve()
    except (OSError, RuntimeError, ValueError) as error:  # symlink loops, NUL bytes
        raise JournalError(f"image path {relative!r} cannot be resolved ({error})") from error
    media = root / MEDIA_DIR
    if media.is_symlink():
        raise JournalError(f"{MEDIA_DIR}/ is a symlink, not the run's own folder: not read")
    if target == media or not target.is_relative_to(media):
        raise JournalError(
            f"image path {relative!r} leads outside the run's {MEDIA_DIR}/ folder: not read"
        )
    return _read_regular_file(target, relative)


def _read_regular_file(target: Path, relative: str) -> bytes:
    # not through a symlink swapped in after the containment check
    try:
        with _open_regular_file(target, follow=False) as stream:
            return stream.read()
    except FileNotFoundError:
        raise JournalError(f"image file {relative} is missing") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise JournalError(f"image file {relative} cannot be read ({reason})") from None
