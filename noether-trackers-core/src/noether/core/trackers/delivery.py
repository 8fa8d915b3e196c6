"""What a user sets and learns about delivery: :class:`DeliverySettings` (the engine's limits)
and :class:`DeliveryReport` (what reached each backend, returned by ``close()``).

How delivery works is described in ``docs/delivery.md`` and lives in the private engine
(``noether.core.trackers._engine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from noether.core.trackers.run_info import RunStatus

#: Where a run's backends and journal run: ``process`` (a delivery process of the run's own,
#: the default) or ``thread`` (threads of the training process).
DeliveryMode: TypeAlias = Literal["process", "thread"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("process", "thread")


@dataclass(frozen=True)
class BackendReport:
    """What happened to one backend's calls over a run."""

    backend: str
    offered: int
    delivered: int
    failed: int
    undelivered_at_close: int
    first_error: str | None
    #: Calls dropped because the backend fell behind with no journal to spill them to.
    dropped: int = 0

    @property
    def lost(self) -> int:
        """Calls this backend did not take: failed, dropped, or still queued at close."""
        return self.failed + self.dropped + self.undelivered_at_close


@dataclass(frozen=True)
class DeliverySettings:
    """Limits of the delivery engine (all times in seconds)."""

    #: Calls kept in memory per backend; beyond that a backend reads them from the journal.
    queue_capacity: int = 10_000
    #: How long ``init`` waits for every backend's ``_init``.
    init_timeout: float = 120.0
    #: What ``close(timeout=None)`` and ``flush(timeout=None)`` wait at most.
    close_timeout: float = 30.0
    #: Keep the local journal (needs an output path).
    journal: bool = True
    #: How long ``log()`` waits for a dispatcher that makes no progress at all (its journal's
    #: disk hangs) before it drops the call, with ``queue_capacity`` calls already waiting.
    handover_timeout: float = 1.0
    #: ``process`` or ``thread`` (see :data:`DeliveryMode`); None: the YAML section's
    #: ``delivery:``, else ``process``.
    mode: DeliveryMode | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in DELIVERY_MODES:
            raise ValueError(
                f"DeliverySettings mode must be one of {DELIVERY_MODES}; got {self.mode!r}"
            )


@dataclass(frozen=True)
class DeliveryReport:
    """What reached each backend over a run, returned by ``close()``."""

    status: RunStatus
    backends: tuple[BackendReport, ...]
    #: Why the journal stopped being written, if it did (e.g. the disk filled up).
    journal_error: str | None = None
    #: Calls ``log()`` dropped because the dispatcher was stalled for ``handover_timeout``.
    dropped_at_handover: int = 0

    @property
    def complete(self) -> bool:
        """True when every backend took every call."""
        return self.dropped_at_handover == 0 and all(r.lost == 0 for r in self.backends)

    def describe(self) -> str:
        """One line per backend that missed calls, and one for the journal if it failed."""
        lines = []
        for report in self.backends:
            if report.lost:
                parts = [
                    f"{count} {what}"
                    for count, what in (
                        (report.failed, "failed"),
                        (report.dropped, "dropped: it fell behind with no journal to spill to"),
                        (report.undelivered_at_close, "still queued when close timed out"),
                    )
                    if count
                ]
                error = f"; first error: {report.first_error}" if report.first_error else ""
                lines.append(
                    f"{report.backend}: {report.lost} of {report.offered} calls not "
                    f"delivered ({', '.join(parts)}){error}"
                )
        if self.dropped_at_handover:
            lines.append(
                f"{self.dropped_at_handover} calls dropped before delivery: the dispatcher made "
                "no progress (its journal's disk did not answer)"
            )
        if self.journal_error:
            lines.append(f"the journal could not be written: {self.journal_error}")
        return "\n".join(lines)
