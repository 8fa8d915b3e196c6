"""The W&B plugin against the conformance kit, read back from the offline run's .wandb files.

What ``wandb sync`` would upload, decoded the way the W&B server applies it: history rows
(numbers, text, image, histogram and table entries), config and summary updates, the run
record's display name and the exit code the run finished with. A resumed offline run writes a
new run directory (``offline-run-<time>-<id>``) with its own ``.wandb`` file: every one of the
run's files is read, in the order written, as ``wandb sync`` uploads them all to one run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

STEP = "global_step"
#: The run status each W&B exit code stands for: W&B's own 0 (success) and 255 (Ctrl-C),
#: 1 for an error and the shell's 128 + SIGTERM for a terminated process.
STATUS_OF_EXIT_CODE = {0: "finished", 1: "failed", 255: "interrupted", 143: "terminated"}


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
        run_dir: Path = tracker.run_dir  # type: ignore[attr-defined]
        wandb_id: str = tracker.wandb_run_id  # type: ignore[attr-defined]
        # every part of the run, oldest first (directory names start with the start time)
        parts = sorted(run_dir.parent.glob(f"offline-run-*-{wandb_id}"))
        files = [self.helpers.run_file(part) for part in parts]
        config: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        rows: list[tuple[Path, dict[str, Any]]] = []
        for part, run in zip(parts, files, strict=True):
            config.update(run.config())
            summary.update(run.summary())
            rows += [(part, row) for row in run.history()]
        exit_code = files[-1].exit_code
        stored = StoredRun(
            texts={},
            images={},
            histograms={},
            tables={},
            config=config,
            summary=summary,
            display_name=files[-1].run.display_name,
            status=STATUS_OF_EXIT_CODE.get(exit_code, f"exit code {exit_code}"),
        )
        for part, row in rows:
            add_row(stored, part, row)
        return stored


def add_row(stored: StoredRun, part: Path, row: dict[str, Any]) -> None:
    """The values of one history row of the run directory ``part``, by their kind."""
    texts, images, histograms, tables = (
        stored.texts,
        stored.images,
        stored.histograms,
        stored.tables,
    )
    assert texts is not None and images is not None
    assert histograms is not None and tables is not None
    step = row[STEP]
    for key, value in row.items():
        if key == STEP or key.startswith("_"):
            continue
        kind = value.get("_type") if isinstance(value, dict) else None
        if isinstance(value, str):
            texts.setdefault(key, []).append((step, value))
        elif isinstance(value, int | float):
            stored.scalars.setdefault(key, []).append((step, value))
        elif kind == "image-file":
            images.setdefault(key, []).append((step, (value["height"], value["width"])))
        elif kind == "histogram":
            histograms.setdefault(key, []).append((step, sum(value["values"])))
        elif kind == "table-file":
            table = json.loads((part / "files" / value["path"]).read_text())
            tables.setdefault(key, []).append((step, (table["columns"], len(table["data"]))))
