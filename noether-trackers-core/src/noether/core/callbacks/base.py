"""The base class of training callbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from noether.core.trackers.base import BaseTracker, NoopTracker

if TYPE_CHECKING:
    from noether.core.trackers.trainer import Trainer


class CallbackBase:
    """A hook into the training loop. Override the methods you need.

    The trainer sets :attr:`tracker` before training starts; log through it with
    ``self.tracker.log({...})``. Until then it is a started :class:`NoopTracker` run, which
    checks its input like any other tracker and stores nothing, so a callback used outside a
    trainer does not fail.
    """

    tracker: BaseTracker

    def __init__(self) -> None:
        self.tracker = _detached_tracker()

    def before_training(self, trainer: Trainer) -> None:
        """Called once, after the tracker is initialised and before the first step."""

    def after_step(self, trainer: Trainer, step: int, outputs: Mapping[str, Any]) -> None:
        """Called after every training step with what the step function returned."""

    def after_epoch(self, trainer: Trainer, epoch: int) -> None:
        """Called after every epoch (``epoch`` counts from 0)."""

    def after_training(self, trainer: Trainer) -> None:
        """Called once when training ends normally, before the tracker closes."""


#: The run name and id of the tracker a callback has outside a trainer.
_DETACHED_RUN = "outside-a-trainer"


def _detached_tracker() -> NoopTracker:
    """A started no-op run for a callback that no trainer has given its tracker yet."""
    tracker = NoopTracker()
    # Started, because log() before init() is an error on every tracker. The run id is given
    # so that init() draws none: under torch.distributed drawing one is a collective call,
    # which a callback built on one rank only would hang on.
    tracker.init(run_name=_DETACHED_RUN, run_id=_DETACHED_RUN)
    return tracker
