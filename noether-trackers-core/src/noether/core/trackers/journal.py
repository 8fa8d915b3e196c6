"""Reading a run's journal: an append-only JSON Lines record of every call, kept in the run's
output directory and readable after a crash.

The format is documented in ``docs/journal.md`` and its records are the types of
:mod:`noether.core.trackers.records`. In short: one JSON object per line, each with ``op``
(``journal``, ``init``, ``log``, ``summary``, ``rewind`` or ``close``) and ``t`` (wall time).
Logged values are JSON numbers (NaN and infinities as ``NaN``/``Infinity``/``-Infinity``, as
Python's json writes them), strings (text), or objects with a ``type`` for media: ``image`` (a
PNG under ``media/``), ``histogram`` (bins inline) and ``table`` (cells inline).

What a journal holds is data, never trusted: lines and values that cannot be read are skipped
and counted, and media are read only from the run's own ``media/`` folder.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from noether.core.trackers.errors import JournalLockedError
from noether.core.trackers.records import (
    FORMAT_VERSION,
    JournalError,
    LogRecord,
    Record,
    SummaryRecord,
    UnknownRecord,
    decode_value,
    from_json,
    to_json,
)
from noether.core.trackers.run_files import JOURNAL_FILE, MEDIA_DIR
from noether.core.trackers.values import Value

__all__ = [
    "FORMAT_VERSION",
    "JOURNAL_FILE",
    "MEDIA_DIR",
    "JournalError",
    "JournalLockedError",
    "JournalReader",
    "SkippedLine",
    "read_journal",
    "read_media",
]

logger = logging.getLogger("noether.trackers")
#: Journaled values that are already what they decode to.
_PLAIN_VALUES = frozenset({float, int, str})


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

    :meth:`records` yields the typed records (:mod:`noether.core.trackers.records`), in order;
    iterating the reader itself yields each record as its JSON object (a dict), as earlier
    versions did. Values are decoded back to noether-trackers values unless ``decode=False``.
    A line that is not a journal record (a torn line from a crash, bad JSON or UTF-8, not an
    object, a record without the fields its ``op`` needs) is skipped as a whole; a logged value
    that cannot be decoded (an unknown type, a malformed histogram or table, an image file
    that is missing, unreadable or outside the run's ``media/`` folder) is left out of its
    record. After reading, :attr:`skipped_lines`, :attr:`skipped_values` and
    :attr:`first_skipped` say what was left out and :meth:`describe_skipped` says it in one
    sentence. Reading the file itself can raise ``OSError`` (missing, a directory, no
    permission). For example::

        reader = JournalReader("outputs/run1")
        records = list(reader.records())
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

    def records(self) -> Iterator[Record | UnknownRecord]:
        """The journal's records, in order (see the class doc for what is skipped)."""
        self.skipped_lines = self.skipped_values = 0
        self.first_skipped = None
        base = self.path.parent
        for number, line, following in _numbered_lines(self.path):
            data, reason = _parse(line, following)
            if reason is not None:
                self._skip(SkippedLine(number, reason))
                continue
            try:
                record = from_json(data)
            except JournalError as error:
                self._skip(SkippedLine(number, str(error)))
                continue
            if self.decode and isinstance(record, LogRecord | SummaryRecord):
                record = replace(record, values=self._decoded(record.values, number, base))
            yield record

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for record in self.records():
            yield record.data if isinstance(record, UnknownRecord) else to_json(record)

    def _decoded(self, values: dict[str, Any], number: int, base: Path) -> dict[str, Value]:
        decoded: dict[str, Value] = {}
        for key, value in values.items():
            if type(value) in _PLAIN_VALUES:  # numbers and text, most values: nothing to decode
                decoded[key] = value
                continue
            try:
                decoded[key] = decode_value(value, lambda path: read_media(base, path))
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


def read_journal(run_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a run's journal as JSON objects, values decoded back to
    noether-trackers values.

    Lines (and values) that cannot be read are skipped: a torn line from a crash, or a line
    damaged anywhere in the file. Once the journal is read to its end, one warning names the
    file, how many were skipped and the first of them. Use :class:`JournalReader` for the
    typed records and the counts.
    """
    reader = JournalReader(run_dir)
    yield from reader
    reader.warn_skipped()


def read_span(run_dir: Path, data: bytes, where: str) -> Iterator[LogRecord | SummaryRecord]:
    """The records of ``data``, lines a writer handed out as one span (each must be a log or
    summary record), values decoded; :class:`JournalError` naming ``where`` when one is not."""
    for line in data.splitlines():
        parsed, reason = _parse(line, b"")
        if reason is not None:
            raise JournalError(f"{where}: {reason}")
        try:
            record = from_json(parsed)
        except JournalError as error:
            raise JournalError(f"{where}: {error}") from None
        if not isinstance(record, LogRecord | SummaryRecord):
            raise JournalError(f"{where}: not a log or summary record ({type(record).__name__})")
        values = {
            key: decode_value(value, lambda path: read_media(run_dir, path))
            for key, value in record.values.items()
        }
        yield replace(record, values=values)


def record_spans(path: Path, start: int) -> list[tuple[int, int]]:
    """The byte spans of the readable log and summary records of the journal at ``path``
    from byte offset ``start`` on, in order (a replacement delivery process reads back from
    them what its predecessor's backends had not taken)."""
    spans = []
    with _open_regular_file(path) as stream:
        stream.seek(start)
        offset = start
        for line in stream:
            end = offset + len(line)
            if line.endswith(b"\n"):  # a last line without its newline was cut short
                parsed, reason = _parse(line, b"")
                if reason is None and isinstance(parsed, dict) and parsed.get("op") in _CALLS:
                    spans.append((offset, end))
            offset = end
    return spans


#: The ``op`` of the records that stand for the run's calls.
_CALLS = frozenset({LogRecord.OP, SummaryRecord.OP})


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
