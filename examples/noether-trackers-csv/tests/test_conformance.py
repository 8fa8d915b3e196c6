"""CsvTracker against the noether-trackers conformance kit.

The kit finds the plugin through its entry point: install it first (``pip install -e
'.[test]'``), then run ``pytest``. Every test of the kit then runs against the kind
``csv``. This is all a plugin author writes: name the kind, and read back what the backend
stored.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from noether.core.trackers.plugin import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests
from noether_trackers_csv.tracker import CsvTracker


class TestCsvTracker(TrackerConformanceTests):
    """The conformance kit against ``kind: csv``."""

    kind = "csv"
    #: Top-level module of the backend library, which must not be imported before ``init``.
    backend_module = None

    def options(self, output_path: Path) -> dict[str, Any]:
        """The YAML options (besides ``kind``) of the tracker under test."""
        return {}

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        """What the backend stored for the run, read with the backend's own reader."""
        # the backend the run delivered to, closed
        assert isinstance(tracker, CsvTracker)
        assert tracker.path is not None
        texts: dict[str, list[tuple[int, str]]] = {}
        config: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        stored = StoredRun(texts=texts, config=config, summary=summary)
        with open(tracker.path, newline="", encoding="utf-8") as stream:
            for row in csv.DictReader(stream):
                key, value = row["key"], row["value"]
                if row["record"] == "scalar":
                    stored.scalars.setdefault(key, []).append((int(row["step"]), float(value)))
                elif row["record"] == "text":
                    texts.setdefault(key, []).append((int(row["step"]), value))
                elif row["record"] == "run":
                    stored.display_name = json.loads(value)
                elif row["record"] == "config":
                    config[key] = json.loads(value)
                else:  # "summary"; a resumed run appends its rows: the last one counts
                    summary[key] = json.loads(value)
        # _close writes the status as the summary value `_status` (the last part's, if resumed)
        stored.status = summary.get("_status")
        # images, histograms and tables are not in CsvTracker.supported_values: the kit checks
        # that they are skipped with a warning, and lists those checks as not run
        return stored
