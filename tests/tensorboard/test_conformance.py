"""The TensorBoard plugin against the conformance kit, read back with TensorBoard's reader."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests


def parse_cell(text: str) -> Any:
    """A markdown table cell back as the YAML scalar it shows."""
    return yaml.safe_load(text.replace("\\|", "|"))


class TestTensorboardConformance(TrackerConformanceTests):
    kind = "tensorboard"
    backend_module = "tensorboard"

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        events = EventAccumulator(str(tracker.log_dir), size_guidance={"scalars": 0, "tensors": 0})  # type: ignore[attr-defined]
        events.Reload()
        tags = events.Tags()
        texts = {
            tag: [
                (e.step, tensor_util.make_ndarray(e.tensor_proto).item().decode())
                for e in events.Tensors(tag)
            ]
            for tag in tags["tensors"]
        }
        config_text = texts.pop("config")[-1][1]
        config_yaml = textwrap.dedent(config_text.split("\n\n", 1)[1])
        summary_rows = texts.pop("summary")[-1][1].splitlines()[2:]
        summary = {
            row.split(" | ")[0].removeprefix("| "): parse_cell(
                row.split(" | ", 1)[1].removesuffix(" |")
            )
            for row in summary_rows
        }
        return StoredRun(
            scalars={
                tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]
            },
            texts=texts,
            config=yaml.safe_load(config_yaml),
            summary=summary,
        )
