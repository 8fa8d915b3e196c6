"""The tracker interface: :class:`BaseTracker`, which every backend subclasses, and
:class:`NoopTracker`.

The public methods (``init``, ``log``, ``set_summary``, ``update_summary``, ``flush``,
``close``) belong to the core: they check and normalise what the user passes, number the steps,
keep the run's files and summary, and hand each call to the backends. A backend implements only
the underscore methods (``_init``, ``_log``, ``_set_summary``/``_update_summary``, ``_close``),
which receive normalised values and explicit integer steps.
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
from typing import Any, ClassVar

from noether.core.trackers import distributed, lifecycle
from noether.core.trackers.delivery import DeliveryEngine, DeliveryReport, DeliverySettings
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.redaction import redact
from noether.core.trackers.resume import previous_run
from noether.core.trackers.run_environment import RUN_ENVIRONMENT_KEY, collect_run_environment
from noether.core.trackers.run_files import CONFIG_FILE, to_plain, write_yaml
from noether.core.trackers.run_info import MAX_STEP, RUN_STATUSES, RunInfo, RunStatus
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.summary import SummaryDirections
from noether.core.trackers.values import VALUE_KINDS, Value, normalise_values, value_kind

logger = logging.getLogger("noether.trackers")


class BaseTracker:
    """A tracker: the one object training code logs through.

    Subclasses (backends) set :attr:`supported_values` and :attr:`backend_library`, take their
    options as keyword-only constructor parameters (these are the kind's YAML schema) and
    implement the underscore methods. Use a tracker as a context manager to close it on exit.

    Calls are delivered to the backend on a thread of its own, in order; the training thread
    only checks and normalises the values (see :mod:`noether.core.trackers.delivery`).
    """

    #: Value kinds this backend can show; others are skipped for it with one warning per key.
    supported_values: ClassVar[frozenset[str]] = VALUE_KINDS
    #: Distribution name of the library this backend drives (shown by ``noether-trackers list``).
    backend_library: ClassVar[str | None] = None
    #: Set by replay: the environment the replayed run recorded (``{}``: none), which ``init``
    #: stores instead of this process's.
    _replayed_environment: Any = None

    def __init__(self, *, output_path: str | os.PathLike[str] | None = None) -> None:
        self.output_path = Path(output_path) if output_path is not None else None
        self.run: RunInfo | None = None
        self.status: RunStatus | None = None
        #: What ``close()`` found: what reached each backend (None before close).
        self.delivery_report: DeliveryReport | None = None
        #: Engine limits; ``create_tracker`` sets them, a subclass may override the default.
        self.delivery_settings = DeliverySettings()
        #: False lets the run go on without this backend if its ``_init`` fails (YAML
        #: ``required: false``); True makes that failure stop the run before training.
        self.required = True
        #: Where this tracker was configured (``tracker[1]``), for error messages.
        self.config_path: str | None = None
        #: The YAML section's ``summary:`` rules (``create_tracker`` sets them).
        self.summary_directions = SummaryDirections()
        # Re-entrant: the SIGTERM handler may close the tracker from inside a log() call.
        self._lock = threading.RLock()
        self._closed = False
        self._next_step = 0
        self._engine: DeliveryEngine | None = None
        # The engine of a close() under way, until it returns.
        self._closing: DeliveryEngine | None = None
        self._warned: set[tuple[str, str]] = set()
        # The backends whose _init succeeded (for run_locations).
        self._started: list[BaseTracker] = []

    # ---- what training code calls ------------------------------------------------------------

    def init(
        self,
        *,
        run_name: str,
        run_id: str | None = None,
        stage_name: str | None = None,
        config: Any = None,
        resume_step: int | None = None,
        summary_directions: Mapping[str, str | Sequence[str]] | None = None,
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
        directory's checkout (see
        :mod:`noether.core.trackers.run_environment`). A config with a top-level
        ``run_environment`` key raises ValueError.

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
        directions = SummaryDirections.from_mapping(summary_directions).then(
            self.summary_directions
        )
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
                config=redact(_run_config(config, self, main_process)),
                output_path=self.output_path if main_process else None,
                resumed=previous is not None,
                resume_step=resume_step if previous is not None else None,
                summary_directions=directions,
            )
            if resume_step is not None:
                self._next_step = resume_step
            elif previous is not None and previous.last_step is not None:
                self._next_step = previous.last_step + 1
            if not main_process:
                return  # other ranks check their input like rank 0 and store nothing
            backends = self._backends()
            engine = None
            try:
                # the engine opens (and locks) the journal before anything is written, so that
                # a second process on the same run directory changes nothing there
                if backends:
                    engine = DeliveryEngine(backends, self.run, self.delivery_settings, previous)
                if self.output_path is not None:
                    write_yaml(self.output_path / CONFIG_FILE, self.run.config)
            except BaseException:
                if engine is not None:
                    engine.abandon()
                self.run = None  # not started: init() may be called again
                self._next_step = 0
                raise
            if engine is None:
                return
            self._engine = engine
            failures = engine.start()
            lifecycle.register_open(self)
        self._handle_init_failures(failures)

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log ``data`` (name to value) at ``step``; ``None`` means the step after the last.

        Nested mappings become ``a/b`` names; scalars of Python, numpy or torch (0-d arrays and
        tensors included) become numbers, ``str`` becomes text, and :class:`Image`,
        :class:`Histogram` and :class:`Table` are passed to each backend's native type. A value
        of any other type is warned about once per name and skipped. Returns at once: delivery
        happens off this thread.
        """
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
                engine.submit(("log", values, step, time.time()))

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

    def _submit_summary(self, data: Mapping[str, Any], method: str) -> None:
        values = normalise_values(data, self._warn_unsupported)
        with self._lock:
            if self._engine is None:
                self._accepting(method)
                return
            if values:
                self._engine.submit(("summary", values, time.time()))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every call so far is journaled and taken by every backend, at most
        ``timeout`` seconds (default: the close timeout). True if it was; False if a backend
        is still behind (it keeps going)."""
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

    def __enter__(self) -> BaseTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(status=status_for_exception(exc))

    # ---- what a backend implements -----------------------------------------------------------

    def _init(self, run: RunInfo) -> None:
        """Start the backend's run. Raise to refuse (a configuration error)."""

    def _log(self, values: Mapping[str, Value], step: int) -> None:
        """Write normalised ``values`` at ``step`` (steps may repeat or go backwards)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _log")

    def _set_summary(self, key: str, value: Value) -> None:
        """Store one summary value; by default the same as ``_update_summary({key: value})``."""
        self._update_summary({key: value})

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        """Store ``values`` as the run's summary (later calls override earlier keys)."""

    def _receive_summary(self, values: dict[str, Value]) -> None:
        """Delivery entry point for summary values: one value goes to ``_set_summary``."""
        if len(values) == 1:
            [(key, value)] = values.items()
            self._set_summary(key, value)
        else:
            self._update_summary(values)

    def _close(self, status: RunStatus) -> None:
        """Finish the backend's run; everything must be on disk (or sent) when this returns."""

    def run_location(self) -> RunLocation | None:
        """Where this backend put the run and how a user looks at it, or None (the default:
        it does not say). Called after ``_init`` succeeded, also after ``_close``; it must
        only read what the backend already knows (no I/O that can block)."""
        return None

    # ---- what the run tells its user ----------------------------------------------------------

    def run_locations(self) -> list[RunLocation]:
        """Where every started backend put this run and how to look at it, one entry per
        backend that says (see :meth:`run_location`); empty before ``init`` and without
        tracking. A backend whose ``run_location`` raises is left out with a warning."""
        locations = []
        for backend in self._started:
            try:
                location = backend.run_location()
            except Exception as error:
                self._warn_once(
                    "run_location",
                    type(backend).__name__,
                    f"{type(backend).__name__}.run_location() failed: {error!r}",
                )
                continue
            if location is not None:
                locations.append(location)
        return locations

    # ---- plumbing ------------------------------------------------------------------------------

    def _backends(self) -> Sequence[BaseTracker]:
        """The trackers whose underscore methods receive this tracker's calls."""
        return (self,)

    def _accepting(self, method: str) -> None:
        """Explain a call made while no engine runs: before init (an error), after close (a
        warning), or on a tracker without backends (nothing to do)."""
        if self.run is None and not self._closed:
            raise RuntimeError(f"call init() before {method}()")
        if self._closed:
            self._warn_once("closed", method, f"{method}() after close() is ignored")

    def _handle_init_failures(self, failures: Sequence[tuple[Any, BaseException]]) -> None:
        problems = []
        for worker, error in failures:
            where = worker.backend.config_path or "tracker"
            message = f"{where} ({worker.label}): failed to start: {type(error).__name__}: {error}"
            if worker.backend.required:
                problems.append(message)
            else:
                logger.warning("%s; continuing without it (required: false)", message)
                assert self._engine is not None
                self._engine.detach(worker)
        if problems:
            self.close(status="failed", timeout=self.delivery_settings.close_timeout)
            raise TrackerConfigError(
                [*problems, "set `required: false` on an entry to run without it"]
            )
        if self._engine is not None:
            self._started = [worker.backend for worker in self._engine.workers if worker.started]

    def _receive_log(self, values: dict[str, Value], step: int) -> None:
        """Delivery entry point (on this backend's thread): filter, then ``_log``."""
        accepted = self._supported_subset(values)
        if accepted:
            self._log(accepted, step)

    def _supported_subset(self, values: dict[str, Value]) -> dict[str, Value]:
        """``values`` without those this backend cannot show (warned about once per key)."""
        if self.supported_values >= VALUE_KINDS:
            return values
        accepted = {}
        for key, value in values.items():
            kind = value_kind(value)
            if kind in self.supported_values:
                accepted[key] = value
            else:
                self._warn_once(
                    type(self).__name__,
                    key,
                    f"{type(self).__name__} cannot show {kind} values; skipping '{key}' for it",
                )
        return accepted

    def _warn_unsupported(self, key: str, value: Any) -> None:
        self._warn_once(
            "unsupported",
            key,
            f"cannot log '{key}': values of type {type(value).__name__} are not supported "
            "(use a number, str, Image, Histogram or Table); skipping it",
        )

    def _warn_once(self, topic: str, key: str, message: str) -> None:
        if (topic, key) not in self._warned:
            self._warned.add((topic, key))
            logger.warning(message)


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


def _run_config(config: Any, tracker: BaseTracker, main_process: bool) -> dict[str, Any]:
    """``config`` in plain form with, on the main process of a run that stores anything, the
    run's environment under :data:`RUN_ENVIRONMENT_KEY` (see
    :mod:`noether.core.trackers.run_environment`)."""
    plain = to_plain(config)
    if RUN_ENVIRONMENT_KEY in plain:
        raise ValueError(
            f"init() config key '{RUN_ENVIRONMENT_KEY}' is reserved: the run's environment is "
            "recorded under it; rename that key in your config"
        )
    backends = tracker._backends()
    if not main_process or (tracker.output_path is None and not backends):
        return plain
    environment = tracker._replayed_environment
    if environment is None:
        environment = collect_run_environment(type(backend) for backend in backends)
    if environment != {}:
        plain[RUN_ENVIRONMENT_KEY] = environment
    return plain


class NoopTracker(BaseTracker):
    """A tracker that checks its input like any other and stores nothing (``tracker: null``)."""

    def __init__(self, *, output_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(output_path=None)

    def _backends(self) -> Sequence[BaseTracker]:
        return ()


class FanoutTracker(BaseTracker):
    """Several trackers behind one: every call reaches every one of them (``tracker:`` list)."""

    def __init__(
        self, trackers: Sequence[BaseTracker], *, output_path: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(output_path=output_path)
        self.trackers = list(trackers)

    def _backends(self) -> Sequence[BaseTracker]:
        return self.trackers


def status_for_exception(error: BaseException | None) -> RunStatus:
    """The run status that leaving a ``with`` block with ``error`` means."""
    if error is None:
        return "finished"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, SystemExit) and error.code in (0, None):
        return "finished"
    return "failed"
