"""Exceptions that users of noether-trackers catch."""

from __future__ import annotations

from collections.abc import Sequence


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


class TrackerNotInstalledError(ImportError):
    """A tracker kind or class was asked for whose plugin is not installed."""
