"""What a backend is told about the run it tracks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from noether.core.trackers.summary import SummaryDirections

#: How a run ended: passed to every backend's ``_close`` and written to ``summary.yaml``.
RunStatus: TypeAlias = Literal["finished", "failed", "interrupted", "terminated"]
RUN_STATUSES: tuple[RunStatus, ...] = ("finished", "failed", "interrupted", "terminated")
#: The largest step: backends store steps as signed 64-bit integers.
MAX_STEP = 2**63 - 1


@dataclass(frozen=True)
class RunInfo:
    """The run's identity and configuration, as given to ``BaseTracker.init``.

    ``config`` is already plain (dicts, lists, scalars) and redacted.
    """

    run_name: str
    run_id: str
    stage_name: str | None
    config: dict[str, Any]
    output_path: Path | None
    #: True when earlier processes of this run id logged to the same output path (a restart).
    resumed: bool = False
    #: With ``resumed``: the step training restarted from; points logged before at steps at or
    #: after it are superseded (a backend that can should drop them, e.g. TensorBoard purges).
    resume_step: int | None = None
    #: The user's rules for which metrics are best when low or high; ``direction(key)`` gives
    #: a metric's (``min``, ``max`` or ``last``), e.g. for a backend's own run summary.
    summary_directions: SummaryDirections = field(default_factory=SummaryDirections)
    #: True when a new delivery process takes over from one that died: the backend's run
    #: resumes, and the calls it took since its last ``_flush`` come again first (a backend
    #: that stored some of them may skip those; see ``docs/delivery.md``).
    redelivery: bool = False

    @property
    def display_name(self) -> str:
        """``run_name``, or ``run_name/stage_name`` when the run has a stage."""
        return f"{self.run_name}/{self.stage_name}" if self.stage_name else self.run_name


def status_for_exception(error: BaseException | None) -> RunStatus:
    """The run status that leaving a ``with`` block (or a training loop) with ``error`` means."""
    if error is None:
        return "finished"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, SystemExit) and error.code in (0, None):
        return "finished"
    return "failed"
