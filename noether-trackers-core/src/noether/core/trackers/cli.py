"""The ``noether-trackers`` command: ``list`` installed plugins, ``validate`` a config,
``replay`` a run's journal into other backends, write a ``new-plugin`` from the template."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from noether.core.trackers import new_plugin  # only the standard library: cheap
from noether.core.trackers.plugin_api import PLUGIN_API


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="noether-trackers", description="Experiment tracking through one interface."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="installed tracker plugins (imports no backend)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    validate = commands.add_parser("validate", help="check a config's tracker section")
    validate.add_argument(
        "config",
        help="YAML file: a full config with a `tracker:` key, or a tracker config-group file "
        "whose root is the tracker section",
    )
    replay = commands.add_parser("replay", help="push a run's journal into other backends")
    replay.add_argument("run_dir", help="output directory of the run (holds journal.jsonl)")
    replay.add_argument("--to", required=True, metavar="CONFIG", help="YAML with a `tracker:`")
    replay.add_argument(
        "--output", default=None, help="where the backends write (default: RUN_DIR/replay)"
    )
    scaffold = commands.add_parser(
        "new-plugin", help="write a new tracker plugin distribution (template)"
    )
    new_plugin.add_arguments(scaffold)
    args = parser.parse_args(argv)
    if args.command == "new-plugin":
        return new_plugin.run(args)
    if args.command == "list":
        return list_plugins(as_json=args.json)
    if args.command == "replay":
        try:
            return replay_run(args.run_dir, args.to, args.output)
        except KeyboardInterrupt:  # while reading the journal (replay_run handles the rest)
            return _fail("replay interrupted", status=130)
    return validate_config(args.config)


def plugin_report() -> dict[str, Any]:
    """What ``list`` shows, as data."""
    from noether.core.trackers.registry import get_registry

    registry = get_registry()
    return {
        "trackers": [
            {
                "kind": entry.kind,
                "aliases": [*entry.aliases, f"noether.core.trackers.{entry.class_name}"],
                "distribution": entry.distribution,
                "version": entry.version,
                "backend": entry.backend_library,
                "backend_version": entry.backend_version,
                "plugin_api": entry.plugin_api,
                "plugin_api_problem": entry.plugin_api_problem,
            }
            for entry in sorted(registry.kinds, key=lambda entry: entry.kind)
        ],
        "broken": [
            {"plugin": broken.plugin, "distribution": broken.distribution, "error": broken.error}
            for broken in registry.broken
        ],
        "conflicts": list(registry.conflicts),
        "plugin_api": PLUGIN_API,
    }


def list_plugins(*, as_json: bool) -> int:
    """Print the installed tracker kinds, broken plugins and name conflicts."""
    report = plugin_report()
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [("KIND", "DISTRIBUTION", "BACKEND", "ALSO SELECTABLE AS")]
    for tracker in report["trackers"]:
        backend = (
            f"{tracker['backend']} {tracker['backend_version'] or '(not installed)'}"
            if tracker["backend"]
            else "-"
        )
        rows.append(
            (
                tracker["kind"],
                f"{tracker['distribution']} {tracker['version']}",
                backend,
                ", ".join(tracker["aliases"]),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[3]
        )
    for broken in report["broken"]:
        print(f"BROKEN plugin '{broken['plugin']}' ({broken['distribution']}): {broken['error']}")
    for conflict in report["conflicts"]:
        print(f"CONFLICT {conflict}")
    for tracker in report["trackers"]:
        if tracker["plugin_api_problem"] is not None:
            print(
                f"WARNING kind '{tracker['kind']}' ({tracker['distribution']} "
                f"{tracker['version']}) is {tracker['plugin_api_problem']}; a run that uses "
                "it stops with this error before training"
            )
    return 0


def validate_config(config_file: str) -> int:
    """Check the tracker section of ``config_file`` as a run would, the plugins' own
    constructor checks included (each entry is built; no backend starts); 0 when it is valid.

    The file is a full config with a ``tracker:`` key or a config-group file whose root is the
    tracker section; the OK line says which it found.
    """
    from noether.core.trackers.config import read_tracker_section, validate_tracker_section
    from noether.core.trackers.errors import TrackerConfigError

    try:
        found = read_tracker_section(config_file)
    except TrackerConfigError as error:  # its message names the file already
        return _fail(str(error))
    try:
        entries = validate_tracker_section(found.section)
    except TrackerConfigError as error:
        return _fail(f"{config_file}: {error}")
    kinds = ", ".join(entry.kind.kind for entry in entries) or "none (tracking disabled)"
    print(f"{config_file}: OK (trackers: {kinds}) in {found.describe()}")
    return 0


def replay_run(run_dir: str, config_file: str, output: str | None) -> int:
    """Replay ``run_dir``'s journal into the backends of ``config_file``; 0 on success.

    Every failure is one message on stderr and a non-zero status, never a traceback: a
    directory that is not a run, a journal that cannot be read or has no ``init`` record, a
    wrong config, a backend that fails to start. Lines of the journal that cannot be read are
    skipped, and the output says how many.
    """
    import os
    from pathlib import Path

    from noether.core.trackers.config import load_tracker_section
    from noether.core.trackers.errors import TrackerConfigError
    from noether.core.trackers.journal import JOURNAL_FILE, JournalError, JournalReader
    from noether.core.trackers.replay import progress_bar, push_records, replayable_records

    journal_file = Path(run_dir) / JOURNAL_FILE
    if not os.path.lexists(journal_file):  # lexists: never raises (permissions, NUL bytes)
        return _fail(f"{run_dir}: no {JOURNAL_FILE} here: not a run directory")
    try:
        section = load_tracker_section(config_file)
    except TrackerConfigError as error:  # its message names the file (and line and column)
        return _fail(str(error))
    journal = JournalReader(run_dir)
    try:
        records = replayable_records(journal)
    except OSError as error:
        return _fail(f"{journal_file}: cannot read the journal: {error.strerror or error}")
    except JournalError as error:  # nothing readable says which run this is
        skipped = journal.describe_skipped()
        return _fail(f"cannot replay: {error}" + (f"; {skipped}" if skipped else ""))
    skipped = journal.describe_skipped()
    if skipped is not None:
        print(f"{skipped}; replaying the rest", file=sys.stderr)
    destination = Path(output) if output is not None else Path(run_dir) / "replay"
    progress = progress_bar()
    try:
        report = push_records(records, section, destination, progress)
    except KeyboardInterrupt:
        progress.end_line()
        return _fail("replay interrupted", status=130)
    except TrackerConfigError as error:  # a wrong tracker section, or a backend that failed
        progress.end_line()
        return _fail(f"{config_file}: {error}")
    except (OSError, ValueError, TypeError, RecursionError) as error:
        # the output directory, or what the journal holds (e.g. a config the tracker refuses)
        progress.end_line()
        return _fail(f"cannot replay {run_dir} into {destination}: {error}")
    if report is not None and not report.complete:
        return _fail(report.describe())
    suffix = f" (skipped {journal.count_skipped()})" if journal.skipped else ""
    print(f"replayed {run_dir} into {config_file}{suffix}")
    return 0


def _fail(message: str, status: int = 1) -> int:
    """Print ``message`` on stderr; return ``status`` (the command's exit status)."""
    print(message, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
