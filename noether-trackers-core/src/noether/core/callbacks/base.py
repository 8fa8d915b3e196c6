"""The base class of training callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from noether.core.trackers.tracker import Tracker


class CallbackBase:
    """A hook into the training loop. Override the methods you need.

    The trainer hands every callback the run's tracker (:meth:`use_tracker`) before training
    starts; log through it with ``self.tracker.log({...})``. Until then it is a started run
    without backends, which checks its input like any other and stores nothing, so a callback
    used outside a trainer does not fail.

    ``trainer`` is the trainer running the loop (the reference trainer is
    :class:`noether.core.trackers.trainer.Trainer`; any trainer may call these hooks).
    """

    #: The run the callback logs through.
    tracker: Tracker

    def __init__(self) -> None:
        self.tracker = _detached_tracker()

    def use_tracker(self, tracker: Tracker) -> None:
        """Log through ``tracker`` from now on (the trainer calls this before training)."""
        self.tracker = tracker

    def before_training(self, trainer: Any) -> None:
        """Called once, after the tracker is initialised and before the first step."""

    def after_step(self, trainer: Any, step: int, outputs: Mapping[str, Any]) -> None:
        """Called after every training step with what the step function returned."""

    def after_epoch(self, trainer: Any, epoch: int) -> None:
        """Called after every epoch (``epoch`` counts from 0)."""

    def after_training(self, trainer: Any) -> None:
        """Called once when training ends normally, before the tracker closes."""


#: The run name and id of the tracker a callback has outside a trainer.
_DETACHED_RUN = "outside-a-trainer"


def _detached_tracker() -> Tracker:
    """A started run without backends for a callback that no trainer has given its tracker."""
    tracker = Tracker()
    # Started, because log() before init() is an error on every run. The run id is given so
    # that init() draws none: under torch.distributed drawing one is a collective call, which
    # a callback built on one rank only would hang on.
    tracker.init(run_name=_DETACHED_RUN, run_id=_DETACHED_RUN)
    return tracker
