"""Starting a run's backends: which failures stop the run and which it goes on without.

This is the one place of the required/optional policy. A backend that fails to start (its
``_init`` raises, or does not return within ``init_timeout``) stops the run before training
when it is *required* (the default), with an error naming where the config set it up; one set
``required: false`` is left out with a warning, and the run goes on with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from noether.core.trackers._engine.worker import Backend

logger = logging.getLogger("noether.trackers")
#: The hint that ends the error of a required backend that failed to start.
OPTIONAL_HINT = "set `required: false` on an entry to run without it"


@dataclass(frozen=True)
class BackendEntry:
    """One backend of a run, as the config set it up."""

    backend: Backend
    #: Where the YAML configured it (``tracker[1]``), for messages; None when built in code.
    config_path: str | None = None
    #: When False, the run goes on without this backend if it fails to start.
    required: bool = True


@dataclass(frozen=True)
class StartFailure:
    """A backend that did not start: its place in the run, its label, and why."""

    index: int
    label: str
    #: ``Type: message`` of the error ``_init`` raised (or the timeout's).
    error: str

    @classmethod
    def of(cls, index: int, label: str, error: BaseException) -> StartFailure:
        """The failure of backend ``index`` that raised ``error``."""
        return cls(index, label, f"{type(error).__name__}: {error}")


def labels(entries: Sequence[BackendEntry]) -> list[str]:
    """Readable, unique names for the backends of one run (their class names, numbered when
    one class is there twice)."""
    names = [type(entry.backend).__name__ for entry in entries]
    return [
        name if names.count(name) == 1 else f"{name}[{index}]" for index, name in enumerate(names)
    ]


def settle_failed_starts(
    failures: Sequence[StartFailure],
    entries: Sequence[BackendEntry],
    detach: Callable[[int], None],
) -> list[str]:
    """Apply the policy to the backends that failed to start: ``detach`` each optional one
    (by its index, with a warning) and return the problems of the required ones (empty: the
    run goes on)."""
    problems = []
    for failure in failures:
        entry = entries[failure.index]
        where = entry.config_path or "tracker"
        message = f"{where} ({failure.label}): failed to start: {failure.error}"
        if entry.required:
            problems.append(message)
        else:
            logger.warning("%s; continuing without it (required: false)", message)
            detach(failure.index)
    return [*problems, OPTIONAL_HINT] if problems else []
