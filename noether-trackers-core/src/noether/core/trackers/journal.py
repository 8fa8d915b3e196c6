"""The run journal: an append-only JSON Lines record of every call, readable after a crash.

The format is documented in ``docs/journal.md``. In short: one JSON object per line, each with
``op`` (``journal``, ``init``, ``log``, ``summary`` or ``close``) and ``t`` (wall time). Logged
values are JSON numbers (NaN and infinities as ``NaN``/``Infinity``/``-Infinity``, as Python's
json writes them), strings (text), or objects with a ``type`` for media: ``image`` (a PNG under
``media/``), ``histogram`` (bins inline) and ``table`` (cells inline).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.run_files import to_plain_value
from noether.core.trackers.values import Value

JOURNAL_FILE = "journal.jsonl"
MEDIA_DIR = "media"
FORMAT_VERSION = 1
logger = logging.getLogger("noether.trackers")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class JournalError(ValueError):
    """A journal line that is not valid and is not a torn last line."""


class JournalWriter:
    """Appends records to ``run_dir/journal.jsonl``; media go to ``run_dir/media/``.

    Not thread-safe: one thread (the delivery engine's) writes. :meth:`flush` hands buffered
    lines to the OS; :meth:`sync` also asks the OS to put them on disk. Byte offsets let a
    backend that fell behind read a span of records back (:func:`read_span`) instead of
    keeping them in memory (the engine flushes before it hands such a span on).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL_FILE
        run_dir.mkdir(parents=True, exist_ok=True)
        ends_torn = self.path.exists() and _ends_without_newline(self.path)
        self._file: IO[bytes] = self.path.open("ab")
        self.offset = self._file.tell()
        if ends_torn:  # a crashed earlier run left half a line: never glue a record onto it
            self._file.write(b"\n")
            self.offset += 1
        self._media_count = 0
        self.dirty = False

    def write(self, record: Mapping[str, Any]) -> tuple[int, int]:
        """Append one record (its ``values``, if any, already encoded); return its byte span."""
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        self._file.write(line)
        start = self.offset
        self.offset += len(line)
        self.dirty = True
        return start, self.offset

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
        self._media_count += 1
        name = f"{self._media_count:06d}-step{step}-{_UNSAFE.sub('_', key)[:80]}.png"
        relative = f"{MEDIA_DIR}/{name}"
        (self.run_dir / MEDIA_DIR).mkdir(exist_ok=True)
        (self.run_dir / relative).write_bytes(image.to_png())
        return relative

    def flush(self) -> None:
        """Hand buffered lines to the OS (they survive the process being killed)."""
        self._file.flush()
        self.dirty = False

    def sync(self) -> None:
        """Flush and ask the OS to write the journal to disk."""
        self.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        if not self._file.closed:
            self.sync()
            self._file.close()


def _ends_without_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        if stream.tell() == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


def read_journal(run_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the records of a run's journal, values decoded back to noether-trackers values.

    A torn line (from a crash mid-write: the last line, or one followed by the header of a
    writer that reopened the journal) is skipped with a warning; any other invalid line raises
    :class:`JournalError` naming the line.
    """
    directory = Path(run_dir)
    path = directory / JOURNAL_FILE if directory.is_dir() else directory
    for record in iter_records(path):
        yield decode_record(record, path.parent)


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of the journal file ``path`` as JSON data (media not decoded)."""
    with path.open("r", encoding="utf-8") as stream:
        lines = [line for line in enumerate(stream, start=1) if line[1].strip()]
    for index, (number, line) in enumerate(lines):
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            following = lines[index + 1][1] if index + 1 < len(lines) else None
            if following is None or following.startswith('{"op":"journal"'):
                logger.warning(
                    "%s:%d: skipping a torn line (the run was killed mid-write)", path, number
                )
                continue
            raise JournalError(f"{path}:{number}: not a JSON record ({error})") from error


def read_span(path: Path, start: int, end: int) -> Iterator[dict[str, Any]]:
    """The records written between byte offsets ``start`` and ``end`` (from
    :meth:`JournalWriter.write`), decoded."""
    with path.open("rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    for line in data.splitlines():
        yield decode_record(json.loads(line), path.parent)


def decode_record(record: dict[str, Any], base: Path) -> dict[str, Any]:
    """``record`` with the values of a ``log`` or ``summary`` record decoded."""
    if "values" in record and record.get("op") in ("log", "summary"):
        record["values"] = {
            key: decode_value(value, base) for key, value in record["values"].items()
        }
    return record


def decode_value(value: Any, base: Path) -> Value:
    """One journaled value back as a number, text or media object."""
    if not isinstance(value, dict):
        return value  # type: ignore[no-any-return]
    kind = value.get("type")
    if kind == "image":
        return Image.from_png((base / value["path"]).read_bytes(), caption=value.get("caption"))
    if kind == "histogram":
        statistics = {name: value[name] for name in ("min", "max", "sum", "sum_squares", "dropped")}
        return Histogram.from_bins(value["edges"], value["counts"], **statistics)
    if kind == "table":
        return Table(value["columns"], value["rows"])
    raise JournalError(f"unknown journal value type {kind!r}")
