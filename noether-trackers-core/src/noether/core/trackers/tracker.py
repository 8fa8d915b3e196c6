"""The run: :class:`Tracker`, the one object training code logs through.

``create_tracker`` returns a :class:`Tracker`; ``self.tracker`` of every callback is one. It
checks and normalises what the user passes, numbers the steps, keeps the run's files, and hands
each call to the delivery engine, which journals it and delivers it to every backend off the
training thread. No tracking (``tracker: null``), one backend and a fan-out are the same class
holding zero, one or several backends (:class:`~noether.core.trackers.base.BaseTracker`
subclasses, written by plugins).
"""

from __future__ import annotations

import logging
import numbers
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from noether.core.trackers import distributed
from noether.core.trackers._engine import lifecycle
from noether.core.trackers._engine.dispatcher import DeliveryEngine
from noether.core.trackers._engine.process_delivery import (
    DeliveryProcessUnavailable,
    ProcessDelivery,
)
from noether.core.trackers._engine.run_summary import RunSummary
from noether.core.trackers._engine.startup import BackendEntry, labels, settle_failed_starts
from noether.core.trackers._engine.worker import Backend
from noether.core.trackers.delivery import (
    DELIVERY_MODES,
    DeliveryMode,
    DeliveryReport,
    DeliverySettings,
)
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.records import LogRecord, SummaryRecord
from noether.core.trackers.redaction import redact
from noether.core.trackers.resume import previous_run
from noether.core.trackers.run_environment import RUN_ENVIRONMENT_KEY, collect_run_environment
from noether.core.trackers.run_files import CONFIG_FILE, to_plain, write_yaml
from noether.core.trackers.run_info import (
    MAX_STEP,
    RUN_STATUSES,
    RunInfo,
    RunStatus,
    status_for_exception,
)
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.summary import SummaryDirections
from noether.core.trackers.values import normalise_values
from noether.core.trackers.warn_once import WarnOnce

__all__ = ["BackendEntry", "FanoutTracker", "Tracker"]

#: What delivers a run's calls: a delivery process, or threads of this process.
Delivery = ProcessDelivery | DeliveryEngine
logger = logging.getLogger("noether.trackers")

#: The user's summary rules: a :class:`SummaryDirections`, or ``{"min": [...], ...}``.
DirectionsArgument = SummaryDirections | Mapping[str, str | Sequence[str]] | None


class Tracker:
    """A tracked run: what ``create_tracker`` returns and training code logs through.

    It holds the run's backends (``tracker:`` entries; none for ``tracker: null``), given as
    backend objects or as :class:`BackendEntry` (a backend with its YAML path and whether the
    run needs it); a backend that stores nothing (``noop``) is left out. ``output_path`` is the
    run's output directory (``config.yaml``, ``summary.yaml``, the journal); a run without
    backends stores nothing. ``delivery`` sets the engine's limits and ``summary_directions``
    the rules of the YAML section's ``summary:``. Use it as a context manager to close it on
    exit.
    """

    def __init__(
        self,
        backends: Sequence[Backend | BackendEntry] = (),
        *,
        output_path: str | os.PathLike[str] | None = None,
        delivery: DeliverySettings | None = None,
        summary_directions: SummaryDirections | None = None,
    ) -> None:
        entries = [
            entry if isinstance(entry, BackendEntry) else BackendEntry(entry) for entry in backends
        ]
        self._entries = [entry for entry in entries if not entry.backend.stores_nothing]
        #: The run's output directory (None: nothing is stored, as without backends).
        self.output_path = Path(output_path) if output_path is not None and self._entries else None
        #: The delivery engine's limits.
        self.delivery_settings = delivery or DeliverySettings()
        #: The YAML section's ``summary:`` rules (``init`` puts its own first).
        self.summary_directions = summary_directions or SummaryDirections()
        #: The run's information once ``init`` is called (on every rank).
        self.run: RunInfo | None = None
        #: How the run ended (None before ``close``).
        self.status: RunStatus | None = None
        #: What ``close()`` found: what reached each backend (None before close).
        self.delivery_report: DeliveryReport | None = None
        # Re-entrant: the SIGTERM handler may close the run from inside a log() call.
        self._lock = threading.RLock()
        self._closed = False
        self._next_step = 0
        self._engine: Delivery | None = None
        # The engine of a close() under way, until it returns.
        self._closing: Delivery | None = None
        # True in a forked child (a data-loader worker): its copy of the run does nothing.
        self._forked_copy = False
        #: How this run's calls are delivered once ``init`` started it: ``process`` (a delivery
        #: process) or ``thread`` (see ``docs/delivery.md``); None before, and when nothing is
        #: delivered (no backends, a rank other than 0).
        self.delivery_mode: DeliveryMode | None = None
        self._warn_once = WarnOnce()
        # The backends whose start succeeded (for run_locations).
        self._started: list[Backend] = []

    @property
    def backends(self) -> tuple[Backend, ...]:
        """The run's backends, in the order of the ``tracker:`` section."""
        return tuple(entry.backend for entry in self._entries)

    # ---- what training code calls ---------------------------------------------------------------

    def init(
        self,
        *,
        run_name: str,
        run_id: str | None = None,
        stage_name: str | None = None,
        config: Any = None,
        resume_step: int | None = None,
        summary_directions: DirectionsArgument = None,
        run_environment: Mapping[str, Any] | None = None,
    ) -> None:
        """Start the run: write ``config.yaml``, open the journal and start every backend.

        ``config`` (a mapping, dataclass or omegaconf node of hyperparameters) is stored with
        secret-looking keys redacted. Without a ``run_id`` one is chosen (the same on every
        rank of a distributed job; only rank 0 talks to backends). A required backend that
        fails to start raises :class:`TrackerConfigError` (after the others are closed again);
        an optional one is left out with a warning.

        The stored config (``config.yaml``, the journal, every backend) also holds the run's
        environment under the reserved key ``run_environment``: host, Python, platform, the
        versions of noether-trackers and of each backend's library, torch's and CUDA's
        versions and the GPU count when the program has imported torch (it is never imported
        for this; GPU names once the program has initialised CUDA), world size and nodes,
        SLURM/torchrun job ids, and the git commit, branch and dirtiness of the working
        directory's checkout (see :mod:`noether.core.trackers.run_environment`). A config
        with a top-level ``run_environment`` key raises ValueError. ``run_environment`` given
        here is stored instead of this process's (replay passes the one the run recorded;
        ``{}`` stores none).

        Re-running with the run id of a run whose journal is in the output path *resumes* it:
        steps continue after the last one logged and the summary covers the whole run. Give
        ``resume_step`` (the step of the checkpoint training restarts from) when that is
        earlier than the last step logged: the points logged before at steps from it on are
        superseded (see :mod:`noether.core.trackers.resume`).

        ``summary_directions`` (``{"min": ["*perplexity*"], "max": [...], "last": [...]}``,
        glob patterns) says which metrics are best when low or high in the end-of-run summary;
        these rules come before the YAML section's ``summary:`` and the defaults (see
        :mod:`noether.core.trackers.summary`).
        """
        if not isinstance(run_name, str) or not run_name:
            raise TypeError(f"init() needs run_name as a non-empty str; got {run_name!r}")
        if resume_step is not None:
            resume_step = _check_step(resume_step, "init() resume_step")
        directions = _directions(summary_directions).then(self.summary_directions)
        with self._lock:
            if self.run is not None or self._closed:
                raise RuntimeError("init() was already called on this tracker")
            main_process = distributed.is_main_process()
            run_id = distributed.shared_run_id(run_id)
            previous = None
            if main_process and self.output_path is not None and self.delivery_settings.journal:
                previous = previous_run(self.output_path, run_id, resume_step, directions)
            self.run = RunInfo(
                run_name=redact(run_name),  # a URL password in a name is hidden too
                run_id=run_id,
                stage_name=redact(stage_name),
                config=redact(self._run_config(config, main_process, run_environment)),
                output_path=self.output_path if main_process else None,
                resumed=previous is not None,
                resume_step=resume_step if previous is not None else None,
                summary_directions=directions,
            )
            if resume_step is not None:
                self._next_step = resume_step
            elif previous is not None and previous.last_step is not None:
                self._next_step = previous.last_step + 1
            if not main_process or not self._entries:
                return  # other ranks check their input like rank 0 and store nothing
            engine = None
            try:
                # the engine opens (and locks) the journal before anything is written, so that
                # a second process on the same run directory changes nothing there
                engine = self._start_delivery(previous)
                if self.output_path is not None:
                    write_yaml(self.output_path / CONFIG_FILE, self.run.config)
            except BaseException:
                if engine is not None:
                    engine.abandon()
                self.run = None  # not started: init() may be called again
                self._next_step = 0
                self.delivery_mode = None
                raise
            self._engine = engine
            failures = engine.start()
            lifecycle.register_open(self)
        problems = settle_failed_starts(failures, self._entries, engine.detach)
        if problems:
            self.close(status="failed", timeout=self.delivery_settings.close_timeout)
            raise TrackerConfigError(problems)
        self._started = engine.started_backends()

    def _start_delivery(self, previous: RunSummary | None) -> Delivery:
        """The run's delivery, as ``delivery_settings.mode`` asks (a process by default);
        thread delivery, with a warning, where a delivery process cannot be had."""
        assert self.run is not None
        named = list(zip(self.backends, labels(self._entries), strict=True))
        paths = [entry.config_path for entry in self._entries]  # shown by traces
        if (self.delivery_settings.mode or _mode_from_environment()) == "process":
            try:
                delivery = ProcessDelivery(
                    named, self.run, self.delivery_settings, previous, config_paths=paths
                )
                self.delivery_mode = "process"
                return delivery
            except DeliveryProcessUnavailable as error:
                logger.warning(
                    "noether-trackers: run %s uses thread delivery: %s (set `delivery: "
                    "thread` to choose it and silence this)",
                    self.run.display_name,
                    error,
                )
        self.delivery_mode = "thread"
        return DeliveryEngine(named, self.run, self.delivery_settings, previous, config_paths=paths)

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log ``data`` (name to value) at ``step``; ``None`` means the step after the last.

        Nested mappings become ``a/b`` names; scalars of Python, numpy or torch (0-d arrays and
        tensors included) become numbers, ``str`` becomes text, and :class:`Image`,
        :class:`Histogram` and :class:`Table` are passed to each backend's native type. A value
        of any other type is warned about once per name and skipped. Returns at once: delivery
        happens off this thread.
        """
        self._log_at(data, step, None)

    def _log_at(self, data: Mapping[str, Any], step: int | None, wall_time: float | None) -> None:
        """:meth:`log`, with the call's wall time given (replay passes the journaled one);
        None: now."""
        if type(data) is not dict and not isinstance(data, Mapping):
            raise TypeError(f"log() needs a mapping of names to values; got {type(data).__name__}")
        if step is not None and (type(step) is not int or not 0 <= step <= MAX_STEP):
            step = _check_step(step)
        values = normalise_values(data, self._warn_unsupported)
        with self._lock:
            engine = self._engine
            if engine is None:
                self._accepting("log")
                return
            if step is None:
                step = self._next_step
                if step > MAX_STEP:
                    raise ValueError(f"log() step would pass the largest step ({MAX_STEP})")
                self._next_step = step + 1
            elif step >= self._next_step:
                self._next_step = step + 1
            if values:
                engine.submit(
                    LogRecord(step, values, time.time() if wall_time is None else wall_time)
                )

    def set_summary(self, key: str, value: Any) -> None:
        """Set one summary value of the run (shown by backends as the run's summary)."""
        if not isinstance(key, str):
            raise TypeError(f"set_summary() needs a str key; got {type(key).__name__}")
        self._submit_summary({key: value}, "set_summary")

    def update_summary(self, data: Mapping[str, Any]) -> None:
        """Set several summary values of the run at once."""
        if not isinstance(data, Mapping):
            raise TypeError(
                f"update_summary() needs a mapping of names to values; got {type(data).__name__}"
            )
        self._submit_summary(data, "update_summary")

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call so far is journaled and taken and flushed (``_flush``) by every
        backend, at most ``timeout`` seconds (default: the close timeout). True if it was;
        False if a backend is still behind (it keeps going)."""
        engine = self._engine
        if engine is None:
            return True
        limit = self.delivery_settings.close_timeout if timeout is None else timeout
        return engine.flush(limit)

    def close(
        self, timeout: float | None = None, *, status: RunStatus = "finished"
    ) -> DeliveryReport:
        """End the run with ``status``; safe to call twice and before ``init``.

        Sends the end-of-run summary (best and last value of every metric) to every backend,
        closes every backend, syncs the journal and writes ``summary.yaml``, all within
        ``timeout`` seconds (default 30) whatever a backend does. Returns (and keeps in
        :attr:`delivery_report`) what was not delivered, per backend: a report without
        backends when the run had none (no tracking, a rank other than 0, closed before
        ``init``); a later call returns the first one.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"close() status must be one of {RUN_STATUSES}; got {status!r}")
        timeout = self.delivery_settings.close_timeout if timeout is None else timeout
        if self._forked_copy:  # the process that started the run closes it
            return DeliveryReport(status, ())
        with self._lock:
            engine = self._closing
            if not self._closed:
                self._closed = True
                engine, self._engine = self._engine, None
                if engine is None:  # not started, or nothing to deliver to
                    self.status = status if self.run is not None else None
                    self.delivery_report = DeliveryReport(status, ())
                    return self.delivery_report
                self.status = status
                self._closing = engine
            if engine is None:  # closed already
                assert self.delivery_report is not None
                return self.delivery_report
        # A close that finds another under way (SIGTERM arriving while close() waits for a
        # slow backend) makes it hurry and waits for it: the process must not end before the
        # journal and summary are complete.
        self.delivery_report = engine.close(status, timeout)
        self._closing = None
        lifecycle.unregister(self)
        return self.delivery_report

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(status=status_for_exception(exc))

    def run_locations(self) -> list[RunLocation]:
        """Where every started backend put this run and how to look at it, one entry per
        backend that says (its ``run_location``); empty before ``init`` and without
        tracking. A backend whose ``run_location`` raises is left out with a warning."""
        locations = []
        for backend in self._started:
            name = type(backend).__name__
            try:
                location = backend.run_location()
            except Exception as error:
                self._warn_once(("run_location", name), f"{name}.run_location() failed: {error!r}")
                continue
            if location is not None:
                locations.append(location)
        return locations

    # ---- plumbing -------------------------------------------------------------------------------

    def _submit_summary(self, data: Mapping[str, Any], method: str) -> None:
        values = normalise_values(data, self._warn_unsupported)
        with self._lock:
            if self._engine is None:
                self._accepting(method)
                return
            if values:
                self._engine.submit(SummaryRecord(values, time.time()))

    def _accepting(self, method: str) -> None:
        """Explain a call made while no engine runs: before init (an error), after close (a
        warning), or on a run without backends (nothing to do)."""
        if self._forked_copy:
            self._warn_once(
                ("forked", method),
                f"{method}() in a forked process (a data-loader worker?) is ignored: only the "
                "process that started the run logs to it",
            )
            return
        if self.run is None and not self._closed:
            raise RuntimeError(f"call init() before {method}()")
        if self._closed:
            self._warn_once(("closed", method), f"{method}() after close() is ignored")

    def _warn_unsupported(self, key: str, value: Any) -> None:
        self._warn_once(
            ("unsupported", key),
            f"cannot log '{key}': values of type {type(value).__name__} are not supported "
            "(use a number, str, Image, Histogram or Table); skipping it",
        )

    def _run_config(
        self, config: Any, main_process: bool, environment: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """``config`` in plain form with, on the main process of a run that stores anything,
        the run's environment under :data:`RUN_ENVIRONMENT_KEY`."""
        plain = to_plain(config)
        if RUN_ENVIRONMENT_KEY in plain:
            raise ValueError(
                f"init() config key '{RUN_ENVIRONMENT_KEY}' is reserved: the run's environment "
                "is recorded under it; rename that key in your config"
            )
        if not main_process or not self._entries:
            return plain
        if environment is None:
            environment = collect_run_environment(type(backend) for backend in self.backends)
        if environment:
            plain[RUN_ENVIRONMENT_KEY] = dict(environment)
        return plain


#: The environment variable that sets the delivery of runs that do not choose one.
DELIVERY_VARIABLE = "NOETHER_TRACKERS_DELIVERY"


def _mode_from_environment() -> DeliveryMode:
    """The mode :data:`DELIVERY_VARIABLE` sets (``process`` when unset)."""
    value = os.environ.get(DELIVERY_VARIABLE) or "process"
    if value not in DELIVERY_MODES:
        raise ValueError(
            f"{DELIVERY_VARIABLE}={value!r}: expected one of {', '.join(DELIVERY_MODES)}"
        )
    return value


def _leave_alone_in_forked_child() -> None:
    """A forked child (a data-loader worker) holds copies of the parent's open runs: they must
    neither deliver nor close anything (the parent does)."""
    for tracker in lifecycle.forget_open_runs():
        if isinstance(tracker, Tracker):
            tracker._forked_copy = True
            tracker._closed = True
            tracker._engine = tracker._closing = None
            tracker._lock = threading.RLock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_leave_alone_in_forked_child)


class FanoutTracker(Tracker):
    """Several backends behind one run: the name of earlier versions for ``Tracker(trackers)``,
    kept so that code written against them keeps working (``create_tracker`` returns a
    :class:`Tracker` for every ``tracker:`` section)."""

    def __init__(
        self,
        trackers: Sequence[Backend | BackendEntry],
        *,
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(trackers, output_path=output_path)
        #: The backends, as earlier versions named them.
        self.trackers = list(self.backends)


def _directions(given: DirectionsArgument) -> SummaryDirections:
    if isinstance(given, SummaryDirections):
        return given
    return SummaryDirections.from_mapping(given)


def _check_step(step: Any, what: str = "log() step") -> int:
    """Validate an explicit step that is not a plain int in ``0..MAX_STEP``."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"{what} must be an int or None; got {type(step).__name__}")
    value = int(step)
    if value < 0:
        raise ValueError(f"{what} must not be negative; got {value}")
    if value > MAX_STEP:
        raise ValueError(f"{what} must be at most {MAX_STEP} (a signed 64-bit int); got {value}")
    return value
