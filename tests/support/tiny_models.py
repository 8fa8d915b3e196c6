"""Tiny models the framework integration tests train on CPU in seconds (issue 14): a
LightningModule fitting ``y = 2x`` and a one-layer BERT built from a config (no download)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset


def regression_data(batch_size: int = 4) -> DataLoader[Any]:
    """32 points of ``y = 2x``: 8 batches of 4."""
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    return DataLoader(TensorDataset(x, 2 * x), batch_size=batch_size)


def lightning_regression(
    learning_rate: float = 0.05, at_step: tuple[int, Callable[[], None]] | None = None
) -> Any:
    """A LightningModule fitting ``y = 2x`` that logs ``train/loss`` every step;
    ``at_step=(n, action)`` runs ``action`` at global step ``n`` (to raise, or signal)."""
    import lightning.pytorch as pl

    class TinyRegression(pl.LightningModule):
        def __init__(self, learning_rate: float) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(1, 1)

        def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
            if at_step is not None and self.global_step == at_step[0]:
                at_step[1]()
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_index: int) -> None:
            x, y = batch
            self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate)

    return TinyRegression(learning_rate)


def tiny_bert() -> Any:
    """A sequence classifier with one 16-wide layer and a 50-token vocabulary."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def token_examples(count: int) -> list[dict[str, Any]]:
    """``count`` examples of 8 random tokens; the label is the first token's parity."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (count, 8), generator=generator)
    return [{"input_ids": row, "labels": int(row[0] % 2)} for row in ids]


def trainer_arguments(output_dir: str, **overrides: Any) -> Any:
    """``TrainingArguments`` for a CPU run of 6 steps logging every step, no report_to."""
    from transformers import TrainingArguments

    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": 6,
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "report_to": "none",
        "use_cpu": True,
        "save_strategy": "no",
        "learning_rate": 1e-3,
        "disable_tqdm": True,
    }
    return TrainingArguments(**{**settings, **overrides})
