"""The backend contract: :class:`BaseTracker`, which every backend subclasses.

All trackers inherit from :class:`BaseTracker`: ``WandBTracker``, ``TrackioTracker``,
``TensorboardTracker`` and every third-party backend. A backend implements only the underscore
methods (``_init``, ``_log``, ``_set_summary``/``_update_summary``, ``_close``), which receive
normalised values and explicit integer steps on a thread of the backend's own; it never sees
threads, fan-out or the failures of other backends. The run that training code holds is
:class:`~noether.core.trackers.tracker.Tracker`, which ``create_tracker`` returns.

Plugin authors import this class (and everything else they need) from
:mod:`noether.core.trackers.plugin`.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from noether.core.trackers.delivery import DeliveryReport
from noether.core.trackers.run_info import RunInfo, RunStatus, status_for_exception
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.tracker import FanoutTracker, Tracker
from noether.core.trackers.values import VALUE_KINDS, Value, value_kind
from noether.core.trackers.warn_once import WarnOnce

__all__ = ["BaseTracker", "FanoutTracker", "NoopTracker", "status_for_exception"]


class BaseTracker:
    """A tracking backend: what a plugin writes.

    Subclasses set :attr:`supported_values` and :attr:`backend_library`, take their options as
    keyword-only constructor parameters (these are the kind's YAML schema) and implement the
    underscore methods. When the run starts, :attr:`run` is set to the run's
    :class:`~noether.core.trackers.run_info.RunInfo` and ``_init`` receives it: the same in a
    fan-out as when alone.

    The public methods (``init``, ``log``, ...) run this backend alone, as earlier versions
    did when the object ``create_tracker`` returned was a ``BaseTracker``: each is the same as
    on ``Tracker([backend], output_path=backend.output_path)``. They are kept for code written
    against those versions; new code uses :class:`~noether.core.trackers.tracker.Tracker`.
    """

    #: Value kinds this backend can show; others are skipped for it with one warning per key.
    supported_values: ClassVar[frozenset[str]] = VALUE_KINDS
    #: Distribution name of the library this backend drives (shown by ``noether-trackers list``).
    backend_library: ClassVar[str | None] = None
    #: True for a backend that stores nothing (``noop``): a run leaves it out, so that a run
    #: of only such backends is no tracking at all (no journal, no files).
    stores_nothing: ClassVar[bool] = False
    #: The plugin API version (``"MAJOR.MINOR"``, see ``PLUGIN_API``) this backend was written
    #: for; ``noether-trackers list`` warns when the installed core cannot serve it. None: not
    #: stated (a plugin written before the plugin API had a version, taken as ``"1.0"``).
    plugin_api: ClassVar[str | None] = None

    def __init__(self, *, output_path: str | os.PathLike[str] | None = None) -> None:
        #: The run's output directory (the ``output_path`` given to ``create_tracker``).
        self.output_path = Path(output_path) if output_path is not None else None
        #: The run this backend tracks, set when it starts (None before).
        self.run: RunInfo | None = None
        self._warned = WarnOnce()
        # The run of the compatibility methods, when this backend is used alone.
        self._alone: Tracker | None = None

    # ---- what a backend implements --------------------------------------------------------------

    def _init(self, run: RunInfo) -> None:
        """Start the backend's run. Raise to refuse (a configuration error)."""

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        """Write normalised ``values`` at ``step`` (steps may repeat or go backwards).

        ``wall_time`` is when the user called ``log()``, in seconds since the epoch (a
        ``time.time()``), not when the call reaches this backend: delivery may lag, a backend
        that fell behind catches up from the journal, and a replayed run keeps the times it
        was logged at. Give it to the backend library as the point's timestamp where it takes
        one. Optional: a ``_log(self, values, step)`` without it (a plugin written before it
        existed) keeps working; the engine passes ``wall_time`` only to a ``_log`` that has a
        ``wall_time`` parameter or ``**kwargs``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement _log")

    def _set_summary(self, key: str, value: Value) -> None:
        """Store one summary value; by default the same as ``_update_summary({key: value})``."""
        self._update_summary({key: value})

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        """Store ``values`` as the run's summary (later calls override earlier keys)."""

    def _close(self, status: RunStatus) -> None:
        """Finish the backend's run; everything must be on disk (or sent) when this returns."""

    def _flush(self) -> None:
        """Make what the backend took so far survive the death of the process it runs in
        (hand buffered writes to the OS, wait for a writer thread). Called when the backend's
        calls run dry and on ``flush()``; optional: the default does nothing, for a backend
        whose calls are kept once they return. After the delivery process dies, a backend
        gets again every call it took after its last ``_flush`` (see ``docs/delivery.md``)."""

    def run_location(self) -> RunLocation | None:
        """Where this backend put the run and how a user looks at it, or None (the default:
        it does not say). Called after ``_init`` succeeded, also after ``_close``; it must
        only read what the backend already knows (no I/O that can block)."""
        return None

    # ---- what a backend may call ----------------------------------------------------------------

    def warn_once(self, key: str, message: str) -> bool:
        """Log ``message`` as a warning the first time this backend passes ``key``, and never
        again for it (e.g. a value it cannot show, at every step). True when it was logged."""
        return self._warned((type(self).__name__, key), message)

    # ---- what the engine calls (on this backend's thread) ---------------------------------------

    def _receive_start(self, run: RunInfo) -> None:
        """Start this backend for ``run``: set :attr:`run`, then ``_init``."""
        self.run = run
        self._init(run)

    def _receive_log(
        self, values: dict[str, Value], step: int, wall_time: float | None = None
    ) -> None:
        """Logged values: those this backend can show go to ``_log``, with ``wall_time`` (when
        the user logged them; None: now) if its ``_log`` takes it."""
        accepted = self._supported_subset(values)
        if accepted:
            log = self._log
            # a dict look-up per call; the signature is inspected once per _log function
            try:
                takes_wall_time = _LOG_TAKES_WALL_TIME[getattr(log, "__func__", log)]
            except (KeyError, TypeError):  # first call (TypeError: an unhashable callable)
                takes_wall_time = _remember_wall_time_parameter(log)
            if takes_wall_time:
                log(accepted, step, wall_time=time.time() if wall_time is None else wall_time)
            else:
                log(accepted, step)  # type: ignore[call-arg]  # a plugin's old-style _log

    def _receive_summary(self, values: dict[str, Value]) -> None:
        """Summary values: one goes to ``_set_summary``, several to ``_update_summary``."""
        if len(values) == 1:
            [(key, value)] = values.items()
            self._set_summary(key, value)
        else:
            self._update_summary(values)

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
                name = type(self).__name__
                self.warn_once(key, f"{name} cannot show {kind} values; skipping '{key}' for it")
        return accepted

    # ---- crossing into the delivery process ------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled to run this backend in the delivery process: its attributes, without
        the run of the compatibility methods (which holds locks and stays here)."""
        state = dict(self.__dict__)
        state["_alone"] = None
        return state

    # ---- this backend alone (kept for code written against earlier versions) --------------------

    def _run_alone(self) -> Tracker:
        if self._alone is None:
            self._alone = Tracker([self], output_path=self.output_path)
        return self._alone

    def init(self, **arguments: Any) -> None:
        """Start a run of this backend alone (see :meth:`Tracker.init`)."""
        alone = self._run_alone()
        alone.init(**arguments)
        self.run = alone.run  # also on ranks other than 0, where this backend never starts

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log to the run of this backend alone (see :meth:`Tracker.log`)."""
        self._run_alone().log(data, step)

    def set_summary(self, key: str, value: Any) -> None:
        """See :meth:`Tracker.set_summary`."""
        self._run_alone().set_summary(key, value)

    def update_summary(self, data: Mapping[str, Any]) -> None:
        """See :meth:`Tracker.update_summary`."""
        self._run_alone().update_summary(data)

    def flush(self, timeout: float | None = None) -> bool:
        """See :meth:`Tracker.flush`."""
        return self._run_alone().flush(timeout)

    def close(
        self, timeout: float | None = None, *, status: RunStatus = "finished"
    ) -> DeliveryReport:
        """See :meth:`Tracker.close`."""
        return self._run_alone().close(timeout, status=status)

    def run_locations(self) -> list[RunLocation]:
        """See :meth:`Tracker.run_locations`."""
        return self._run_alone().run_locations()

    @property
    def status(self) -> RunStatus | None:
        """How the run of this backend alone ended (None before ``close``)."""
        return self._alone.status if self._alone is not None else None

    @property
    def delivery_report(self) -> DeliveryReport | None:
        """What the run of this backend alone delivered (None before ``close``)."""
        return self._alone.delivery_report if self._alone is not None else None

    def __enter__(self) -> BaseTracker:
        return self

    def __exit__(self, *exception: Any) -> None:
        self._run_alone().__exit__(*exception)


class NoopTracker(BaseTracker):
    """No tracking: the ``noop`` kind, the same as ``tracker: null`` (``create_tracker`` gives
    a :class:`~noether.core.trackers.tracker.Tracker` without backends for it). Used alone, it
    checks its input like any other and stores nothing."""

    stores_nothing = True

    def __init__(self, *, output_path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(output_path=None)

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        """Nothing to write."""


#: Per ``_log`` function (a backend class's, or one set on an instance): whether it takes
#: ``wall_time``. Filled on a function's first call, so the signature is inspected once, and a
#: ``_log`` replaced later (a subclass, a patched method) gets its own answer.
_LOG_TAKES_WALL_TIME: dict[Any, bool] = {}


def _remember_wall_time_parameter(log: Callable[..., Any]) -> bool:
    """Whether ``log`` (a bound ``_log``) accepts ``wall_time=``: a parameter of that name that
    can be given by keyword, or ``**kwargs``; remembered in :data:`_LOG_TAKES_WALL_TIME`."""
    try:
        parameters = inspect.signature(log).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): call it the old way
        takes = False
    else:
        takes = any(
            parameter.kind is inspect.Parameter.VAR_KEYWORD
            or (
                parameter.name == "wall_time"
                and parameter.kind
                in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            )
            for parameter in parameters
        )
    # an unhashable callable is not remembered: inspected again next time, still correct
    with contextlib.suppress(TypeError):
        _LOG_TAKES_WALL_TIME[getattr(log, "__func__", log)] = takes
    return takes
