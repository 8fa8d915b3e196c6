"""Turning what a user passes to ``log()`` into the few value types every backend understands.

After :func:`normalise_values`, a logged mapping is flat (``{"a": {"b": 1}}`` becomes
``{"a/b": 1}``) and every value is an ``int``, a ``float`` (NaN and inf kept), a ``str`` (text
under a secret-looking name is redacted) or one of the media types. Anything else is reported
through ``on_unsupported`` and left out.

This runs on the training thread for every ``log()``: the common case (a flat dict of Python
numbers) takes the first branch of the loop and nothing else.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.redaction import REDACTED, looks_secret

Scalar: TypeAlias = int | float
Value: TypeAlias = int | float | str | Image | Histogram | Table

#: The kinds of value a backend may declare it supports (see ``BaseTracker.supported_values``).
VALUE_KINDS = frozenset({"scalar", "text", "image", "histogram", "table"})


def value_kind(value: Value) -> str:
    """Name the kind of a normalised value: scalar, text, image, histogram or table."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, Image):
        return "image"
    if isinstance(value, Histogram):
        return "histogram"
    if isinstance(value, Table):
        return "table"
    return "scalar"


def to_scalar(value: Any) -> Scalar | None:
    """Return ``value`` as a Python int or float, or None when it is not a single number.

    Python, numpy and torch scalars qualify, and so do 0-d arrays and tensors (duck-typed, so
    neither numpy nor torch is imported). Booleans become 0 or 1.
    """
    kind = type(value)
    if kind is float or kind is int:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return int(value)
    if isinstance(value, numbers.Real):
        item = value.item() if hasattr(value, "item") else float(value)
        return int(item) if isinstance(item, bool) else item
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, bool):
            return int(item)
        if isinstance(item, int | float):
            return item
    return None


_PLAIN_NUMBERS = frozenset({float, int})
_TEXT_KEYS = frozenset({str})


def normalise_values(
    data: Mapping[str, Any], on_unsupported: Callable[[str, Any], None]
) -> dict[str, Value]:
    """Flatten ``data`` and convert its values; see the module docstring."""
    if (
        type(data) is dict
        and _PLAIN_NUMBERS.issuperset(map(type, data.values()))
        and _TEXT_KEYS.issuperset(map(type, data))
    ):
        return dict(data)  # the common case, checked and copied at C speed
    result: dict[str, Value] = {}
    _flatten_into(result, "", data, on_unsupported)
    return result


def _flatten_into(
    result: dict[str, Value],
    prefix: str,
    data: Mapping[Any, Any],
    on_unsupported: Callable[[str, Any], None],
) -> None:
    for raw_key, value in data.items():
        key = prefix + raw_key if type(raw_key) is str else prefix + str(raw_key)
        kind = type(value)
        if kind is float or kind is int:
            result[key] = value
        elif kind is str:
            result[key] = REDACTED if looks_secret(key) else value
        elif isinstance(value, Mapping):
            _flatten_into(result, key + "/", value, on_unsupported)
        elif isinstance(value, Image | Histogram | Table):
            result[key] = value
        else:
            scalar = to_scalar(value)
            if scalar is not None:
                result[key] = scalar
            elif isinstance(value, str):
                result[key] = REDACTED if looks_secret(key) else str(value)
            else:
                on_unsupported(key, value)
