"""A small reference trainer: the run lifecycle that every real trainer should follow.

It builds the tracker from the config's ``tracker:`` section before anything else (so a bad
config fails before training), initialises it with the run's metadata and hyperparameters,
hands it to every callback, and closes it on every way out, recording how the run ended.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from noether.core.callbacks.base import CallbackBase
from noether.core.trackers.base import BaseTracker, status_for_exception
from noether.core.trackers.config import SECTION, create_tracker
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.run_files import to_plain_value
from noether.core.trackers.run_info import RunStatus

#: A training step: receives the global step number, returns the metrics it produced.
StepFunction = Callable[[int], Mapping[str, Any]]


class Trainer:
    """Runs ``epochs x steps_per_epoch`` steps of a step function with callbacks and a tracker.

    ``config`` is the whole run config (a mapping or omegaconf node); its ``tracker:`` section
    selects the backend(s) and the rest is logged as the run's hyperparameters.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        output_path: str | os.PathLike[str],
        run_name: str,
        run_id: str | None = None,
        stage_name: str | None = None,
        callbacks: Iterable[CallbackBase] = (),
        resume_step: int | None = None,
    ) -> None:
        self.output_path = Path(output_path)
        self.run_name = run_name
        self.run_id = run_id
        self.stage_name = stage_name
        #: The step of the checkpoint a restarted run trains from (see ``BaseTracker.init``).
        self.resume_step = resume_step
        self.callbacks = list(callbacks)
        if SECTION not in config:
            raise TrackerConfigError(
                [f"{SECTION}: missing from the config (write `tracker: null` to disable tracking)"]
            )
        self.tracker: BaseTracker = create_tracker(config[SECTION], self.output_path)
        self.hyperparameters = {
            str(key): to_plain_value(config[key]) for key in config if key != SECTION
        }
        self.status: RunStatus | None = None

    def fit(self, step_function: StepFunction, *, epochs: int, steps_per_epoch: int) -> RunStatus:
        """Train; return ``"finished"``, or re-raise what stopped training after closing."""
        self.tracker.init(
            run_name=self.run_name,
            run_id=self.run_id,
            stage_name=self.stage_name,
            config=self.hyperparameters,
            resume_step=self.resume_step,
        )
        for callback in self.callbacks:
            callback.tracker = self.tracker
        error: BaseException | None = None
        try:
            self._loop(step_function, epochs, steps_per_epoch)
        except BaseException as raised:
            error = raised
            raise
        finally:
            self.status = status_for_exception(error)
            self.tracker.close(status=self.status)
        return self.status

    def _loop(self, step_function: StepFunction, epochs: int, steps_per_epoch: int) -> None:
        for callback in self.callbacks:
            callback.before_training(self)
        step = self.resume_step or 0
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                outputs = step_function(step)
                for callback in self.callbacks:
                    callback.after_step(self, step, outputs)
                step += 1
            for callback in self.callbacks:
                callback.after_epoch(self, epoch)
        for callback in self.callbacks:
            callback.after_training(self)
