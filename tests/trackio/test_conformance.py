"""The Trackio plugin against the conformance kit, read back through Trackio's SQLiteStorage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

PROJECT = "conformance"


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

        assert tracker.run is not None
        with use_trackio_dir(tracker.directory):  # type: ignore[attr-defined]
            rows = SQLiteStorage.get_logs(PROJECT, tracker.run.run_name)
            config = dict(SQLiteStorage.get_run_config(PROJECT, tracker.run.run_name) or {})
        stored = StoredRun(texts={}, summary=config.pop("summary", None), config=config)
        for row in rows:
            step = row["step"]
            for key, value in row.items():
                if key in ("step", "timestamp"):
                    continue
                if isinstance(value, dict) and value.get("_type") == "trackio.markdown":
                    stored.texts.setdefault(key, []).append((step, value["_value"]))  # type: ignore[union-attr]
                elif isinstance(value, int | float):
                    stored.scalars.setdefault(key, []).append((step, value))
        return stored
