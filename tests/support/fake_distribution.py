"""A minimal installed distribution (dist-info plus modules) in a folder put on ``PYTHONPATH``:
how tests install a third-party plugin that ``importlib.metadata`` finds by its entry points."""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """Install a minimal distribution (dist-info plus modules) into the folder ``site``."""
    info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[noether.trackers]\n{entry_points}\n")
    for relative, source in modules.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
