"""What a training process and its delivery process say to each other (pickled by
:mod:`.wire`), in the order of a run:

training process                          delivery process
``Open`` (backends, run, settings)   ->   builds the engine, opens (locks) the journal
                                     <-   ``Opened`` (or the error that stopped it)
``Start``                            ->   starts every backend
                                     <-   ``Started`` (failures, backends' state)
``Calls`` ... ``Detach`` ``Flush``   ->   journal and deliver; ``Flushed`` answers a flush
``Close``                            ->   close the run
                                     <-   ``Closed`` (the delivery report), then it exits

``LogLine`` carries a log record of the delivery process to the training process's logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from noether.core.trackers._engine.dispatcher import CatchUp
from noether.core.trackers._engine.run_summary import RunSummary
from noether.core.trackers._engine.startup import StartFailure
from noether.core.trackers.delivery import DeliveryReport, DeliverySettings
from noether.core.trackers.records import LogRecord, SummaryRecord
from noether.core.trackers.run_info import RunInfo, RunStatus

#: A backend's attributes that could be pickled, to update its copy in the training process.
BackendState = dict[str, Any]


@dataclass
class Open:
    """Build the run's delivery: every backend pickled on its own (one that cannot be
    unpickled here fails to start, alone), with its label."""

    backends: list[bytes]
    labels: list[str]
    run: RunInfo
    settings: DeliverySettings
    previous: RunSummary | None
    #: Set when this process replaces one that died.
    catch_up: CatchUp | None = None
    #: Per backend, where the YAML configured it (``tracker[1]``), for traces; None: unknown.
    config_paths: list[str | None] | None = None


@dataclass
class Opened:
    """The engine is built and holds the journal; or ``error`` stopped it."""

    error: BaseException | None
    #: The journal's byte offset where this process's part of the run begins.
    session_start: int | None = None


@dataclass
class Start:
    """Start every backend."""


@dataclass
class Started:
    """What started: the backends that did not, and every backend's state."""

    failures: list[StartFailure]
    states: list[BackendState]
    session_start: int | None


@dataclass
class Calls:
    """The run's calls numbered ``first`` on (their order in this training process)."""

    first: int
    records: list[LogRecord | SummaryRecord]


@dataclass
class Detach:
    """Stop delivering to backend number ``index`` (it failed to start)."""

    index: int


@dataclass
class Flush:
    """Answer with ``Flushed`` once every call so far is journaled and flushed by every
    backend, or after ``timeout`` seconds."""

    token: int
    timeout: float


@dataclass
class Flushed:
    """The answer to ``Flush``."""

    token: int
    complete: bool
    states: list[BackendState]


@dataclass
class Close:
    """Close the run with ``status`` within ``timeout`` seconds (a second one hurries it)."""

    status: RunStatus
    timeout: float


@dataclass
class Closed:
    """The run is closed; the process exits after this."""

    report: DeliveryReport
    states: list[BackendState]


@dataclass
class LogLine:
    """A log record of the delivery process (``logging.LogRecord``'s attributes)."""

    attributes: dict[str, Any]
