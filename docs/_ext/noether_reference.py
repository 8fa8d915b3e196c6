"""Sphinx extension: the reference parts of the docs, generated from the installed code.

Nothing here is copied by hand, so the pages cannot drift from the code:

``{tracker-options} KIND``
    The options of a tracker kind, read from its constructor (the kind's YAML schema, as the
    config check and ``noether-trackers validate`` read it): name, type, constraints, default.
    Without a KIND, the options every entry accepts (``required``). The directive's body
    describes each option, one ``name: text`` line each (Markdown; indented lines continue
    it). The build warns (an error under ``-W``) when an option has no description or a
    description names no option.

``{tracker-kinds}``
    Every first-party kind with the names that select it, its distribution and its options,
    each linked to its description.

``{cli-command} NAME``
    One command of ``noether-trackers``, read from its argparse parser: usage, arguments and
    their help. Without a NAME, the program itself.

When the build ends, every first-party tracker kind and every command of the parser must have
been documented by one of these directives: a new option, kind or command fails the docs
build (``-W``) until it is described.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from unittest import mock

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from noether.core.trackers import config as config_module
from noether.core.trackers import schema as schema_module
from noether.core.trackers.config import CORE_PARAMETERS, ENTRY_OPTIONS
from noether.core.trackers.registry import (
    CORE_DISTRIBUTION,
    DOTTED_PREFIX,
    KNOWN_PLUGINS,
    TrackerKind,
    get_registry,
)
from noether.core.trackers.schema import Option, tracker_options, type_name

logger = logging.getLogger(__name__)

#: The distributions whose kinds the docs must describe: core and the first-party plugins.
FIRST_PARTY = frozenset({CORE_DISTRIBUTION, *(dist for _, dist in KNOWN_PLUGINS.values())})
#: Width of the generated usage lines (argparse would otherwise follow the terminal).
USAGE_WIDTH = 88
#: Where the build keeps what each document described: docname -> {"kinds"|"commands": names}.
ENV_KEY = "noether_reference"
#: The label of an option's row: ``option-<kind>-<name>`` (``entry`` for every entry's).
ENTRY = "entry"


def option_label(kind: str, name: str) -> str:
    """The cross-reference label of option ``name`` of ``kind`` (``entry``: every entry's)."""
    return f"option-{kind}-{name}".lower()


def first_party_kinds() -> dict[str, TrackerKind]:
    """The installed kinds of core and the first-party plugins, by kind."""
    return {
        entry.kind: entry for entry in get_registry().kinds if entry.distribution in FIRST_PARTY
    }


def kind_options(kind: TrackerKind) -> dict[str, Option]:
    """The YAML options of ``kind``, as the config check reads them (without ``required``)."""
    return tracker_options(kind.tracker_class, CORE_PARAMETERS)


def yaml_value(value: Any) -> str:
    """``value`` as it is written in YAML: ``null``, ``true``, ``30.0``, ``tensorboard_logs``."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def type_text(option: Option) -> str:
    """The option's type in YAML words, with its constraints: ``float (> 0, a finite number)``."""
    text = type_name(option.annotation)
    if option.constraints:
        text += f" ({', '.join(constraint.describe() for constraint in option.constraints)})"
    return text


def parse_descriptions(lines: list[str]) -> dict[str, str]:
    """``name: text`` entries; indented lines continue the entry before them."""
    descriptions: dict[str, str] = {}
    current: str | None = None
    for line in lines:
        start = re.match(r"([A-Za-z_][\w-]*):(?:\s+(.*))?$", line)
        if start:
            current = start.group(1)
            descriptions[current] = (start.group(2) or "").strip()
        elif line.strip() and current is not None and line[:1].isspace():
            descriptions[current] += " " + line.strip()
        elif line.strip():
            raise ValueError(f"expected 'name: description' or an indented line, got {line!r}")
    return descriptions


def described(env: BuildEnvironment) -> dict[str, dict[str, set[str]]]:
    """What each document described (kinds and commands), kept in the build environment."""
    data: dict[str, dict[str, set[str]]] = getattr(env, ENV_KEY, None) or {}
    setattr(env, ENV_KEY, data)
    return data


def table(
    widths: list[int], header: list[str], rows: Sequence[Sequence[nodes.Node]]
) -> nodes.table:
    """A docutils table; every cell of ``rows`` is one node."""
    tgroup = nodes.tgroup(cols=len(widths))
    for width in widths:
        tgroup += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += make_row([nodes.paragraph(text=title) for title in header])
    tgroup += head
    body = nodes.tbody()
    for cells in rows:
        body += make_row(cells)
    tgroup += body
    result = nodes.table(classes=["noether-reference"])
    result += tgroup
    return result


def make_row(cells: Sequence[nodes.Node]) -> nodes.row:
    """A table row of one entry per cell."""
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += cell
        row += entry
    return row


class ReferenceDirective(SphinxDirective):
    """What the generated directives share: Markdown in cells, warnings at the directive."""

    def markdown(self, text: str) -> nodes.Element:
        """``text`` parsed as the page's own markup (Markdown under MyST) into one node."""
        container = nodes.container()
        container.extend(self.parse_text_to_nodes(text))
        return container

    def warn(self, message: str) -> None:
        """A build warning located at this directive (an error under ``-W``)."""
        logger.warning(message, location=self.get_location())

    def depend_on(self, *objects: Any) -> None:
        """Read this document again when the source file of any of ``objects`` changes (an
        incremental build would otherwise keep a generated table of the old code)."""
        for source in objects:
            self.env.note_dependency(inspect.getfile(source))

    def record(self, what: str, name: str) -> None:
        """Note that this document described ``name`` (a kind or a command)."""
        entry = described(self.env).setdefault(
            self.env.docname, {"kinds": set(), "commands": set()}
        )
        entry[what].add(name)


class TrackerOptions(ReferenceDirective):
    """``{tracker-options} KIND``: the options of a kind, generated, with their descriptions."""

    optional_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        kind_name = self.arguments[0] if self.arguments else None
        self.depend_on(config_module, schema_module)
        if kind_name is None:
            options, label_kind = dict(ENTRY_OPTIONS), ENTRY
        else:
            kind = first_party_kinds().get(kind_name)
            if kind is None:
                self.warn(
                    f"tracker-options: '{kind_name}' is not an installed first-party kind "
                    f"(installed: {', '.join(sorted(first_party_kinds()))})"
                )
                return []
            self.record("kinds", kind.kind)
            self.depend_on(kind.tracker_class)
            options, label_kind = kind_options(kind), kind.kind
        try:
            descriptions = parse_descriptions(list(self.content))
        except ValueError as error:
            self.warn(f"tracker-options {kind_name or ''}: {error}")
            return []
        where = f"the {{tracker-options}} {kind_name or ''} block of {self.env.docname}.md"
        missing = [name for name in options if name not in descriptions]
        if missing:
            self.warn(
                f"options without a description: {', '.join(missing)}; describe them in {where}"
            )
        unknown = [name for name in descriptions if name not in options]
        if unknown:
            self.warn(
                f"described options that {kind_name or 'every entry'} does not have: "
                f"{', '.join(unknown)}; remove them from {where}"
            )
        if not options:
            return [nodes.paragraph(text="This kind has no options of its own.")]
        rows = [
            self.row(label_kind, option, descriptions.get(name, ""))
            for name, option in options.items()
        ]
        return [table([22, 22, 16, 40], ["option", "type", "default", "meaning"], rows)]

    def row(self, kind: str, option: Option, description: str) -> list[nodes.Node]:
        """One option's cells; the first holds the target that the kinds table links to."""
        label = option_label(kind, option.name)
        target = nodes.target("", "", ids=[nodes.make_id(label)], names=[label])
        self.state.document.note_explicit_target(target, target)
        name = nodes.paragraph()
        name += target
        name += nodes.literal(text=option.name)
        default = (
            nodes.paragraph(text="required")
            if option.required
            else self.code_paragraph(yaml_value(option.default))
        )
        return [name, self.code_paragraph(type_text(option)), default, self.markdown(description)]

    @staticmethod
    def code_paragraph(text: str) -> nodes.paragraph:
        """A paragraph holding ``text`` as inline code."""
        paragraph = nodes.paragraph()
        paragraph += nodes.literal(text=text)
        return paragraph


class TrackerKinds(ReferenceDirective):
    """``{tracker-kinds}``: every first-party kind, how to select it and its options."""

    def run(self) -> list[nodes.Node]:
        missing = sorted(FIRST_PARTY - {kind.distribution for kind in first_party_kinds().values()})
        if missing:
            self.warn(
                f"tracker-kinds: install {', '.join(missing)} to build the complete reference"
            )
        rows: list[list[nodes.Node]] = []
        self.depend_on(config_module, schema_module)
        for name, kind in sorted(first_party_kinds().items()):
            self.depend_on(kind.tracker_class)
            selectors = [kind.kind, *kind.aliases, DOTTED_PREFIX + kind.class_name]
            options = nodes.paragraph()
            names = [(name, option) for option in kind_options(kind)]
            names += [(ENTRY, option) for option in ENTRY_OPTIONS]
            for index, (owner, option) in enumerate(names):
                if index:
                    options += nodes.Text(", ")
                options += self.link(owner, option)
            rows.append(
                [
                    self.codes(selectors),
                    nodes.paragraph(text=kind.distribution or ""),
                    options,
                ]
            )
        return [table([36, 24, 40], ["kind", "distribution", "options"], rows)]

    @staticmethod
    def codes(texts: list[str]) -> nodes.line_block:
        """``texts`` as inline code, one per line."""
        lines = nodes.line_block()
        for text in texts:
            lines += nodes.line("", "", nodes.literal(text=text))
        return lines

    @staticmethod
    def link(kind: str, option: str) -> nodes.Node:
        """A link to the row of ``option`` in the options table of ``kind``."""
        xref = addnodes.pending_xref(
            "",
            refdomain="std",
            reftype="ref",
            reftarget=option_label(kind, option),
            refexplicit=True,
            refwarn=True,
        )
        xref += nodes.literal(text=option)
        return xref


def cli_parser() -> argparse.ArgumentParser:
    """The parser of ``noether-trackers``: ``cli.build_parser()`` when the module has one,
    otherwise the one ``cli.main`` builds, caught when it parses (nothing is run)."""
    from noether.core.trackers import cli

    build = getattr(cli, "build_parser", None)
    if callable(build):
        parser = build()
        assert isinstance(parser, argparse.ArgumentParser)
        return parser

    class Caught(Exception):
        def __init__(self, parser: argparse.ArgumentParser) -> None:
            super().__init__()
            self.parser = parser

    def catch(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> argparse.Namespace:
        raise Caught(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", catch):
        try:
            cli.main([])
        except Caught as caught:
            return caught.parser
    raise RuntimeError("noether.core.trackers.cli.main() returned without parsing arguments")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Every command of ``parser``: its parser and its one-line help."""
    commands: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                commands[name] = (subparser, helps.get(name, ""))
    return commands


def arguments(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """The arguments of ``parser`` a user gives (not ``--help``, not the commands)."""
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        yield action


def argument_name(action: argparse.Action) -> str:
    """How the argument is written: ``config``, ``--to CONFIG``, ``--json``."""
    if not action.option_strings:
        return str(action.metavar or action.dest)
    takes_value = action.nargs != 0
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"{flag} {metavar}" if takes_value else flag for flag in action.option_strings)


def argument_help(action: argparse.Action) -> str:
    """The argument's help, and whether it is required or its default."""
    text = sentence(action.help or "")
    if text and not text.endswith("."):
        text += "."
    if action.option_strings and action.required:
        text += " Required."
    if (
        action.option_strings
        and action.nargs != 0
        and action.default not in (None, argparse.SUPPRESS)
    ):
        text += f" Default: `{action.default}`."
    return text.strip()


def sentence(text: str) -> str:
    """``text`` (an argparse help string) starting with a capital letter."""
    text = text.strip()
    return text[:1].upper() + text[1:]


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line of ``parser`` at a fixed width."""
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=USAGE_WIDTH)
    return parser.format_usage().strip()


class CliCommand(ReferenceDirective):
    """``{cli-command} NAME``: one command's usage and arguments, from the parser."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from noether.core.trackers import cli

        self.depend_on(cli)
        parser = cli_parser()
        if not self.arguments:
            commands = subcommands(parser)
            result: list[nodes.Node] = [nodes.literal_block(text=usage(parser), language="text")]
            rows = [
                [nodes.paragraph("", "", nodes.literal(text=name)), self.markdown(help_text)]
                for name, (_, help_text) in commands.items()
            ]
            rows += [
                [
                    nodes.paragraph("", "", nodes.literal(text=argument_name(action))),
                    self.markdown(argument_help(action)),
                ]
                for action in arguments(parser)
            ]
            result.append(table([30, 70], ["command", "what it does"], rows))
            return result
        name = self.arguments[0]
        commands = subcommands(parser)
        if name not in commands:
            self.warn(
                f"cli-command: noether-trackers has no command '{name}' "
                f"(it has: {', '.join(commands)})"
            )
            return []
        self.record("commands", name)
        subparser, help_text = commands[name]
        result = [
            self.markdown(sentence(help_text) + "."),
            nodes.literal_block(text=usage(subparser), language="text"),
        ]
        rows = [
            [
                nodes.paragraph("", "", nodes.literal(text=argument_name(action))),
                self.markdown(argument_help(action)),
            ]
            for action in arguments(subparser)
        ]
        if rows:
            result.append(table([30, 70], ["argument", "meaning"], rows))
        return result


def check_everything_described(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about first-party kinds and commands that no page describes."""
    data = described(env)
    kinds = set().union(*(entry["kinds"] for entry in data.values()))
    commands = set().union(*(entry["commands"] for entry in data.values()))
    for kind in sorted(set(first_party_kinds()) - kinds):
        logger.warning(
            f"tracker kind '{kind}' is not documented: add a {{tracker-options}} {kind} block "
            "describing its options (docs/backends/ or docs/configuration.md)"
        )
    for command in sorted(set(subcommands(cli_parser())) - commands):
        logger.warning(
            f"command 'noether-trackers {command}' is not documented: add a "
            f"{{cli-command}} {command} block to docs/cli.md"
        )


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    """Forget what ``docname`` described (it is read again)."""
    described(env).pop(docname, None)


def merge(
    app: Sphinx,
    env: BuildEnvironment,
    docnames: set[str],
    other: BuildEnvironment,
) -> None:
    """Take over what a parallel reader's documents described."""
    mine, theirs = described(env), described(other)
    for docname in docnames:
        if docname in theirs:
            mine[docname] = theirs[docname]


def setup(app: Sphinx) -> Mapping[str, Any]:
    """Register the directives and the end-of-build check."""
    app.add_directive("tracker-options", TrackerOptions)
    app.add_directive("tracker-kinds", TrackerKinds)
    app.add_directive("cli-command", CliCommand)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-check-consistency", check_everything_described)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
