"""The records of a run, defined once: what travels from the run to its backends, and what the
journal keeps, with their JSON form.

Two families share one module because they overlap: a ``log()`` call *is* a
:class:`LogRecord`, journaled and handed to every backend as it is.

- Journal records (one JSON object per line of ``journal.jsonl``, ``docs/journal.md``):
  :class:`JournalHeader`, :class:`InitRecord`, :class:`LogRecord`, :class:`SummaryRecord`,
  :class:`RewindRecord`, :class:`CloseRecord`; a record of an ``op`` this version does not know
  (a later format) reads as :class:`UnknownRecord`.
- Calls for a backend, in the order a backend receives them: :class:`StartCall`, then
  :class:`LogRecord` and :class:`SummaryRecord`, then :class:`FinalSummary` and
  :class:`CloseCall`; :class:`JournalSpan` stands for calls a backend that fell behind reads
  back from the journal.

:func:`to_json` and :func:`from_json` convert a journal record to and from its JSON object;
:func:`encode_values` and :func:`decode_value` convert logged values (media included).

Records are plain slotted dataclasses, not frozen ones, because ``log()`` builds one per call
on the training thread (a frozen one costs three times as much); nothing changes a record
after it is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeAlias

from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.run_files import to_plain_value
from noether.core.trackers.run_info import MAX_STEP, RunInfo, RunStatus
from noether.core.trackers.values import Value

#: The journal format this version writes (the ``version`` of :class:`JournalHeader`).
FORMAT_VERSION = 1


class JournalError(ValueError):
    """A journal line or value that cannot be read (:class:`JournalReader` skips them)."""


# ---- journal records ----------------------------------------------------------------------------


@dataclass(slots=True)
class JournalHeader:
    """``journal``: the first record a process writes when it opens the journal."""

    OP: ClassVar[str] = "journal"
    #: The format version (:data:`FORMAT_VERSION` when written by this version).
    version: int
    t: float | None = None


@dataclass(slots=True)
class InitRecord:
    """``init``: a process started (or resumed) the run."""

    OP: ClassVar[str] = "init"
    run_name: str
    run_id: str
    stage_name: str | None = None
    #: The run's config as stored (redacted, plain; ``run_environment`` included).
    config: Any = None
    #: The user's summary rules as ``[pattern, direction]`` pairs (``SummaryDirections``).
    summary_directions: Any = ()
    t: float | None = None

    @classmethod
    def of_run(cls, run: RunInfo, t: float) -> InitRecord:
        """The record of starting ``run`` at wall time ``t``."""
        return cls(
            run.run_name,
            run.run_id,
            run.stage_name,
            run.config,
            run.summary_directions.to_pairs(),
            t,
        )


@dataclass(slots=True)
class LogRecord:
    """``log``: values logged at a step; also the call that hands them to every backend."""

    OP: ClassVar[str] = "log"
    step: int
    values: dict[str, Value]
    #: When the user called ``log()`` (wall time).
    t: float | None = None


@dataclass(slots=True)
class SummaryRecord:
    """``summary``: values set with ``set_summary``/``update_summary``; also the call."""

    OP: ClassVar[str] = "summary"
    values: dict[str, Value]
    t: float | None = None


@dataclass(slots=True)
class RewindRecord:
    """``rewind``: a resumed run restarted from ``step``; earlier points at steps from it on
    are superseded."""

    OP: ClassVar[str] = "rewind"
    step: int
    t: float | None = None


@dataclass(slots=True)
class CloseRecord:
    """``close``: the run ended with ``status``; its end-of-run summary, and per backend the
    calls it did not take."""

    OP: ClassVar[str] = "close"
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    undelivered: dict[str, Any] = field(default_factory=dict)
    t: float | None = None


@dataclass(slots=True)
class UnknownRecord:
    """A record of an ``op`` this version does not know (written by a later version): kept
    as it is, never delivered."""

    op: str
    data: dict[str, Any]


#: Every record a journal holds.
Record: TypeAlias = (
    JournalHeader | InitRecord | LogRecord | SummaryRecord | RewindRecord | CloseRecord
)
#: The journal record types, by ``op``.
RECORD_TYPES: dict[str, type[Record]] = {
    record_type.OP: record_type
    for record_type in (
        JournalHeader,
        InitRecord,
        LogRecord,
        SummaryRecord,
        RewindRecord,
        CloseRecord,
    )
}

#: Per record type, its fields other than ``t``, in order (what its JSON object holds).
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    record_type: tuple(item.name for item in fields(record_type) if item.name != "t")
    for record_type in RECORD_TYPES.values()
}


# ---- calls for a backend ------------------------------------------------------------------------


@dataclass(slots=True)
class StartCall:
    """Start the backend's run (its ``_init``); every backend of a run gets the same ``run``."""

    run: RunInfo


@dataclass(slots=True)
class FinalSummary:
    """The end-of-run summary (best and last of every metric, and what the user set)."""

    values: dict[str, Value]


@dataclass(slots=True)
class CloseCall:
    """End the run with ``status`` (the backend's ``_close``); from the run to the engine, it
    asks for the end of delivery."""

    status: RunStatus


@dataclass(slots=True)
class JournalSpan:
    """``calls`` journaled calls between byte offsets ``start`` and ``end``, which a backend
    that fell behind reads back (``read``) instead of holding them in memory."""

    read: Callable[[int, int], Any]
    start: int
    end: int
    calls: int


#: Everything a backend's worker takes from its queue.
Call: TypeAlias = StartCall | LogRecord | SummaryRecord | FinalSummary | CloseCall | JournalSpan


# ---- JSON form ----------------------------------------------------------------------------------


def to_json(record: Record, encoded_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object of ``record`` (``op`` and ``t`` first); ``encoded_values`` stands in
    for the values it holds (see :func:`encode_values`): the ``values`` of a log or summary
    record, the ``summary`` of a close record."""
    data: dict[str, Any] = {"op": record.OP, "t": record.t}
    for name in _FIELD_NAMES[type(record)]:
        data[name] = getattr(record, name)
    if encoded_values is not None:
        data["summary" if isinstance(record, CloseRecord) else "values"] = encoded_values
    if isinstance(record, InitRecord):
        data["summary_directions"] = [list(pair) for pair in record.summary_directions]
    return data


def _is_step(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_STEP


def _is_time(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


#: Per type: the fields a record needs (others have defaults), each with its check and what
#: the check wants.
_REQUIRED: dict[type[Any], tuple[tuple[str, Callable[[Any], bool], str], ...]] = {
    JournalHeader: (("version", lambda value: type(value) is int, "an int"),),
    InitRecord: (
        ("run_name", lambda value: isinstance(value, str), "a string"),
        ("run_id", lambda value: isinstance(value, str), "a string"),
    ),
    LogRecord: (
        ("step", _is_step, "a step (an int from 0 to 2**63-1)"),
        ("values", lambda value: isinstance(value, dict), "an object"),
    ),
    SummaryRecord: (("values", lambda value: isinstance(value, dict), "an object"),),
    RewindRecord: (("step", _is_step, "a step (an int from 0 to 2**63-1)"),),
    CloseRecord: (("status", lambda value: isinstance(value, str), "a string"),),
}
#: Optional fields that must have a given type when present.
_OPTIONAL: dict[type[Any], tuple[tuple[str, Callable[[Any], bool], str], ...]] = {
    InitRecord: (
        ("stage_name", lambda value: value is None or isinstance(value, str), "a string or null"),
    ),
    CloseRecord: (
        ("summary", lambda value: isinstance(value, dict), "an object"),
        ("undelivered", lambda value: isinstance(value, dict), "an object"),
    ),
}


def from_json(data: Any) -> Record | UnknownRecord:
    """The record of one parsed journal line, its values still in JSON form (decode them
    with :func:`decode_value`); :class:`JournalError` saying why when it is not one."""
    if not isinstance(data, dict):
        raise JournalError(f"not a JSON object (a JSON {type(data).__name__})")
    operation = data.get("op")
    if operation == "log" and _is_step(data.get("step")) and type(data.get("values")) is dict:
        return LogRecord(data["step"], data["values"], _time(data))  # the common case first
    if not isinstance(operation, str):
        raise JournalError("a JSON object without an `op`")
    record_type = RECORD_TYPES.get(operation)
    if record_type is None:
        return UnknownRecord(operation, data)
    for name, check, wanted in _REQUIRED[record_type]:
        if name not in data:
            raise JournalError(f"a `{operation}` record without `{name}`")
        if not check(data[name]):
            raise JournalError(f"a `{operation}` record whose `{name}` is not {wanted}")
    for name, check, wanted in _OPTIONAL.get(record_type, ()):
        if name in data and not check(data[name]):
            raise JournalError(f"a `{operation}` record whose `{name}` is not {wanted}")
    known = _FIELD_NAMES[record_type]
    return record_type(**{k: data[k] for k in known if k in data}, t=_time(data))


def _time(data: dict[str, Any]) -> float | None:
    value = data.get("t")
    return value if _is_time(value) else None


# ---- values -------------------------------------------------------------------------------------

#: Stores an image logged under a key at a step; returns the path the journal references.
StoreImage = Callable[[str, "int | None", Image], str]
#: Reads the bytes of the media file a journal references (raises JournalError if it may not).
ReadMedia = Callable[[Any], bytes]


def encode_values(
    values: Mapping[str, Value], step: int | None, store_image: StoreImage
) -> dict[str, Any]:
    """Values as JSON data: numbers and text as they are, media as objects with a ``type``
    (an image is stored by ``store_image`` and referenced by its path)."""
    encoded: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, int | float | str):
            encoded[key] = value
        elif isinstance(value, Image):
            encoded[key] = {
                "type": "image",
                "path": store_image(key, step, value),
                "caption": value.caption,
            }
        elif isinstance(value, Histogram):
            encoded[key] = {
                "type": "histogram",
                "edges": value.edges.tolist(),
                "counts": value.counts.tolist(),
                "min": value.min,
                "max": value.max,
                "sum": value.sum,
                "sum_squares": value.sum_squares,
                "dropped": value.dropped,
            }
        else:
            encoded[key] = {
                "type": "table",
                "columns": list(value.columns),
                "rows": [[to_plain_value(cell) for cell in row] for row in value.rows],
            }
    return encoded


def decode_value(value: Any, read_media: ReadMedia) -> Value:
    """One journaled value back as a number, text or media object (images read through
    ``read_media``); :class:`JournalError` for anything else: an unknown type, a malformed
    histogram or table, an image that cannot be read."""
    if isinstance(value, int | float | str):
        return value
    if not isinstance(value, dict):
        raise JournalError(f"not a journal value (a JSON {type(value).__name__})")
    kind = value.get("type")
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise JournalError(f"unknown journal value type {kind!r}")
    try:
        return decoder(value, read_media)
    except JournalError:
        raise
    except Exception as error:  # hostile or damaged data may break a decoder in any way
        raise JournalError(f"malformed {kind} value ({type(error).__name__}: {error})") from error


def _decode_image(value: dict[str, Any], read_media: ReadMedia) -> Image:
    caption = value.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise JournalError("an image caption that is not a string")
    return Image.from_png(read_media(value.get("path")), caption=caption)


def _decode_histogram(value: dict[str, Any], read_media: ReadMedia) -> Histogram:
    statistics = {name: value[name] for name in ("min", "max", "sum", "sum_squares", "dropped")}
    return Histogram.from_bins(value["edges"], value["counts"], **statistics)


def _decode_table(value: dict[str, Any], read_media: ReadMedia) -> Table:
    return Table(value["columns"], value["rows"])


_DECODERS: dict[str, Callable[[dict[str, Any], ReadMedia], Value]] = {
    "image": _decode_image,
    "histogram": _decode_histogram,
    "table": _decode_table,
}
