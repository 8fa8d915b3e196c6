"""``noether-trackers new-plugin NAME``: write a ready third-party tracker plugin distribution.

NAME is the backend's name (``mlflow``); it gives the distribution ``noether-trackers-mlflow``,
its package ``noether_trackers_mlflow``, the kind ``mlflow`` (``--kind`` chooses another) and
the tracker class ``MlflowTracker``. The files come from the template kept beside this module
(``plugin_template/``, shipped in the wheel): ``pyproject.toml`` with the ``noether.trackers``
entry point, a README, the package (``__init__``, the hook implementation in ``plugin.py``, the
tracker class in ``tracker.py`` whose backend methods are stubs that raise
``NotImplementedError`` pointing at the plugin reference) and ``tests/test_conformance.py``,
the conformance kit subclassed. Template files end in ``.tmpl``, ``__package__`` in a path is
the package, and ``$name`` placeholders are filled with :class:`string.Template`.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import string
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: The folder of this package that holds the template.
TEMPLATE = "plugin_template"
#: The suffix of a template file (so the template is no Python module, test or project itself).
TEMPLATE_SUFFIX = ".tmpl"
#: In a template path, the name of the plugin's package.
PACKAGE_PLACEHOLDER = "__package__"
#: Every distribution made by ``new-plugin`` is named this plus the backend name.
DISTRIBUTION_PREFIX = "noether-trackers-"

#: A backend name or kind: lowercase ASCII letters and digits, starting with a letter, in words
#: joined by single ``-`` or ``_``.
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
#: The longest backend name or kind: the generated code then keeps within 100 columns.
MAX_NAME_LENGTH = 24


@dataclass(frozen=True)
class PluginNames:
    """The names of a new plugin, all derived from the backend name."""

    #: The backend name given on the command line (``mlflow``).
    name: str
    #: The YAML kind, the entry point's name (``mlflow``).
    kind: str
    #: The distribution's name and directory (``noether-trackers-mlflow``).
    distribution: str
    #: The import package (``noether_trackers_mlflow``).
    package: str
    #: The tracker class (``MlflowTracker``).
    class_name: str


def plugin_names(name: str, *, kind: str | None = None) -> PluginNames:
    """The names of the plugin for backend ``name`` (and ``kind``, by default ``name``).

    Raises ValueError, naming the input, when ``name`` or ``kind`` is not lowercase ASCII
    letters and digits starting with a letter, in words joined by single ``-`` or ``_``, of at
    most :data:`MAX_NAME_LENGTH` characters, or when ``name`` starts with
    ``noether-trackers``.
    """
    _check_name(name, "plugin name")
    if kind is not None:
        _check_name(kind, "kind")
    words = re.split(r"[-_]", name)
    return PluginNames(
        name=name,
        kind=name if kind is None else kind,
        distribution=DISTRIBUTION_PREFIX + "-".join(words),
        package="noether_trackers_" + "_".join(words),
        class_name="".join(word.capitalize() for word in words) + "Tracker",
    )


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str):
        raise ValueError(f"invalid {what} {name!r}: not a string")
    dashed = name.replace("_", "-")
    prefixed = f"{dashed}-".startswith(DISTRIBUTION_PREFIX)
    if _NAME.fullmatch(name) and not prefixed and len(name) <= MAX_NAME_LENGTH:
        return
    rest = name[len(DISTRIBUTION_PREFIX) :]
    if not name.strip():
        hint = "it is empty"
    elif prefixed:
        example = f", e.g. {rest!r}" if _NAME.fullmatch(rest) else ""
        hint = f"give the backend's name only, without {DISTRIBUTION_PREFIX!r}{example}"
    elif name.lower() != name and _NAME.fullmatch(name.lower()):
        hint = f"use lowercase, e.g. {name.lower()!r}"
    elif name[:1].isdigit():
        hint = "it must start with a letter"
    elif _NAME.fullmatch(name):
        hint = f"it is longer than {MAX_NAME_LENGTH} characters"
    else:
        hint = (
            "use lowercase ASCII letters and digits, starting with a letter, in words joined "
            "by single '-' or '_' (e.g. 'mlflow', 'my-backend')"
        )
    raise ValueError(f"invalid {what} {name!r}: {hint}")


def template_values(names: PluginNames) -> dict[str, str]:
    """The values of the template's placeholders for ``names``."""
    import noether.core.trackers

    return {
        "name": names.name,
        "kind": names.kind,
        "distribution": names.distribution,
        "package": names.package,
        "class_name": names.class_name,
        "plugin_api": getattr(noether.core.trackers, "PLUGIN_API", "1.0"),
    }


def template_files() -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """Every file of the template: its path inside the template (as parts, placeholders and
    suffix kept) and the file, in a stable order."""
    root = resources.files("noether.core.trackers").joinpath(TEMPLATE)
    if not root.is_dir():
        raise FileNotFoundError(f"the plugin template is missing from this installation: {root}")

    def walk(
        folder: Traversable, parts: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], Traversable]]:
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if entry.is_dir():
                if entry.name != "__pycache__":
                    yield from walk(entry, (*parts, entry.name))
            elif entry.name.endswith(TEMPLATE_SUFFIX):
                yield (*parts, entry.name), entry

    yield from walk(root, ())


def render(names: PluginNames) -> dict[str, str]:
    """The new distribution's files: relative POSIX path -> content."""
    values = template_values(names)
    files = {}
    for parts, entry in template_files():
        path = [names.package if part == PACKAGE_PLACEHOLDER else part for part in parts]
        path[-1] = path[-1][: -len(TEMPLATE_SUFFIX)]
        text = entry.read_text(encoding="utf-8")
        try:
            files["/".join(path)] = string.Template(text).substitute(values)
        except (KeyError, ValueError) as error:  # a placeholder the template should not have
            raise RuntimeError(f"plugin template {'/'.join(parts)}: {error!r}") from error
    return files


def write_plugin(name: str, destination: Path, *, kind: str | None = None) -> Path:
    """Write the distribution of a new tracker plugin for backend ``name`` into
    ``destination`` (created if needed); returns the new distribution's directory,
    ``destination / "noether-trackers-<name>"``.

    Raises ValueError for an invalid ``name`` or ``kind`` and FileExistsError when the
    directory exists already (nothing is overwritten). The files appear all at once: they are
    written to a temporary directory beside the target, which is then renamed.
    """
    names = plugin_names(name, kind=kind)
    files = render(names)
    destination = Path(destination)
    target = destination / names.distribution
    if os.path.lexists(target):
        raise FileExistsError(f"{target} exists already; not overwriting it")
    destination.mkdir(parents=True, exist_ok=True)
    staging = destination / f".{names.distribution}.{uuid.uuid4().hex[:12]}.partial"
    staging.mkdir()
    try:
        for relative, content in files.items():
            path = staging.joinpath(*relative.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        if os.path.lexists(target):  # appeared meanwhile: rename would replace an empty one
            raise FileExistsError(f"{target} exists already; not overwriting it")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


# ---- the command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``new-plugin`` to ``parser``."""
    parser.add_argument(
        "name", help="the backend's name, e.g. mlflow: writes noether-trackers-mlflow/"
    )
    parser.add_argument(
        "--dest",
        default=".",
        metavar="DIR",
        help="where to create the distribution's directory (default: the current directory)",
    )
    parser.add_argument("--kind", default=None, help="the YAML kind (default: NAME)")


def run(args: argparse.Namespace) -> int:
    """Write the plugin ``args`` describe and print what was written and what to run next;
    returns the exit status (2 for an invalid name or an existing directory)."""
    try:
        target = write_plugin(args.name, Path(args.dest), kind=args.kind)
    except (ValueError, FileExistsError) as error:
        print(f"noether-trackers new-plugin: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"noether-trackers new-plugin: cannot write the plugin: {error}", file=sys.stderr)
        return 1
    names = plugin_names(args.name, kind=args.kind)
    shown = _shown(target)
    print(f"wrote {shown}/: the plugin for kind '{names.kind}' (class {names.class_name})")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(target).as_posix()}")
    python = shlex.quote(sys.executable)
    print("Every backend method of its tracker raises NotImplementedError until you write it.")
    print("Next: install it (editable, with the conformance kit) and run its kit:")
    print(f"  cd {shlex.quote(shown)}")
    print(f"  {python} -m pip install -e '.[test]'")
    print(f"  {python} -m pytest tests")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m noether.core.trackers.new_plugin NAME``: the same as ``noether-trackers
    new-plugin NAME``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="noether-trackers new-plugin",
        description="Write a ready tracker plugin distribution for a new backend.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
