"""Exceptions that users of noether-trackers catch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from noether.core.trackers.run_files import JOURNAL_FILE


class TrackerConfigError(ValueError):
    """The ``tracker:`` configuration is wrong; raised before training starts.

    :attr:`problems` holds one line per problem, each starting with the YAML path it is about
    (for example ``tracker[1].flush_secs``).
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"invalid tracker configuration: {self.problems[0]}"
        else:
            message = "invalid tracker configuration:\n" + "\n".join(
                f"  - {problem}" for problem in self.problems
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as it is (a delivery process raises these errors for the training process;
        subclasses take other constructor arguments than ``problems``)."""
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(kind: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """An exception of ``kind`` with ``args`` and attributes ``state``, not constructed anew."""
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class OptionError(ValueError):
    """A plugin's own check of one option failed: raise it from a backend's constructor for
    what the option's type annotation cannot express (an empty experiment name, two options
    that exclude each other).

    The config check reports it under the option's YAML path, e.g.
    ``tracker[1].experiment: must not be empty``, in ``create_tracker``, ``init`` and
    ``noether-trackers validate`` alike. ``option`` is the constructor parameter's name; a
    dotted name (``settings.mode``) points inside a mapping option.

    A plain ``ValueError`` (or ``TypeError``) from a constructor is reported too: under the
    option its message starts with (``"project must not be empty"`` becomes
    ``tracker.project: must not be empty``), else under the entry's path.
    """

    def __init__(self, option: str, message: str) -> None:
        #: The option the error is about (a constructor parameter's name).
        self.option = option
        #: What is wrong with it, without the option's name.
        self.message = message
        super().__init__(f"{option}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with both constructor arguments (a delivery process may raise it)."""
        return (type(self), (self.option, self.message))


class TrackerNotInstalledError(ImportError):
    """A tracker kind or class was asked for whose plugin is not installed."""


class JournalLockedError(TrackerConfigError):
    """Another process, or another tracker of this process, is writing the run in this output
    directory (its journal is locked): ``init()`` refuses to start a second writer there."""

    def __init__(self, run_dir: Path, *, same_process: bool) -> None:
        """The error for ``run_dir``, held by this process or another."""
        #: The output directory another writer holds.
        self.run_dir = run_dir
        if same_process:
            who, then = "another tracker of this process", "close that tracker first"
        else:
            who, then = "another process", "wait until it ends"
        super().__init__(
            [
                f"output_path {run_dir}: {who} is writing a run in this directory "
                f"(its {JOURNAL_FILE} is locked); {then}, or give this run an output path "
                "of its own"
            ]
        )


class RunDirectoryInUseError(TrackerConfigError):
    """The output directory already holds another run (its journal has another run id):
    ``init()`` refuses to mix a second run into it. One output directory holds one run."""

    def __init__(self, run_dir: Path, journaled_run_id: str, run_id: str) -> None:
        """The error for a run ``run_id`` started where ``journaled_run_id`` is journaled."""
        #: The output directory, and the id of the run it holds.
        self.run_dir = run_dir
        self.journaled_run_id = journaled_run_id
        super().__init__(
            [
                f"output_path {run_dir}: it already holds run {journaled_run_id!r} (in its "
                f"{JOURNAL_FILE}), and this run's id is {run_id!r}; one output directory holds "
                "one run: give this run a new output directory, or resume run "
                f"{journaled_run_id!r} by passing run_id={journaled_run_id!r} to init()"
            ]
        )


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name when the message is empty): what
    a one-line problem report shows of an exception from a library."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
