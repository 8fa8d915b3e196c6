"""The Trackio plugin against the conformance kit, read back through Trackio's SQLiteStorage.

Trackio stores rows of numbers, markdown text and media entries (an image's PNG file in the
store's media directory, a histogram's bins, a table's rows as records), the run's config,
and the run's name; the plugin keeps the run summary, with the status the run ended with
(``_status``), in the config under ``summary`` (Trackio has no run summary of its own).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

PROJECT = "conformance"


def png_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of the PNG at ``path``, from its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", f"{path}: not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return height, width


class TestTrackioConformance(TrackerConformanceTests):
    kind = "trackio"
    backend_module = "trackio"

    @pytest.fixture(autouse=True)
    def no_hub(self, offline_hub: Path) -> None:
        """Trackio must not reach for the Hub (see conftest)."""

    def options(self, output_path: Path) -> dict[str, Any]:
        return {"project": PROJECT}

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        from trackio.sqlite_storage import SQLiteStorage

        from noether_trackers_trackio import use_trackio_dir

        directory: Path = tracker.directory  # type: ignore[attr-defined]
        with use_trackio_dir(directory):
            # the store holds this test's run alone: its latest record is the run
            name = SQLiteStorage.get_run_records(PROJECT)[-1]["name"]
            rows = SQLiteStorage.get_logs(PROJECT, name)
            config = dict(SQLiteStorage.get_run_config(PROJECT, name) or {})
        summary = config.pop("summary", None)
        texts: dict[str, list[tuple[int, str]]] = {}
        images: dict[str, list[tuple[int, tuple[int, int]]]] = {}
        histograms: dict[str, list[tuple[int, int]]] = {}
        tables: dict[str, list[tuple[int, tuple[list[str], int]]]] = {}
        stored = StoredRun(
            texts=texts,
            images=images,
            histograms=histograms,
            tables=tables,
            config=config,
            summary=summary,
            status=summary.get("_status") if isinstance(summary, dict) else None,
            display_name=name,
        )
        for row in rows:
            step = row["step"]
            for key, value in row.items():
                if key in ("step", "timestamp"):
                    continue
                kind = value.get("_type") if isinstance(value, dict) else None
                if kind == "trackio.markdown":
                    texts.setdefault(key, []).append((step, value["_value"]))
                elif kind == "trackio.image":
                    size = png_size(directory / "media" / value["file_path"])
                    images.setdefault(key, []).append((step, size))
                elif kind == "trackio.histogram":
                    histograms.setdefault(key, []).append((step, sum(value["values"])))
                elif kind == "trackio.table":
                    records = value["_value"]
                    columns = list(records[0]) if records else []
                    tables.setdefault(key, []).append((step, (columns, len(records))))
                elif isinstance(value, int | float):
                    stored.scalars.setdefault(key, []).append((step, value))
        return stored
