"""Where a backend put a run, and the command that shows it to the user.

A backend says so by returning a :class:`RunLocation` from
:meth:`~noether.core.trackers.base.BaseTracker.run_location`; the run collects them
(``tracker.run_locations()``) so that a program can tell its user where to look. Commands are
written to run as printed from the current directory on a machine where nothing was activated:
a console script installed beside the running Python is named by its path
(``.venv/bin/tensorboard`` from a repository root), see :func:`installed_command`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLocation:
    """Where one backend put the run and how a user looks at it.

    ``where`` is a path (relative to the current directory when below it) or a URL;
    ``command``, when there is one, is a shell command that runs as printed and does
    ``action`` (``"view it"``, ``"upload it"``).
    """

    backend: str
    where: str
    command: str | None = None
    action: str = "view it"

    def describe(self) -> str:
        """One line for a user: ``tensorboard: DIR; view it: COMMAND``."""
        line = f"{self.backend}: {self.where}"
        return f"{line}; {self.action}: {self.command}" if self.command else line


def installed_command(name: str) -> str:
    """The console script ``name`` as a user can type it here: its path beside the running
    Python when it is installed there (``.venv/bin/wandb`` from the repository root, so the
    virtual environment need not be activated), else the bare name (found on ``PATH``)."""
    script = Path(sys.executable).parent / name
    if not script.is_file():
        return name
    return shown_path(script)


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a user can use it from the current directory: relative when it is below
    it (short and still valid), absolute otherwise."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def shell_command(
    program: str,
    arguments: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
) -> str:
    """A command line for a POSIX shell: ``VAR=value`` prefixes, ``program`` (see
    :func:`installed_command`) and ``arguments``, each quoted only when it needs to be."""
    words = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    words.append(shlex.quote(installed_command(program)))
    words += [shlex.quote(os.fspath(argument)) for argument in arguments]
    return " ".join(words)
