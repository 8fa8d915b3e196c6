"""Hugging Face Transformers: :class:`NoetherCallback`, a ``TrainerCallback`` that tracks a
``Trainer``'s run through noether-trackers.

    from noether.core.trackers.transformers import NoetherCallback

    trainer = Trainer(..., args=TrainingArguments(..., report_to="none"),
                      callbacks=[NoetherCallback(cfg.tracker, run_name="glue")])

Needs ``noether-trackers-core[transformers]``; nothing else in the core imports this module.
Transformers' ``report_to`` names come from a table inside transformers
(``INTEGRATION_TO_CALLBACK``) that a third party cannot add to without patching it, so the
callback is passed in ``callbacks``. The run starts at train begin with the
``TrainingArguments`` as its config (redacted), logs every ``on_log`` at the global step
(``loss`` as ``train/loss``, ``eval_loss`` as ``eval/loss``, as Transformers' own trackers
name them) and closes ``finished`` at train end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from noether.core.trackers.extras import missing_extra

try:
    from transformers import TrainerCallback
except ImportError as error:
    raise missing_extra("transformers", error) from error

from noether.core.trackers.config import create_tracker, validate_tracker_section
from noether.core.trackers.distributed import shared_run_id
from noether.core.trackers.run_info import RunStatus
from noether.core.trackers.tracker import Tracker

#: Prefixes Transformers gives a log's keys, and the section they go under.
_SECTIONS = {"eval_": "eval/", "test_": "test/"}


def rewrite_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """``{"eval_loss": .., "loss": ..}`` as ``{"eval/loss": .., "train/loss": ..}``; values
    that are not numbers are left out (Transformers logs a few strings)."""
    rewritten = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        for prefix, section in _SECTIONS.items():
            if key.startswith(prefix):
                rewritten[section + key[len(prefix) :]] = value
                break
        else:
            rewritten[f"train/{key}"] = value
    return rewritten


class NoetherCallback(TrainerCallback):
    """Tracks a ``Trainer`` run through the backends of a YAML ``tracker:`` section.

    ``run_name``: the run's name (default: the ``TrainingArguments``' ``run_name``).
    ``run_id``: continue that run (with ``train(resume_from_checkpoint=...)``: the points
    logged after the checkpoint's step are superseded); default: a new run per ``train()``.
    ``save_dir``: the directory that holds each run's directory (default:
    ``<output_dir>/noether``; a run writes into ``<save_dir>/<run id>``).

    A ``train()`` that raises ends the run ``failed`` (``interrupted`` on Ctrl+C, ``terminated``
    on SIGTERM) when the process ends, or at the next ``train()``, whichever comes first:
    Transformers tells callbacks nothing about exceptions. Logs after ``train()`` (a later
    ``evaluate()``) continue the same run, which then stays open until the process ends or
    :meth:`close` is called.
    """

    def __init__(
        self,
        tracker: Any,
        *,
        run_name: str | None = None,
        run_id: str | None = None,
        save_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        validate_tracker_section(tracker)  # a config error stops here, not later
        self._section = tracker
        self._run_name = run_name
        self._run_id = run_id
        self._save_dir = save_dir
        #: The current run (None before the first ``train()`` or log).
        self.tracker: Tracker | None = None
        self._open = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start a run, the ``TrainingArguments`` its config (redacted)."""
        if self._open:  # the last train() raised: Transformers does not say so otherwise
            self.close("failed")
        # resuming from a checkpoint: its step was logged before it was saved, so the points
        # logged after it (which training now repeats) are the ones superseded
        resume_step = state.global_step + 1 if state.global_step else None
        self._start(args, self._run_id, resume_step=resume_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log what the Trainer logs, at its global step (``evaluate()`` outside ``train()``
        starts the run, or continues the last one)."""
        if not logs:
            return
        if not self._open:
            last = self.tracker.run if self.tracker is not None else None
            self._start(args, last.run_id if last else self._run_id, resume_step=None)
        assert self.tracker is not None
        self.tracker.log(rewrite_logs(logs), step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the run (``finished``)."""
        self.close()

    def _start(self, args: Any, run_id: str | None, *, resume_step: int | None) -> None:
        # The same id in the same directory resumes that run (the core's rule).
        run_id = shared_run_id(run_id)
        root = Path(self._save_dir or Path(args.output_dir) / "noether")
        self.tracker = create_tracker(self._section, root / run_id)
        name = self._run_name or getattr(args, "run_name", None) or "transformers"
        self.tracker.init(
            run_name=str(name), run_id=run_id, config=args.to_dict(), resume_step=resume_step
        )
        self._open = True

    def close(self, status: RunStatus = "finished") -> None:
        """Close the run now, with ``status`` (a run that logs after ``train()`` stays open until
        the process ends, or until this is called)."""
        if self.tracker is not None and self._open:
            self._open = False
            self.tracker.close(status=status)
