"""From noether-trackers values and configs to what Trackio stores and shows.

Scalars stay numbers (Trackio itself stores NaN and inf as ``"NaN"``/``"Infinity"`` and reads
them back as floats). Text becomes :class:`trackio.Markdown`, which the dashboard shows on its
Reports page (plain strings are stored but shown nowhere). Images, histograms and tables
become Trackio's own ``Image``, ``Histogram`` and ``Table``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from noether.core.trackers.plugin import Histogram, Image, Table, Value

#: Prefix given to top-level config keys that start with ``_``: Trackio reserves those for
#: itself (``_Username``, ``_Created``, ``_Group``) and refuses a config that has one.
RESERVED_PREFIX_ESCAPE = "cfg"
#: Config keys tried, in order, for the run summary (the first one the config does not use).
SUMMARY_KEYS = ("summary", "run_summary", "noether_summary")


def to_trackio(value: Value) -> Any:
    """The Trackio value to log for one normalised noether-trackers value."""
    import trackio

    if isinstance(value, str):
        return trackio.Markdown(value)
    if isinstance(value, Image):
        pixels = value.pixels
        # PIL has no 1-channel HxWx1 mode; a 2-D array is the greyscale image it understands.
        return trackio.Image(pixels[:, :, 0] if value.channels == 1 else pixels, value.caption)
    if isinstance(value, Histogram):
        return trackio.Histogram(np_histogram=(value.counts, value.edges))
    if isinstance(value, Table):
        return trackio.Table(columns=list(value.columns), data=[list(row) for row in value.rows])
    return value


def to_trackio_metrics(values: Mapping[str, Value]) -> dict[str, Any]:
    """One ``log`` call's values, converted with :func:`to_trackio`."""
    return {key: to_trackio(value) for key, value in values.items()}


def trackio_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with its top-level ``_`` keys renamed (``_target_`` -> ``cfg_target_``)."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        name = str(key)
        if name.startswith("_"):
            name = RESERVED_PREFIX_ESCAPE + name
            while name in config or name in result:
                name = RESERVED_PREFIX_ESCAPE + name
        result[name] = value
    return result


def summary_key(config: Mapping[str, Any]) -> str:
    """The config key the run summary goes under: ``summary`` unless the config uses it."""
    for key in SUMMARY_KEYS:
        if key not in config:
            return key
    index = 2
    while f"summary_{index}" in config:
        index += 1
    return f"summary_{index}"


def summary_value(value: Value) -> Any:
    """A summary value as config data: numbers and text as they are, media described.

    A config holds JSON, so an image, histogram or table in the summary is recorded by a
    short description; the values themselves belong in ``log()``.
    """
    if isinstance(value, Image):
        return f"<image {value.width}x{value.height}>"
    if isinstance(value, Histogram):
        return f"<histogram of {value.num} values>"
    if isinstance(value, Table):
        return f"<table {len(value.rows)}x{len(value.columns)}>"
    return value
