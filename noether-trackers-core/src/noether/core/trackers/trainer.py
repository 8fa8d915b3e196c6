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
from noether.core.trackers import distributed
from noether.core.trackers.config import SECTION, create_tracker
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.run_files import to_plain_value
from noether.core.trackers.run_info import RunStatus, status_for_exception
from noether.core.trackers.safe_names import safe_component
from noether.core.trackers.tracker import Tracker

#: Where runs go when no output path is given: one directory per run id below it.
DEFAULT_OUTPUT_ROOT = Path("outputs")

#: A training step: receives the global step number, returns the metrics it produced.
StepFunction = Callable[[int], Mapping[str, Any]]


class Trainer:
    """Runs ``epochs x steps_per_epoch`` steps of a step function with callbacks and a tracker.

    ``config`` is the whole run config (a mapping or omegaconf node); its ``tracker:`` section
    selects the backend(s) and the rest is logged as the run's hyperparameters.

    One output directory holds one run. Without an ``output_path`` the run writes to
    ``outputs/<run_id>``, so each run gets a directory of its own; a run id is drawn when none
    is given (the same on every rank). Giving the ``run_id`` of an earlier run (with its
    output path, if it was not the default) resumes that run, as a job restarted after
    preemption does; ``resume_step`` says from which step when training restarts from a
    checkpoint.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        output_path: str | os.PathLike[str] | None = None,
        run_name: str,
        run_id: str | None = None,
        stage_name: str | None = None,
        callbacks: Iterable[CallbackBase] = (),
        resume_step: int | None = None,
    ) -> None:
        self.run_id = distributed.shared_run_id(run_id)
        self.output_path = (
            Path(output_path) if output_path is not None else default_output_path(self.run_id)
        )
        self.run_name = run_name
        self.stage_name = stage_name
        #: The step of the checkpoint a restarted run trains from (see ``BaseTracker.init``).
        self.resume_step = resume_step
        self.callbacks = list(callbacks)
        if SECTION not in config:
            raise TrackerConfigError(
                [f"{SECTION}: missing from the config (write `tracker: null` to disable tracking)"]
            )
        self.tracker: Tracker = create_tracker(config[SECTION], self.output_path)
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
            callback.use_tracker(self.tracker)
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


def default_output_path(run_id: str) -> Path:
    """The output directory of run ``run_id`` when the user gives none: ``outputs/<run_id>``
    (the run id is data, so it always names one directory right below ``outputs``)."""
    return DEFAULT_OUTPUT_ROOT / safe_component(run_id)
