"""Turning noether-trackers values into W&B's own types.

Numbers (NaN and inf included) and text are W&B history values as they are; :class:`Image`
becomes ``wandb.Image``, :class:`Histogram` ``wandb.Histogram`` and :class:`Table`
``wandb.Table``. The wandb module is passed in so that this module never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from noether.core.trackers.plugin import Histogram, Image, Table, Value

#: wandb.Histogram refuses more bins than this.
MAX_HISTOGRAM_BINS = 512


def to_wandb(values: Mapping[str, Value], wandb: Any) -> dict[str, Any]:
    """``values`` with every media value replaced by its wandb counterpart."""
    return {key: to_wandb_value(value, wandb) for key, value in values.items()}


def to_wandb_value(value: Value, wandb: Any) -> Any:
    """One normalised value as W&B logs it."""
    if isinstance(value, Image):
        return wandb.Image(pil_image(value), caption=value.caption)
    if isinstance(value, Histogram):
        counts, edges = merge_bins(value.counts, value.edges, MAX_HISTOGRAM_BINS)
        return wandb.Histogram(np_histogram=(counts, edges))
    if isinstance(value, Table):
        return wandb.Table(columns=list(value.columns), data=[list(row) for row in value.rows])
    return value


def pil_image(image: Image) -> Any:
    """``image`` as a Pillow image, pixel for pixel.

    Handing wandb a Pillow image rather than an array keeps wandb from rescaling the values,
    and keeps its temporary PNG out of the system temp directory (wandb encodes it straight
    into the run's media folder).
    """
    pillow = importlib.import_module("PIL.Image")
    pixels = image.pixels[:, :, 0] if image.channels == 1 else image.pixels
    return pillow.fromarray(pixels)


def merge_bins(counts: Any, edges: Any, max_bins: int) -> tuple[Any, Any]:
    """Merge runs of adjacent bins so that there are at most ``max_bins``; counts are kept exact.

    ``counts`` has one entry per bin and ``edges`` one more. With ``n`` bins, every
    ``ceil(n / max_bins)`` neighbours become one bin (the last one may hold fewer).
    """
    import numpy as np  # here, not at import: `noether-trackers list` loads this plugin

    counts = np.asarray(counts)
    edges = np.asarray(edges, dtype=np.float64)
    bins = len(counts)
    if bins <= max_bins:
        return counts, edges
    group = -(-bins // max_bins)
    starts = np.arange(0, bins, group)
    return np.add.reduceat(counts, starts), np.append(edges[starts], edges[-1])
