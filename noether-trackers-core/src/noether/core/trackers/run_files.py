"""The files a run leaves in its output directory: ``config.yaml`` and ``summary.yaml``.

A config may be any mix of mappings, dataclasses and omegaconf nodes, holding paths, enums,
numpy scalars and arrays, sets, tuples, datetimes, bytes and other objects: :func:`to_plain`
turns it into dicts, lists and YAML/JSON scalars, so that ``config.yaml``, the journal and
every backend store the same thing. What has no plain form is stored as its string.

:func:`write_yaml` is atomic and fast enough for an end-of-run summary of millions of metrics:
a flat mapping of scalars (what ``summary.yaml`` holds) is written by a direct emitter, a few
seconds for two million entries, where PyYAML takes minutes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import itertools
import json
import logging
import math
import numbers
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from noether.core.trackers.values import MAX_NESTING, nesting_error

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.yaml"
#: The run's journal (``docs/journal.md``) and the folder of the media it references.
JOURNAL_FILE = "journal.jsonl"
MEDIA_DIR = "media"

_EXACT_SCALARS = frozenset({bool, int, float, str})


def to_plain(config: Any) -> dict[str, Any]:
    """Turn a config (mapping, dataclass or omegaconf node, nested in each other) into dicts,
    lists and scalars; ``None`` is an empty config.

    Raises TypeError for another kind of config, ValueError for one nested deeper than
    :data:`~noether.core.trackers.values.MAX_NESTING` levels or containing itself.
    """
    if config is None:
        return {}
    if not (_is_omegaconf(config) or _is_dataclass(config) or isinstance(config, Mapping)):
        raise TypeError(
            f"config must be a mapping, dataclass or omegaconf node; got {type(config)}"
        )
    plain = _Plainer("config").convert(config, [])
    if not isinstance(plain, dict):
        raise TypeError(f"config must be a mapping, not a list; got {type(config)}")
    return plain


def to_plain_value(value: Any) -> Any:
    """One config value as YAML- and JSON-safe data: see :class:`_Plainer`."""
    return _Plainer("value").convert(value, [])


class _Plainer:
    """Converts one value, tracking the containers on the path (for depth and cycles).

    - ``None``, ``bool``, ``int``, ``float`` and ``str`` stay (subclasses become the base type);
    - an enum member becomes its name (what omegaconf stores and accepts back);
    - numpy/torch scalars and 0-d arrays become Python numbers, arrays and tensors lists;
    - mappings, dataclasses and omegaconf nodes become dicts (keys as strings), lists and tuples
      lists, sets sorted lists (when their items can be sorted);
    - paths become strings, dates and times ISO 8601 strings, bytes text (UTF-8 when they
      decode, else their ``str``);
    - anything else its ``str``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.open: set[int] = set()

    def convert(self, value: Any, path: list[str]) -> Any:
        """``value`` (found at ``path``) in plain form."""
        kind = type(value)
        if value is None or kind in _EXACT_SCALARS:
            return value
        if isinstance(value, enum.Enum):
            return value.name
        scalar = _scalar(value)
        if scalar is not None:
            return scalar
        if isinstance(value, bytes | bytearray | memoryview):
            return _bytes_text(bytes(value))
        if isinstance(value, os.PathLike):
            return os.fsdecode(os.fspath(value))
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        if _is_array(value):
            return self.convert(_array_items(value), path)
        if _is_container(value):
            return self._container(value, path)
        return str(value)

    def _container(self, value: Any, path: list[str]) -> dict[str, Any] | list[Any]:
        if len(path) >= MAX_NESTING:
            raise nesting_error(self.what, path)
        if id(value) in self.open:
            raise nesting_error(self.what, path, cycle=True)
        self.open.add(id(value))
        try:
            return self._items(value, path)
        finally:
            self.open.discard(id(value))

    def _items(self, value: Any, path: list[str]) -> dict[str, Any] | list[Any]:
        if _is_omegaconf(value):
            return self._items(_omegaconf_container(value, self.what), path)
        if _is_dataclass(value):
            items = (
                (field.name, getattr(value, field.name)) for field in dataclasses.fields(value)
            )
            return {name: self.convert(item, [*path, name]) for name, item in items}
        if isinstance(value, Mapping):
            result = {}
            for key, item in value.items():
                name = key if type(key) is str else str(to_plain_value(key))
                result[name] = self.convert(item, [*path, name])
            return result
        converted = [self.convert(item, [*path, str(index)]) for index, item in enumerate(value)]
        if isinstance(value, set | frozenset):
            # a set has no order: sorted, config.yaml is the same on every run (items of types
            # that cannot be compared stay in iteration order)
            with contextlib.suppress(TypeError):
                converted.sort()
        return converted


def _scalar(value: Any) -> bool | int | float | str | None:
    """``value`` as a Python scalar when it is a subclass of one or a numpy/torch scalar."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)  # e.g. numpy.str_: the exact str YAML and JSON know
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        if getattr(getattr(value, "dtype", None), "kind", "") in ("m", "M"):
            return str(value)  # numpy datetime64/timedelta64: item() may give an int
        item = value.item()
        if type(item) in _EXACT_SCALARS:
            return item  # type: ignore[no-any-return]
        return None if item is value else _scalar(item)
    if isinstance(value, numbers.Number):
        return str(value)  # Decimal, Fraction, complex: no exact plain number
    return None


def _bytes_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return str(data)


def _is_array(value: Any) -> bool:
    """A numpy array or torch tensor with dimensions (duck-typed: neither is imported)."""
    return bool(getattr(value, "ndim", 0)) and hasattr(value, "tolist")


def _array_items(array: Any) -> Any:
    if getattr(getattr(array, "dtype", None), "kind", "") in ("m", "M"):
        return array.astype(str).tolist()  # tolist() would give nanoseconds as ints
    return array.tolist()


def _is_container(value: Any) -> bool:
    return (
        isinstance(value, Mapping | list | tuple | set | frozenset)
        or _is_dataclass(value)
        or _is_omegaconf(value)
    )


def _is_dataclass(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _is_omegaconf(value: Any) -> bool:
    if not type(value).__module__.startswith("omegaconf"):
        return False  # omegaconf is optional: not imported unless the value is one of its own
    from omegaconf import OmegaConf

    return OmegaConf.is_config(value)


def _omegaconf_container(node: Any, what: str) -> Any:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(node, resolve=True)
    except RecursionError:
        raise ValueError(f"{what} is nested deeper than {MAX_NESTING} levels") from None


# ---- YAML ------------------------------------------------------------------------------------

#: Text written plain (unquoted): starts with a letter or ``_`` (so it cannot read back as a
#: number, date, ``.inf``, ``~``, ``<<`` ...) and holds no YAML punctuation.
_PLAIN_TEXT = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
#: Words YAML 1.1 reads back as booleans or null (checked lower-cased, a superset).
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
#: Every spelling of those words in any case, for a C-speed check of many keys at once.
_YAML_WORD_SPELLINGS = frozenset(
    "".join(letters)
    for word in _YAML_WORDS
    for letters in itertools.product(*({char, char.upper()} for char in word))
)
#: Lines of text that may all be written plain (see :data:`_PLAIN_TEXT`).
_PLAIN_LINES = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(?:\n[A-Za-z_][A-Za-z0-9_./-]*)*")
_NON_FINITE = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}
_STR_ONLY = frozenset({str})
_NUMBERS_ONLY = frozenset({int, float})
#: Characters a JSON-quoted string may hold raw and still read back as YAML: no YAML line
#: breaks (U+0085, U+2028, U+2029), no characters YAML forbids in a file, no surrogates or BOM.
_NOT_JSON_SAFE = re.compile(
    "[^\x00-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
#: YAML's limit on an implicit key (longer ones are written as ``? key``).
_MAX_IMPLICIT_KEY = 1000
#: Lines written per ``write`` call.
_BATCH = 10_000


class _NotFlat(Exception):
    """The data is not a flat mapping of str keys to scalars: use the general dumper."""


def dump_yaml(data: Mapping[str, Any]) -> str:
    """``data`` as YAML text, keys in their given order; ``yaml.safe_load`` reads it back equal."""
    try:
        return "".join(_flat_yaml(data))
    except _NotFlat:
        return _general_yaml(data)


def write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically: a reader never sees half a file, and nothing is
    left behind when writing fails (a full disk, an error, KeyboardInterrupt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            try:
                for chunk in _flat_yaml(data):
                    stream.write(chunk)
            except _NotFlat:
                stream.seek(0)
                stream.truncate()
                stream.write(_general_yaml(data))
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _general_yaml(data: Mapping[str, Any]) -> str:
    """PyYAML's safe dump (its C emitter when libyaml is there): any nesting, slower."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(dict(data), Dumper=dumper, sort_keys=False, allow_unicode=True)


def _flat_yaml(data: Mapping[str, Any]) -> Iterator[str]:
    """YAML text of a flat mapping of str keys to scalars, in chunks of :data:`_BATCH` lines.

    Raises :class:`_NotFlat` (possibly after yielding) when ``data`` is anything else. Each
    batch is checked and converted with C-speed passes (one regex over all its keys, ``repr``
    of all its numbers) when it can be, item by item when not.
    """
    if not data:
        yield "{}\n"
        return
    keys, values = iter(data), iter(data.values())  # a mapping iterates both in one order
    while batch_keys := list(itertools.islice(keys, _BATCH)):
        names = _yaml_names(batch_keys)
        texts = _yaml_scalars(list(itertools.islice(values, len(batch_keys))))
        yield "".join([f"{name}: {text}\n" for name, text in zip(names, texts, strict=True)])


def _yaml_names(keys: list[Any]) -> list[str]:
    """``keys`` as YAML mapping keys (``? key`` for those too long to be implicit ones)."""
    if not _STR_ONLY.issuperset(map(type, keys)):
        raise _NotFlat
    if (
        _PLAIN_LINES.fullmatch("\n".join(keys))
        and _YAML_WORD_SPELLINGS.isdisjoint(keys)
        and max(map(len, keys)) <= _MAX_IMPLICIT_KEY
    ):
        return keys  # the common case: every key is plain text
    names = []
    for key in keys:
        name = _yaml_text(key)
        names.append(f"? {name}\n" if len(name) > _MAX_IMPLICIT_KEY else name)
    return names


def _yaml_scalars(values: list[Any]) -> list[str]:
    """``values`` as YAML scalars."""
    if not _NUMBERS_ONLY.issuperset(map(type, values)):
        return [_yaml_scalar(value) for value in values]
    texts = list(map(repr, values))  # repr of an int is its digits, of a float the shortest
    return [_yaml_float_text(text) if "e" in text or "n" in text else text for text in texts]


def _yaml_scalar(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return _yaml_float(value)
    if kind is str:
        return _yaml_text(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    raise _NotFlat


def _yaml_float(value: float) -> str:
    return _yaml_float_text(repr(value))


def _yaml_float_text(text: str) -> str:
    """YAML for a float's ``repr``: ``.nan``, ``.inf``, and a dot before any exponent (YAML 1.1
    reads ``1e-05`` back as text)."""
    if text in _NON_FINITE:
        return _NON_FINITE[text]
    return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text


def _yaml_text(text: str) -> str:
    if _PLAIN_TEXT.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    if _NOT_JSON_SAFE.search(text) is None:
        # a JSON string is a YAML double-quoted scalar (same escapes) for these characters
        return json.dumps(text, ensure_ascii=False)
    import yaml

    # rare text (line separators, C1 controls, lone surrogates): YAML's own escapes, one line
    quoted: str = yaml.dump(text, default_style='"', width=math.inf, allow_unicode=False)
    return quoted.rstrip("\n").removesuffix("\n...")


def write_summary(output_path: Path, summary: Mapping[str, Any], status: str) -> None:
    """Write the run's ``summary.yaml``: ``summary`` and ``_status``. Media set as summary
    values have no YAML form: the file names their type (``<Image>``). A failure (a full
    disk) is logged, never raised: it must not keep the backends from closing."""
    plain = {
        key: value if isinstance(value, int | float | str) else f"<{type(value).__name__}>"
        for key, value in summary.items()
    }
    try:
        write_yaml(output_path / SUMMARY_FILE, {**plain, "_status": status})
    except Exception as error:
        logging.getLogger("noether.trackers").error(
            "noether-trackers: could not write %s: %s", SUMMARY_FILE, error
        )


def flatten(data: Mapping[str, Any], separator: str = "/") -> dict[str, Any]:
    """Nested mappings as one level, names joined with ``separator`` (``{"a": {"b": 1}}``
    becomes ``{"a/b": 1}``): how a backend without nesting shows a run's config."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            for inner, leaf in flatten(value, separator).items():
                flat[f"{key}{separator}{inner}"] = leaf
        else:
            flat[str(key)] = value
    return flat
