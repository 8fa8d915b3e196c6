"""``NoetherCallback``: a tiny model built from a config (no download, no network) trained by
the Hugging Face ``Trainer`` on CPU for a few steps, read back from TensorBoard and W&B offline
(issue 14, point 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
from wandb_file import WandbRunFile

from noether.core.trackers.transformers import NoetherCallback, rewrite_logs

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "hf", "mode": "offline"}]


def examples(count: int) -> list[dict[str, Any]]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (count, 8), generator=generator)
    return [{"input_ids": row, "labels": int(row[0] % 2)} for row in ids]


def test_a_trainer_run_reaches_tensorboard_and_wandb(tmp_path: Path) -> None:
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16,
    )  # fmt: skip
    callback = NoetherCallback(SECTION, run_name="tiny-bert")
    arguments = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        per_device_train_batch_size=4,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=3,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        learning_rate=1e-3,
    )
    Trainer(
        model=BertForSequenceClassification(config),
        args=arguments,
        train_dataset=examples(24),
        eval_dataset=examples(8),
        callbacks=[callback],
    ).train()

    run_dir = tmp_path / "out" / "noether"
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    assert [event.step for event in events.Scalars("train/loss")] == list(range(1, 7))
    assert [event.step for event in events.Scalars("eval/loss")] == [3, 6]
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.run.display_name == "tiny-bert"
    assert stored.config()["learning_rate"] == 1e-3  # the TrainingArguments are the config
    assert stored.exit_code == 0
    assert yaml.safe_load((run_dir / "summary.yaml").read_text())["_status"] == "finished"


def test_logs_are_named_as_transformers_trackers_name_them() -> None:
    assert rewrite_logs({"loss": 1.0, "eval_loss": 2.0, "epoch": 1, "note": "x"}) == {
        "train/loss": 1.0,
        "eval/loss": 2.0,
        "train/epoch": 1,
    }
