"""Turning what a user passes to ``log()`` into the few value types every backend understands.

After :func:`normalise_values`, a logged mapping is flat (``{"a": {"b": 1}}`` becomes
``{"a/b": 1}``) and every value is an ``int``, a ``float`` (NaN and inf kept), a ``str`` or one
of the media types, with secrets hidden by the rules of :mod:`noether.core.trackers.redaction`
(text under a secret-looking name, URL passwords, captions and table cells alike). Anything
else is reported through ``on_unsupported`` and left out. Data nested deeper than
:data:`MAX_NESTING` levels, or containing itself, is refused with a ValueError.

This runs on the training thread for every ``log()``: the common case (a flat dict of Python
numbers with str keys) is checked and copied at C speed and never reaches the secret rules
(numbers are never hidden); only text, media and nested data take the slow path.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.redaction import REDACTED, redact_text, text_is_secret

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

#: How many levels of mappings a logged value (or a config) may have, counting the outer one.
#: Deeper data is refused with a ValueError naming its path: no real metric or config needs
#: it, and recursing further would end in a RecursionError.
MAX_NESTING = 100
#: How many keys of a too-deep path an error message shows.
_SHOWN_KEYS = 5


def normalise_values(
    data: Mapping[str, Any], on_unsupported: Callable[[str, Any], None]
) -> dict[str, Value]:
    """Flatten ``data`` and convert its values; see the module docstring.

    Raises ValueError when ``data`` is nested deeper than :data:`MAX_NESTING` levels or
    contains itself.
    """
    if (
        type(data) is dict
        and _PLAIN_NUMBERS.issuperset(map(type, data.values()))
        and _TEXT_KEYS.issuperset(map(type, data))
    ):
        return dict(data)  # the common case, checked and copied at C speed
    result: dict[str, Value] = {}
    _flatten_into(result, "", data, on_unsupported, [id(data)])
    return result


def nesting_error(what: str, path: list[str], *, cycle: bool = False) -> ValueError:
    """The error for ``what`` (e.g. "config") being too deep or containing itself at ``path``."""
    shown = "/".join(path[:_SHOWN_KEYS]) + ("/..." if len(path) > _SHOWN_KEYS else "")
    if cycle:
        return ValueError(f"{what} contains itself (a cycle) at '{shown}'")
    return ValueError(
        f"{what} is nested deeper than {MAX_NESTING} levels (at '{shown}', "
        f"{len(path)} keys deep); flatten it"
    )


def _flatten_into(
    result: dict[str, Value],
    prefix: str,
    data: Mapping[Any, Any],
    on_unsupported: Callable[[str, Any], None],
    open_mappings: list[int],
) -> None:
    """Add ``data``'s values to ``result`` under ``prefix``; ``open_mappings`` holds the ids of
    the mappings on the path to ``data`` (its length is ``data``'s depth)."""
    for raw_key, value in data.items():
        key = prefix + raw_key if type(raw_key) is str else prefix + str(raw_key)
        kind = type(value)
        if kind is float or kind is int:
            result[key] = value  # numbers are never hidden (docs/secrets.md)
        elif kind is str:
            result[key] = REDACTED if text_is_secret(key) else redact_text(value)
        elif kind is dict or isinstance(value, Mapping):
            if len(open_mappings) >= MAX_NESTING or id(value) in open_mappings:
                raise nesting_error("logged data", key.split("/"), cycle=id(value) in open_mappings)
            open_mappings.append(id(value))
            _flatten_into(result, key + "/", value, on_unsupported, open_mappings)
            open_mappings.pop()
        elif isinstance(value, Image | Histogram | Table):
            result[key] = _redact_media(key, value)
        else:
            scalar = to_scalar(value)
            if scalar is not None:
                result[key] = scalar
            elif isinstance(value, str):
                result[key] = REDACTED if text_is_secret(key) else redact_text(str(value))
            else:
                on_unsupported(key, value)


def _redact_media(key: str, value: Image | Histogram | Table) -> Image | Histogram | Table:
    """``value``, or a copy of it with its text hidden by the same rules as text values: an
    image's caption, a table's text cells (under a secret key or in a secret column)."""
    if isinstance(value, Image) and value.caption is not None:
        caption = REDACTED if text_is_secret(key) else redact_text(value.caption)
        if caption != value.caption:
            value = copy.copy(value)  # not replace(): that would convert the pixels again
            object.__setattr__(value, "caption", caption)
    elif isinstance(value, Table):
        hidden = [text_is_secret(f"{key}/{column}") for column in value.columns]
        rows = [
            [_redact_cell(cell, hide) for cell, hide in zip(row, hidden, strict=True)]
            for row in value.rows
        ]
        if any(new is not old for new, old in zip(_cells(rows), _cells(value.rows), strict=True)):
            value = copy.copy(value)
            object.__setattr__(value, "rows", rows)
    return value


def _cells(rows: Sequence[Sequence[Any]]) -> Iterator[Any]:
    return (cell for row in rows for cell in row)


def _redact_cell(cell: Any, hide: bool) -> Any:
    if not isinstance(cell, str):
        return cell  # numbers are kept, as everywhere
    return REDACTED if hide else redact_text(cell)
