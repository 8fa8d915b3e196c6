"""The Hugging Face ``Trainer``, tracked from YAML through ``NoetherCallback``.

    .venv/bin/python examples/frameworks/transformers_train.py [--config CONFIG]

Trains a tiny BERT built from a config (nothing downloaded) for 20 steps on CPU, evaluating
every 10; the run goes to ``outputs/transformers/noether/<run id>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from noether.core.trackers.config import load_config_file
from noether.core.trackers.transformers import NoetherCallback


def examples(count: int) -> list[dict[str, torch.Tensor | int]]:
    ids = torch.randint(0, 50, (count, 8), generator=torch.Generator().manual_seed(0))
    return [{"input_ids": row, "labels": int(row[0] % 2)} for row in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=Path(__file__).with_name("config.yaml"))
    cfg = load_config_file(parser.parse_args().config)

    model = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=32, max_position_embeddings=16)
    )  # fmt: skip
    arguments = TrainingArguments(
        output_dir="outputs/transformers", max_steps=20, logging_steps=1, eval_strategy="steps",
        eval_steps=10, per_device_train_batch_size=8, save_strategy="no", use_cpu=True,
        report_to="none",  # noether-trackers instead
    )  # fmt: skip
    tracking = NoetherCallback(cfg.tracker, run_name="tiny-bert")
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=examples(160),
        eval_dataset=examples(16),
        callbacks=[tracking],
    )
    trainer.train()

    assert tracking.tracker is not None
    for location in tracking.tracker.run_locations():
        print(location.describe())


if __name__ == "__main__":
    main()
