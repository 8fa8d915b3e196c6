"""Hugging Face Accelerate: :class:`NoetherTracker`, an Accelerate tracker that is a
noether-trackers run.

    from noether.core.trackers.accelerate import NoetherTracker

    tracker = NoetherTracker(cfg.tracker, run_name="glue")   # writes outputs/<run id>
    accelerator = Accelerator(log_with=tracker)
    accelerator.init_trackers("glue", config=vars(args))   # the config becomes the run's
    accelerator.log({"train/loss": loss}, step=step)
    accelerator.end_training()                             # closes the run

Needs ``noether-trackers-core[accelerate]``; nothing else in the core imports this module.
Accelerate calls its trackers on the main process only (``init_trackers``, ``log``), and so
does this tracker itself, as Accelerate's own trackers do (``main_process_only``). The run id
is drawn when the tracker is built, without asking the other processes, which never call: a
run id shared through torch.distributed would leave the main process waiting for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from noether.core.trackers.extras import missing_extra

try:
    from accelerate.tracking import (  # type: ignore[import-untyped]
        GeneralTracker,
        on_main_process,
    )
except ImportError as error:
    raise missing_extra("accelerate", error) from error

from noether.core.trackers.config import create_tracker
from noether.core.trackers.distributed import new_run_id
from noether.core.trackers.tracker import Tracker

_Method = TypeVar("_Method", bound=Callable[..., Any])
#: Accelerate's ``on_main_process`` for methods, typed (accelerate is not).
main_process_method: Callable[[_Method], _Method] = on_main_process


class NoetherTracker(GeneralTracker):  # type: ignore[misc]  # accelerate is untyped
    """Drives a noether-trackers run from ``Accelerator(log_with=...)``.

    ``tracker``: a YAML ``tracker:`` section (mapping, list, None or omegaconf node);
    ``run_name``: the run's name in every backend; ``run_id``: the run's id (give the id of an
    earlier run to continue it; default: a new one); ``save_dir``: the directory that holds
    run directories, the run writing into ``<save_dir>/<run id>``. The run starts with
    ``init_trackers``' config (``store_init_configuration``), or at the first ``log`` when no
    config is given; ``end_training`` closes it ``finished``.
    """

    name = "noether"
    requires_logging_directory = False
    # as Accelerate's own trackers: a call on another process (get_tracker) does nothing
    main_process_only = True

    def __init__(
        self,
        tracker: Any,
        *,
        run_name: str = "accelerate",
        run_id: str | None = None,
        save_dir: str | os.PathLike[str] = "outputs",
    ) -> None:
        super().__init__()
        self.run_name = run_name
        self.run_id = run_id or new_run_id()  # see the module's docstring
        # a config error surfaces here, before training
        self._run = create_tracker(tracker, Path(save_dir) / self.run_id)
        self._started = False

    @property
    def tracker(self) -> Tracker:
        """The run (a :class:`~noether.core.trackers.Tracker`)."""
        return self._run

    def start(self) -> None:
        """Nothing yet: the run starts with its config (``store_init_configuration``)."""

    @main_process_method
    def store_init_configuration(self, values: dict[str, Any]) -> None:
        """Start the run with ``values`` as its config (redacted); later, record them in the
        run's summary under ``config``."""
        if self._started:
            self._run.update_summary({"config": dict(values)})
        else:
            self._begin(dict(values))

    @main_process_method
    def log(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Log ``values`` at ``step`` (None: the step after the last)."""
        if not self._started:
            self._begin(None)
        self._run.log(values, step=step)

    @main_process_method
    def finish(self) -> None:
        """Close the run (``finished``)."""
        if self._started:
            self._run.close()

    def _begin(self, config: dict[str, Any] | None) -> None:
        self._started = True
        self._run.init(run_name=self.run_name, run_id=self.run_id, config=config)
