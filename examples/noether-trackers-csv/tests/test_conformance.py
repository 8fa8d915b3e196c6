"""The CSV plugin against the noether-trackers conformance kit.

This is all a plugin author writes: name the kind, and read back what the backend stored.
"""

from __future__ import annotations

import csv
import json

from noether.core.trackers.plugin import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests
from noether_trackers_csv.tracker import CsvTracker


class TestCsvTracker(TrackerConformanceTests):
    kind = "csv"

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        assert isinstance(tracker, CsvTracker)  # the kit hands over the plugin's own backend
        stored = StoredRun(texts={}, config={}, summary={})
        with open(tracker.path, newline="", encoding="utf-8") as stream:
            for row in csv.DictReader(stream):
                key, value = row["key"], row["value"]
                if row["record"] == "scalar":
                    stored.scalars.setdefault(key, []).append((int(row["step"]), float(value)))
                elif row["record"] == "text":
                    stored.texts.setdefault(key, []).append((int(row["step"]), value))  # type: ignore[union-attr]
                elif row["record"] == "config":
                    stored.config[key] = json.loads(value)  # type: ignore[index]
                else:
                    stored.summary[key] = json.loads(value)  # type: ignore[index]
        return stored
