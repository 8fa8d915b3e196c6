"""Train under a framework and end the way a test asks, in a process of its own (issue 14).

    python framework_endings.py FRAMEWORK ENDING OUTPUT_DIR

FRAMEWORK: ``lightning`` or ``transformers``. ENDING, at global step 3: ``raise`` (an error in
the training step, not caught), ``sigint`` (Ctrl+C: SIGINT to itself) or ``sigterm``
(preemption: SIGTERM to itself). The run is tracked with TensorBoard and W&B offline.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from tiny_models import (
    lightning_regression,
    regression_data,
    tiny_bert,
    token_examples,
    trainer_arguments,
)

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "endings", "mode": "offline"}]
ENDING_STEP = 3


def ending(name: str) -> Callable[[], None]:
    """What happens at :data:`ENDING_STEP`."""

    def fail() -> None:
        raise RuntimeError("training step failed on purpose")

    signals = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM}
    if name == "raise":
        return fail
    return lambda: os.kill(os.getpid(), signals[name])


def train_lightning(output_dir: str, end: Callable[[], None]) -> None:
    import lightning.pytorch as pl

    from noether.core.trackers.lightning import NoetherLogger

    trainer = pl.Trainer(
        max_epochs=2, logger=NoetherLogger(SECTION, save_dir=output_dir), log_every_n_steps=1,
        accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=output_dir,
    )  # fmt: skip
    trainer.fit(lightning_regression(at_step=(ENDING_STEP, end)), regression_data())


def train_transformers(output_dir: str, end: Callable[[], None]) -> None:
    from transformers import Trainer, TrainerCallback

    from noether.core.trackers.transformers import NoetherCallback

    class EndAtStep(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, args: object, state: object, control: object, **_: object) -> None:
            if getattr(state, "global_step", None) == ENDING_STEP:
                end()

    Trainer(
        model=tiny_bert(),
        args=trainer_arguments(output_dir),
        train_dataset=token_examples(24),
        callbacks=[NoetherCallback(SECTION, run_name="endings"), EndAtStep()],
    ).train()


if __name__ == "__main__":
    framework, ending_name, output = sys.argv[1:4]
    trainers = {"lightning": train_lightning, "transformers": train_transformers}
    trainers[framework](output, ending(ending_name))
