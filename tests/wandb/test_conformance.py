"""The W&B plugin against the conformance kit, read back from the offline run's .wandb file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

STEP = "global_step"


class TestWandbConformance(TrackerConformanceTests):
    kind = "wandb"
    backend_module = "wandb"

    @pytest.fixture(autouse=True)
    def wandb_sandbox(self, sandbox: Any, helpers: Any) -> None:
        """W&B's directories in the test's sandbox (see conftest); the .wandb reader."""
        self.helpers = helpers

    def options(self, output_path: Path) -> dict[str, Any]:
        return {"project": "conformance", "mode": "offline"}

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        run = self.helpers.run_file(tracker.run_dir)  # type: ignore[attr-defined]
        stored = StoredRun(texts={}, config=run.config(), summary=run.summary())
        for row in run.history():
            step = row[STEP]
            for key, value in row.items():
                if key == STEP or key.startswith("_"):
                    continue
                if isinstance(value, str):
                    stored.texts.setdefault(key, []).append((step, value))  # type: ignore[union-attr]
                elif isinstance(value, int | float):
                    stored.scalars.setdefault(key, []).append((step, value))
        return stored
