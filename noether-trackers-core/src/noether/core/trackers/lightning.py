"""PyTorch Lightning: :class:`NoetherLogger`, a Lightning logger that is a noether-trackers run.

    from noether.core.trackers.lightning import NoetherLogger

    trainer = Trainer(logger=NoetherLogger(cfg.tracker, run_name="mnist"))

Needs ``noether-trackers-core[lightning]``; nothing else in the core imports this module. The
run starts on the first ``log_hyperparams`` (Lightning's hyperparameters become the run's
config, redacted) or ``log_metrics``; ``log_metrics`` logs at Lightning's global step;
``finalize`` closes the run with the status Lightning reports. Rank-zero behaviour is the
core's (every rank builds the run, only rank 0 talks to backends).
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from noether.core.trackers.extras import missing_extra

try:
    from lightning.pytorch.loggers.logger import Logger
except ImportError as error:
    raise missing_extra("lightning", error) from error

from noether.core.trackers.config import create_tracker, validate_tracker_section
from noether.core.trackers.distributed import new_run_id
from noether.core.trackers.run_info import RunStatus, status_for_exception
from noether.core.trackers.tracker import Tracker


def run_status(status: str, error: BaseException | None) -> RunStatus:
    """The run status for Lightning's ``finalize(status)``, called while ``error`` (if any) is
    being handled.

    Lightning says ``"success"`` (or ``"finished"`` before a SLURM requeue) and ``"failed"`` for
    every exception; the exception tells more: Ctrl+C is ``interrupted``, and the
    ``SIGTERMException`` Lightning raises after a SIGTERM is ``terminated`` (preemption).
    """
    if status in ("success", "finished"):
        return "finished"
    if type(error).__name__ == "SIGTERMException":  # a SystemExit, which would read "finished"
        return "terminated"
    if isinstance(error, KeyboardInterrupt):
        return status_for_exception(error)
    return "failed"


class NoetherLogger(Logger):
    """A Lightning logger that logs through the backends of a YAML ``tracker:`` section.

    ``tracker``: the section (mapping, list, None, or its omegaconf node). The run writes into
    ``save_dir/name/version`` (Lightning's layout; ``version`` defaults to the run id).
    ``run_name`` names the run in every backend (default: ``name``).
    """

    def __init__(
        self,
        tracker: Any,
        *,
        save_dir: str | os.PathLike[str] = "lightning_logs",
        name: str = "noether",
        version: str | None = None,
        run_name: str | None = None,
    ) -> None:
        super().__init__()
        validate_tracker_section(tracker)  # a config error stops here, not later
        self._section = tracker
        self._save_dir = str(save_dir)
        self._name = name
        self._run_name = run_name or name
        self._run_id = version  # the version is the run id
        self._tracker: Tracker | None = None
        self._started = False
        self._config: dict[str, Any] | None = None

    # ---- Lightning's logger properties ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The experiment's name (a directory under :attr:`save_dir`)."""
        return self._name

    @property
    def version(self) -> str:
        """The run's version: its run id (given, or chosen on first use; the run itself starts
        only when Lightning logs, so that its hyperparameters become the run's config)."""
        if self._run_id is None:
            self._run_id = new_run_id()
        return self._run_id

    @property
    def save_dir(self) -> str:
        """Where runs of every experiment go."""
        return self._save_dir

    @property
    def root_dir(self) -> str:
        """``save_dir/name``."""
        return os.path.join(self.save_dir, self.name)

    @property
    def log_dir(self) -> str:
        """``save_dir/name/version``: the run's output path (checkpoints go beside it)."""
        return os.path.join(self.root_dir, self.version)

    @property
    def experiment(self) -> Tracker:
        """The run (a :class:`~noether.core.trackers.Tracker`).

        Lightning touches ``experiment`` in its setup, before it hands over the
        hyperparameters: that only builds the run (a config error surfaces there, before
        training). The run starts when Lightning gives the hyperparameters (its config), at
        Lightning's ``save()`` right after (without hyperparameters), or at the first
        ``log_metrics``, whichever comes first: before the first training step.
        """
        if self._tracker is None:
            self._tracker = create_tracker(self._section, Path(self.log_dir))
        return self._tracker

    # ---- what Lightning calls --------------------------------------------------------------------

    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """Lightning's hyperparameters: the run's config when they come before the run starts
        (Lightning gives them first), else the run's summary under ``hparams``."""
        config = vars(params) if isinstance(params, Namespace) else dict(params)
        if not self._started:
            self._config = config
            self._start()
        else:
            self.experiment.update_summary({"hparams": config})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log ``metrics`` at Lightning's global ``step``."""
        if not self._started:
            self._start()
        self.experiment.log(dict(metrics), step=step)

    def save(self) -> None:
        """Start the run if Lightning gave no hyperparameters (it calls this right after it
        would have); the run itself needs no saving: its backends write as it goes."""
        if not self._started:
            self._start()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record the best checkpoint so far in the run's summary (``checkpoint/best_path`` and
        ``checkpoint/best_score``); the files stay where the callback writes them."""
        best_path = getattr(checkpoint_callback, "best_model_path", "")
        if not self._started or not best_path:
            return
        summary: dict[str, Any] = {"checkpoint/best_path": str(best_path)}
        score = getattr(checkpoint_callback, "best_model_score", None)
        if score is not None:
            summary["checkpoint/best_score"] = float(score)
        self.experiment.update_summary(summary)

    def finalize(self, status: str) -> None:
        """Close the run: ``success`` ends it ``finished``; ``failed`` ends it ``failed``,
        ``interrupted`` (Ctrl+C) or ``terminated`` (SIGTERM), after the exception Lightning is
        handling. Safe to call twice. Lightning finalizes after every ``fit``/``validate``/
        ``test``: a later one that logs continues the same run (same id, same directory)."""
        if self._tracker is not None and self._started:
            self._started = False
            self._tracker.close(status=run_status(status, sys.exc_info()[1]))

    # ---- the run ---------------------------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        if self._tracker is not None and self._tracker.status is not None:
            self._tracker = None  # closed by finalize: the next one resumes the run
        self.experiment.init(run_name=self._run_name, run_id=self.version, config=self._config)
