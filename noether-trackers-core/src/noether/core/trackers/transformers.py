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

from transformers import TrainerCallback

from noether.core.trackers.config import create_tracker
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

    ``run_name``: the run's name (default: the ``TrainingArguments``' ``run_name``);
    ``output_path``: the run's directory (default: ``<output_dir>/noether``).
    """

    def __init__(
        self,
        tracker: Any,
        *,
        run_name: str | None = None,
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._section = tracker
        self._run_name = run_name
        self._output_path = output_path
        #: The run, while training (None before train begin).
        self.tracker: Tracker | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the run, the ``TrainingArguments`` its config."""
        output = self._output_path or Path(args.output_dir) / "noether"
        self.tracker = create_tracker(self._section, output)
        name = self._run_name or getattr(args, "run_name", None) or "transformers"
        self.tracker.init(run_name=str(name), config=args.to_dict())

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Log what the Trainer logs, at its global step."""
        if self.tracker is not None and logs:
            self.tracker.log(rewrite_logs(logs), step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the run (``finished``)."""
        if self.tracker is not None:
            self.tracker.close()
