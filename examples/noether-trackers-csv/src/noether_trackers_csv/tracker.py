"""The ``csv`` backend: :class:`CsvTracker`, one file per run, one row per value."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from noether.core.trackers.plugin import (
    BaseTracker,
    RunInfo,
    RunLocation,
    RunStatus,
    Value,
    flatten,
    safe_component,
    shown_path,
)

COLUMNS = ("record", "step", "key", "value")


class CsvTracker(BaseTracker):
    """Writes ``<directory>/<run_id>.csv`` with the columns ``record,step,key,value``.

    The run id is data, not a path: it names the file through
    :func:`~noether.core.trackers.plugin.safe_component`, so an id such as ``../x`` or
    ``/tmp/x`` still gives one file in ``directory`` (``..%2Fx.csv``); a plain id is the
    file name as it is.

    ``record`` is ``scalar`` or ``text`` for logged values, ``run`` for the run's name (key
    ``name``: the run name, or ``run/stage``), ``config`` for the run's (flattened)
    hyperparameters and ``summary`` for summary values (the status is the summary value
    ``_status``); ``step`` is empty for the last three. Scalars are written with ``repr`` so
    that NaN and infinities read back exactly.
    """

    #: The plugin API version this backend was written for (noether-trackers' ``PLUGIN_API``).
    plugin_api = "1.0"
    #: A CSV cell holds numbers and text; the core skips images, histograms and tables for
    #: this backend, with one warning per key.
    supported_values = frozenset({"scalar", "text"})
    #: Only the standard library.
    backend_library = None

    def __init__(
        self, *, directory: str = "csv_logs", output_path: str | os.PathLike[str] | None = None
    ) -> None:
        """``directory``: the folder of the CSV files, inside the run's output path."""
        super().__init__(output_path=output_path)
        base = Path(output_path) if output_path is not None else Path.cwd()
        self.directory = base / directory
        self.path: Path | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None

    def _init(self, run: RunInfo) -> None:
        """Open (or, for a resumed run, append to) the run's file and write its config."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{safe_component(run.run_id)}.csv"
        new_file = not self.path.exists()
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if new_file:
            self._writer.writerow(COLUMNS)
        self._writer.writerow(("run", "", "name", json.dumps(run.display_name)))
        for key, value in flatten(run.config).items():
            self._writer.writerow(("config", "", key, json.dumps(value)))

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        """One row per value (a CSV file has no column for ``wall_time``)."""
        for key, value in values.items():
            record = "text" if isinstance(value, str) else "scalar"
            self._writer.writerow((record, step, key, value if record == "text" else repr(value)))

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        """One ``summary`` row per value, JSON-encoded."""
        for key, value in values.items():
            self._writer.writerow(("summary", "", key, json.dumps(value)))

    def _close(self, status: RunStatus) -> None:
        """Write the status as the summary value ``_status`` and close the file."""
        if self._file is not None:
            self._writer.writerow(("summary", "", "_status", json.dumps(status)))
            self._file.close()
            self._file = None

    def _flush(self) -> None:
        """Hand the rows written so far to the operating system."""
        if self._file is not None:
            self._file.flush()

    def run_location(self) -> RunLocation | None:
        """The run's CSV file (any spreadsheet or ``csv`` reader shows it)."""
        return RunLocation("csv", shown_path(self.path)) if self.path is not None else None
