"""The run's journal as the delivery engine keeps it: its failures never break delivery.

The first ``OSError`` (a full disk, a file size limit, a vanished directory) stops journaling
for the rest of the run: it is logged once, remembered for the report, and the engine is told
(``on_failure``) so that it hands every backend the calls it had spilled to the journal, which
from then on cannot hold more. What the writer could not write stays readable in memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from noether.core.trackers._engine.journal_writer import JournalWriter
from noether.core.trackers.records import LogRecord, Record, SummaryRecord

logger = logging.getLogger("noether.trackers")


class JournalKeeper:
    """Writes records to a run's journal, if it has one, until writing first fails."""

    def __init__(self, writer: JournalWriter | None, on_failure: Callable[[], None]) -> None:
        """Keep ``writer`` (None: the run has no journal); ``on_failure`` is called once, on
        the dispatcher thread, when the journal stops being written."""
        self.writer = writer
        self._on_failure = on_failure
        #: Why the journal stopped being written (None while it works).
        self.error: str | None = None
        # the run's calls (log and summary records) given to write, and how many of them
        # were on the OS's side at the last successful flush
        self._given = self._flushed = 0

    @property
    def kept(self) -> int:
        """The run's calls the journal holds safely: handed to the OS, or (without a working
        journal, which can keep nothing more) every call given."""
        if self.writer is None or self.error is not None:
            return self._given
        return self._flushed

    @property
    def path(self) -> Path | None:
        """The journal file, if the run has one."""
        return self.writer.path if self.writer is not None else None

    def write(self, record: Record) -> tuple[int, int] | None:
        """Append ``record``; its byte span, or None when the journal is not working."""
        if isinstance(record, LogRecord | SummaryRecord):
            self._given += 1
        if self.writer is None or self.error is not None:
            return None
        try:
            return self.writer.write(record)
        except OSError as error:
            self._failed(error)
            return None

    def flush(self) -> None:
        """Hand what is buffered to the OS, if anything is."""
        if self.writer is None or self.error is not None or not self.writer.dirty:
            return
        given = self._given
        try:
            self.writer.flush()
        except OSError as error:
            self._failed(error)
        else:
            self._flushed = given

    def read_span(self, start: int, end: int) -> Iterator[LogRecord | SummaryRecord]:
        """The records journaled between two byte offsets (see ``JournalWriter.read_span``)."""
        assert self.writer is not None  # spans exist only with a journal
        return self.writer.read_span(start, end)

    def close(self) -> None:
        """Sync and close the journal (and give its lock back)."""
        if self.writer is None:
            return
        try:
            self.writer.close()
        except OSError as error:
            self._failed(error)

    def abandon(self) -> None:
        """Give the journal (and its lock) back without a word: the run did not start."""
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()

    def _failed(self, error: OSError) -> None:
        if self.error is not None or self.writer is None:
            return
        self.error = f"{type(error).__name__}: {error}"
        logger.error(
            "noether-trackers: the journal %s cannot be written (%s); training and the "
            "backends go on without it",
            self.writer.path,
            error,
        )
        with contextlib.suppress(OSError):  # what does not make it stays readable in memory
            self.writer.flush()
        self._on_failure()
