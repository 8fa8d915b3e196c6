"""From the ``tracker:`` section of a config to tracker objects, failing fast on bad input.

The section may be ``None`` (no tracking), one mapping (one tracker) or a list of mappings
(fan-out to every one). Each mapping has a ``kind`` and that kind's options. Everything is
checked before any tracker is built, and every problem is reported at once in a
:class:`~noether.core.trackers.errors.TrackerConfigError` naming its YAML path.

A file holds the section in one of two ways: a full config has it under its ``tracker:`` key,
and a config-group file (Noether's ``configs/tracker/wandb.yaml``, selected with
``tracker=wandb`` through Hydra) *is* the section.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from noether.core.trackers.delivery import DeliveryMode, DeliverySettings
from noether.core.trackers.errors import (
    OptionError,
    TrackerConfigError,
    TrackerNotInstalledError,
    first_line,
)
from noether.core.trackers.registry import TrackerKind, TrackerRegistry, get_registry
from noether.core.trackers.schema import Constraint, Option, check_options, tracker_options
from noether.core.trackers.summary import SummaryDirections, directions_problem
from noether.core.trackers.tracker import BackendEntry, Tracker

SECTION = "tracker"
#: Constructor parameters the core passes itself; they are not YAML options.
CORE_PARAMETERS = frozenset({"output_path"})


class DirectionRules(Constraint):
    """The schema constraint of a ``summary:`` option: min/max/last keys, glob pattern values."""

    def applies(self, value: Any) -> bool:
        """Every non-null value is checked."""
        return value is not None

    def holds(self, value: Any) -> bool:
        """True when ``value`` is a valid ``summary:`` mapping."""
        return directions_problem(value) is None

    def describe(self) -> str:
        """What the option holds."""
        return "min/max/last: glob patterns"

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value``, naming the direction it is about."""
        return directions_problem(value) if self.applies(value) else None


#: Options every entry accepts besides its kind's own; the core consumes them.
ENTRY_OPTIONS = {
    # false: if this backend fails to start, train without it instead of stopping the run
    "required": Option("required", bool, True),
    # the run's metric directions (min/max/last: glob patterns); see summary.SummaryDirections
    "summary": Option("summary", dict[str, list[str] | str] | None, None, (DirectionRules(),)),
    # where the run's backends and journal run: a delivery process (default) or threads
    "delivery": Option("delivery", DeliveryMode | None, None),
}


#: How a file holds the tracker section: under the ``tracker:`` key of a full config, or as
#: the root of a config-group file.
SectionSource = Literal["full config", "config group"]


@dataclass(frozen=True)
class TrackerSectionFile:
    """The tracker section read from a file, and how the file holds it."""

    section: Any
    source: SectionSource

    def describe(self) -> str:
        """Where the section was found, for a user: which of the two file layouts this is."""
        if self.source == "full config":
            return f"a full config, under its `{SECTION}:` key"
        return f"a {SECTION} config-group file (its root is the {SECTION} section)"


@dataclass(frozen=True)
class TrackerEntry:
    """One checked entry of the ``tracker:`` section."""

    path: str
    kind: TrackerKind
    options: dict[str, Any]


def load_tracker_section(config_file: str | os.PathLike[str]) -> Any:
    """Read a YAML file and return its tracker section (an omegaconf node or None).

    The file is a full config with a ``tracker:`` key or a config-group file whose root is
    the section; :func:`read_tracker_section` also says which.
    """
    return read_tracker_section(config_file).section


def read_tracker_section(config_file: str | os.PathLike[str]) -> TrackerSectionFile:
    """Read a YAML file's tracker section and how the file holds it.

    A root mapping with a ``tracker:`` key and no ``kind`` is a full config; a root mapping
    with a ``kind`` (or a key that looks like a misspelled ``kind``), a root list or a root
    ``null`` is a config-group file.
    """
    path = Path(config_file)
    root = load_config_file(path)
    if _is_whole_config(root):
        return TrackerSectionFile(root[SECTION], "full config")
    if not isinstance(root, Mapping) or "kind" in root or _misspelled_kind(root):
        return TrackerSectionFile(root, "config group")
    raise TrackerConfigError(
        [
            f"{SECTION}: missing from {path}: it is neither a full config (no `{SECTION}:` key) "
            f"nor a {SECTION} config-group file (no `kind`); write `tracker: null` to disable "
            "tracking"
        ]
    )


def load_config_file(config_file: str | os.PathLike[str]) -> Any:
    """Read a YAML config file: an omegaconf node, or None for a file that is just ``null``.

    A file that is missing or is not valid YAML raises TrackerConfigError naming the file
    (and the line and column of the YAML error).
    """
    from omegaconf import OmegaConf

    path = Path(config_file)
    if not path.is_file():
        raise TrackerConfigError([f"{path}: no such config file"])
    try:
        root = OmegaConf.load(path)
    except OSError as error:  # e.g. no permission: the file is fine, reading it is not
        raise TrackerConfigError([f"{path}: cannot read: {error.strerror or error}"]) from error
    except Exception as error:
        raise TrackerConfigError([f"{path}: not valid YAML{_yaml_error_text(error)}"]) from error
    # omegaconf reads a `null` document as an empty mapping; the section it stands for is None
    return None if not root and _is_null_document(path) else root


def _is_null_document(path: Path) -> bool:
    """True when the YAML document of ``path`` is an explicit null (not ``{}``, not empty)."""
    import yaml

    node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _yaml_error_text(error: BaseException) -> str:
    """`` at line L, column C: problem`` for a YAML error (1-based, as editors count)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return f": {first_line(error)}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def check_tracker_section(
    section: Any, registry: TrackerRegistry | None = None, path: str = SECTION
) -> list[TrackerEntry]:
    """Check ``section`` and return its entries; raise TrackerConfigError on any problem."""
    registry = registry or get_registry()
    _refuse_whole_config(section, path)
    data = _resolve(section, path)
    if data is None:
        return []
    if isinstance(data, Mapping):
        items = [(path, data)]
    elif isinstance(data, list):
        if not data:
            raise TrackerConfigError(
                [f"{path}: empty list (list one tracker or more, or write `tracker: null`)"]
            )
        items = [(f"{path}[{index}]", item) for index, item in enumerate(data)]
    else:
        raise TrackerConfigError(
            [
                f"{path}: expected a mapping with a `kind`, a list of them, or null; "
                f"got {type(data).__name__} {data!r}"
            ]
        )
    problems: list[str] = []
    entries = []
    for item_path, item in items:
        entry = _check_entry(item_path, item, registry, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise TrackerConfigError(problems)
    summary_directions(entries)  # two entries must not disagree about a metric
    delivery_mode(entries)  # nor about the delivery
    return entries


def create_tracker(
    section: Any,
    output_path: str | os.PathLike[str] | None = None,
    *,
    registry: TrackerRegistry | None = None,
    delivery: DeliverySettings | None = None,
) -> Tracker:
    """Build the run that the ``tracker:`` section asks for, writing under ``output_path``.

    ``section`` is a mapping, a list of mappings, None, or the omegaconf node of any of those.
    ``delivery`` tunes the delivery engine (queue sizes, timeouts, the journal, and the mode,
    which the section's ``delivery:`` sets when ``delivery`` does not). The run holds one
    backend per entry (none for ``tracker: null`` or the ``noop`` kind).
    """
    entries = check_tracker_section(section, registry)
    settings = delivery or DeliverySettings()
    if settings.mode is None:
        settings = replace(settings, mode=delivery_mode(entries))
    return Tracker(
        build_entries(entries, output_path),
        output_path=output_path,
        delivery=settings,
        summary_directions=summary_directions(entries),
    )


def delivery_mode(entries: Sequence[TrackerEntry]) -> DeliveryMode | None:
    """The ``delivery:`` the entries give (any entry may, for the whole run);
    TrackerConfigError when two give different ones."""
    modes = {
        entry.path: entry.options["delivery"]
        for entry in entries
        if entry.options.get("delivery") is not None
    }
    if len(set(modes.values())) > 1:
        given = ", ".join(f"{path}.delivery: {mode}" for path, mode in modes.items())
        raise TrackerConfigError([f"{given}: one run has one delivery; give one of them"])
    return next(iter(modes.values()), None)


def summary_directions(entries: Sequence[TrackerEntry]) -> SummaryDirections:
    """The ``summary:`` rules of every entry, in order (they describe the one run, so a list
    may give them on any entry); TrackerConfigError when two entries give one pattern two
    directions."""
    directions = SummaryDirections()
    seen: dict[str, tuple[str, str]] = {}
    problems = []
    for entry in entries:
        rules = SummaryDirections.from_mapping(entry.options.get("summary"))
        for pattern, direction in rules.rules:
            earlier = seen.setdefault(pattern.lower(), (entry.path, direction.value))
            if earlier[1] != direction.value:
                problems.append(
                    f"{entry.path}.summary.{direction.value}: pattern {pattern!r} is "
                    f"'{earlier[1]}' in {earlier[0]}.summary; give it one direction"
                )
        directions = directions.then(rules)
    if problems:
        raise TrackerConfigError(problems)
    return directions


def _is_whole_config(data: Any) -> bool:
    """True for a mapping with a ``tracker`` key and no ``kind``: a whole config, not a
    tracker section."""
    return isinstance(data, Mapping) and "kind" not in data and SECTION in data


def _refuse_whole_config(section: Any, path: str) -> None:
    """A whole config given where its section belongs: say so, instead of reporting its
    missing ``kind``."""
    if _is_whole_config(section):
        raise TrackerConfigError(
            [
                f"{path}: got a whole config (it has a `{SECTION}:` key and no `kind`); pass "
                f"its tracker section instead, e.g. config[{SECTION!r}]"
            ]
        )


def _build(entry: TrackerEntry, output_path: str | os.PathLike[str] | None) -> BackendEntry:
    options = dict(entry.options)
    required = options.pop("required", True)
    options.pop("summary", None)  # the run's, not the backend's: see summary_directions
    options.pop("delivery", None)  # the run's too: see delivery_mode
    try:
        backend = entry.kind.tracker_class(output_path=output_path, **options)
    except OptionError as error:
        raise TrackerConfigError([f"{entry.path}.{error.option}: {error.message}"]) from error
    except (TypeError, ValueError) as error:
        raise TrackerConfigError([_located(entry.path, str(error), options)]) from error
    return BackendEntry(backend, config_path=entry.path, required=required)


def build_entries(
    entries: Sequence[TrackerEntry], output_path: str | os.PathLike[str] | None = None
) -> list[BackendEntry]:
    """One backend per entry, constructed as a run constructs it (the plugins' own option
    checks run; nothing starts: a backend does its I/O in ``_init``). TrackerConfigError
    naming every entry whose constructor refused its options."""
    built: list[BackendEntry] = []
    problems: list[str] = []
    for entry in entries:
        try:
            built.append(_build(entry, output_path))
        except TrackerConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise TrackerConfigError(problems)
    return built


def validate_tracker_section(
    section: Any, registry: TrackerRegistry | None = None
) -> list[TrackerEntry]:
    """Every check a run makes of ``section`` before it starts: the section itself, then each
    entry's plugin constructor (no backend starts; a backend does its I/O in ``_init``).
    Returns the entries; raises TrackerConfigError naming every problem. What
    ``noether-trackers validate`` and the framework integrations run before training."""
    entries = check_tracker_section(section, registry)
    build_entries(entries)
    return entries


def _located(path: str, message: str, options: dict[str, Any]) -> str:
    """A constructor's error under the YAML path of the option it is about, when it starts
    with one (``"project must not be empty"`` becomes ``"tracker.project: must not be
    empty"``, ``"settings.mode: ..."`` becomes ``"tracker.settings.mode: ..."``)."""
    subject = re.match(r"([A-Za-z_][\w.]*)(?::\s*|\s+)(.*)", message, re.DOTALL)
    if subject and subject.group(1).split(".", 1)[0] in options:
        return f"{path}.{subject.group(1)}: {subject.group(2)}"
    return f"{path}: {message}"


def _check_entry(
    path: str, item: Any, registry: TrackerRegistry, problems: list[str]
) -> TrackerEntry | None:
    if not isinstance(item, Mapping):
        problems.append(
            f"{path}: expected a mapping with a `kind`; got {type(item).__name__} {item!r}"
        )
        return None
    kind_name = item.get("kind")
    if kind_name is None:
        problems.append(
            f"{path}.kind: missing (every tracker entry names its kind){_misspelled_kind(item)}"
        )
        return None
    if not isinstance(kind_name, str):
        problems.append(f"{path}.kind: expected str, got {type(kind_name).__name__} {kind_name!r}")
        return None
    try:
        kind = registry.resolve(kind_name)
    except TrackerNotInstalledError as error:
        problems.append(f"{path}.kind: {error}")
        return None
    except KeyError as error:
        problems.append(f"{path}.kind: {error.args[0]}")
        return None
    if kind.plugin_api_problem is not None:
        problems.append(f"{path}.kind: {kind.describe_plugin()} is {kind.plugin_api_problem}")
        return None
    options = {key: value for key, value in item.items() if key != "kind"}
    schema = {**tracker_options(kind.tracker_class, CORE_PARAMETERS), **ENTRY_OPTIONS}
    found = check_options(path, options, schema)
    problems.extend(found)
    return None if found else TrackerEntry(path, kind, options)


def _misspelled_kind(item: Mapping[str, Any]) -> str:
    """``; did you mean 'kind' instead of 'kidn'?`` when a key of ``item`` looks like ``kind``."""
    import difflib

    keys = [key for key in item if isinstance(key, str)]
    close = difflib.get_close_matches("kind", [key.lower() for key in keys], n=1, cutoff=0.6)
    if not close:
        return ""
    misspelled = next(key for key in keys if key.lower() == close[0])
    return f"; did you mean 'kind' instead of '{misspelled}'?"


def _resolve(section: Any, path: str) -> Any:
    """Resolve interpolations and return plain data, naming the path of any that fails."""
    if section is None:
        return None
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if not isinstance(section, DictConfig | ListConfig):
        if not isinstance(section, Mapping | Sequence) or isinstance(section, str):
            return section
        try:
            section = OmegaConf.create({SECTION: section})[SECTION]
        except Exception as error:
            raise TrackerConfigError([f"{path}: {first_line(error)}"]) from error
    try:
        return OmegaConf.to_container(section, resolve=True, throw_on_missing=True)
    except Exception as error:
        where = getattr(error, "full_key", None) or path
        if not where.startswith(path):
            where = f"{path}.{where}"
        raise TrackerConfigError([f"{where}: {first_line(error)}"]) from error
