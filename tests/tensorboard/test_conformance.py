"""The TensorBoard plugin against the conformance kit, read back with TensorBoard's reader.

TensorBoard shows scalars, text, images and histograms natively; a table is shown as the
markdown table the plugin writes to the Text tab, and is read back from there. The config and
the summary are markdown texts too (tags ``config`` and ``summary``), and the config's header
names the run as TensorBoard shows it. How the run ended is the summary's ``_status``.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

#: Keep every event of every kind (0: no sampling).
KEEP_ALL = {"scalars": 0, "tensors": 0, "images": 0, "histograms": 0}
#: The header of the ``config`` text: "run `<display name>` (id `<run id>`)".
CONFIG_HEADER = re.compile(r"run `(?P<name>.*)` \(id `.*`\)")
#: A markdown table's separator line, as the plugin writes it.
TABLE_RULE = re.compile(r"\|(---\|)+")


def parse_cell(text: str) -> Any:
    """A markdown table cell back as the YAML scalar it shows."""
    return yaml.safe_load(text.replace("\\|", "|"))


def table_cells(line: str) -> list[str]:
    """The cells of one markdown table line (``\\|`` inside a cell is not a separator)."""
    cells = re.split(r"(?<!\\) \| ", line.removeprefix("| ").removesuffix(" |"))
    return [cell.replace("\\|", "|") for cell in cells]


def as_table(text: str) -> tuple[list[str], int] | None:
    """A markdown table's columns and row count, or None if ``text`` is not one."""
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].startswith("| ") or not TABLE_RULE.fullmatch(lines[1]):
        return None
    return table_cells(lines[0]), len(lines) - 2


class TestTensorboardConformance(TrackerConformanceTests):
    kind = "tensorboard"
    backend_module = "tensorboard"

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        # every event file of the run's directory (a resumed run adds one), as TensorBoard
        # reads them
        events = EventAccumulator(str(tracker.run_dir), size_guidance=KEEP_ALL)  # type: ignore[attr-defined]
        events.Reload()
        tags = events.Tags()
        texts: dict[str, list[tuple[int, str]]] = {}
        tables: dict[str, list[tuple[int, tuple[list[str], int]]]] = {}
        for tag in tags["tensors"]:
            for event in events.Tensors(tag):
                text = tensor_util.make_ndarray(event.tensor_proto).item().decode()
                table = as_table(text) if tag != "summary" else None
                if table is not None:
                    tables.setdefault(tag, []).append((event.step, table))
                else:
                    texts.setdefault(tag, []).append((event.step, text))
        config_header, config_text = texts.pop("config")[-1][1].split("\n\n", 1)
        name = CONFIG_HEADER.fullmatch(config_header)
        summary = None
        if "summary" in texts:
            summary_rows = texts.pop("summary")[-1][1].splitlines()[2:]
            summary = {cells[0]: parse_cell(cells[1]) for cells in map(table_cells, summary_rows)}
        return StoredRun(
            scalars={
                tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in tags["scalars"]
            },
            texts=texts,
            config=yaml.safe_load(textwrap.dedent(config_text)),
            summary=summary,
            status=summary.get("_status") if summary is not None else None,
            images={
                tag: [(e.step, (e.height, e.width)) for e in events.Images(tag)]
                for tag in tags["images"]
            },
            histograms={
                tag: [(e.step, int(e.histogram_value.num)) for e in events.Histograms(tag)]
                for tag in tags["histograms"]
            },
            tables=tables,
            display_name=name["name"] if name else None,
        )
