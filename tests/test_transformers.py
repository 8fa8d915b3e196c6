"""``NoetherCallback``: a tiny model built from a config (no download, no network) trained by
the Hugging Face ``Trainer`` on CPU for a few steps, read back from TensorBoard and W&B offline
(issue 14, point 2). Errors, Ctrl+C and SIGTERM in a real process:
``test_framework_endings.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_models import tiny_bert, token_examples, trainer_arguments
from transformers import Trainer, TrainerCallback
from wandb_file import WandbRunFile

from noether.core.trackers import TrackerConfigError
from noether.core.trackers.transformers import NoetherCallback, rewrite_logs

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "hf", "mode": "offline"}]


def hf_trainer(callback: NoetherCallback, output: Path, **arguments: Any) -> Trainer:
    return Trainer(
        model=tiny_bert(),
        args=trainer_arguments(str(output), **arguments),
        train_dataset=token_examples(24),
        eval_dataset=token_examples(8),
        callbacks=[callback],
    )


def run_dir_of(callback: NoetherCallback) -> Path:
    assert callback.tracker is not None and callback.tracker.output_path is not None
    return Path(callback.tracker.output_path)


def scalar_steps(run_dir: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def status_of(run_dir: Path) -> str:
    return str(yaml.safe_load((run_dir / "summary.yaml").read_text())["_status"])


def test_a_trainer_run_reaches_tensorboard_and_wandb(tmp_path: Path) -> None:
    callback = NoetherCallback(SECTION, run_name="tiny-bert")
    hf_trainer(callback, tmp_path / "out", eval_strategy="steps", eval_steps=3).train()

    run_dir = run_dir_of(callback)
    assert run_dir.parent == tmp_path / "out" / "noether"  # <output_dir>/noether/<run id>
    assert scalar_steps(run_dir, "train/loss") == list(range(1, 7))  # at the global step
    assert scalar_steps(run_dir, "eval/loss") == [3, 6]
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.run.display_name == "tiny-bert"
    assert stored.config()["learning_rate"] == 1e-3  # the TrainingArguments are the config
    assert [row["global_step"] for row in stored.history() if "eval/loss" in row] == [3, 6]
    assert stored.exit_code == 0
    assert status_of(run_dir) == "finished"


def test_evaluate_after_train_continues_the_same_run(tmp_path: Path) -> None:
    callback = NoetherCallback([{"kind": "tensorboard"}])
    trainer = hf_trainer(callback, tmp_path / "out")
    trainer.train()
    run_dir = run_dir_of(callback)
    assert status_of(run_dir) == "finished"
    trainer.evaluate()
    callback.close()
    assert run_dir_of(callback) == run_dir
    assert scalar_steps(run_dir, "eval/loss") == [6]
    assert scalar_steps(run_dir, "train/loss") == list(range(1, 7))
    assert status_of(run_dir) == "finished"


class FailOnce(TrainerCallback):  # type: ignore[misc]
    """Raises at step 2 of the first ``train()`` only."""

    def __init__(self) -> None:
        self.failed = False

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 2 and not self.failed:
            self.failed = True
            raise RuntimeError("failed on purpose")


def test_a_train_that_raised_is_failed_when_training_starts_again(tmp_path: Path) -> None:
    callback = NoetherCallback([{"kind": "tensorboard"}])
    trainer = hf_trainer(callback, tmp_path / "out")
    trainer.add_callback(FailOnce())
    with pytest.raises(RuntimeError, match="on purpose"):
        trainer.train()
    failed_run = run_dir_of(callback)
    trainer.train()
    assert status_of(failed_run) == "failed"
    assert scalar_steps(failed_run, "train/loss") == [1, 2]
    second_run = run_dir_of(callback)
    assert second_run != failed_run and status_of(second_run) == "finished"


def test_resuming_from_a_checkpoint_with_the_run_id_continues_the_run(tmp_path: Path) -> None:
    output = tmp_path / "out"
    first = NoetherCallback([{"kind": "tensorboard"}], run_id="bert-1")
    hf_trainer(first, output, save_strategy="steps", save_steps=3, max_steps=4).train()
    second = NoetherCallback([{"kind": "tensorboard"}], run_id="bert-1")
    hf_trainer(second, output, max_steps=6).train(
        resume_from_checkpoint=str(output / "checkpoint-3")
    )
    run_dir = run_dir_of(second)
    assert run_dir == run_dir_of(first) == output / "noether" / "bert-1"
    # step 4 of the first part is superseded by step 4 of the second
    assert scalar_steps(run_dir, "train/loss") == list(range(1, 7))
    assert status_of(run_dir) == "finished"


def test_a_typo_in_the_section_fails_before_the_trainer_is_built() -> None:
    with pytest.raises(TrackerConfigError, match="tensorbord"):
        NoetherCallback([{"kind": "tensorbord"}])


def test_logs_are_named_as_transformers_trackers_name_them() -> None:
    assert rewrite_logs({"loss": 1.0, "eval_loss": 2.0, "epoch": 1, "note": "x"}) == {
        "train/loss": 1.0,
        "eval/loss": 2.0,
        "train/epoch": 1,
    }
