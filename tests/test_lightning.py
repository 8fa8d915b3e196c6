"""``NoetherLogger``: a tiny LightningModule trained on CPU logs through TensorBoard and W&B
(offline), read back from both stores; a failing ``training_step`` ends the run ``failed``
(issue 14, point 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset
from wandb_file import WandbRunFile

from noether.core.trackers.lightning import NoetherLogger

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "lightning", "mode": "offline"}]


class TinyRegression(pl.LightningModule):
    """``y = 2x``, one linear layer."""

    def __init__(self, learning_rate: float = 0.05, fail_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        if self.hparams.fail_at is not None and self.global_step == self.hparams.fail_at:
            raise RuntimeError("training_step failed on purpose")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate)


def data() -> DataLoader[Any]:
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    return DataLoader(TensorDataset(x, 2 * x), batch_size=4)


def train(tmp_path: Path, model: TinyRegression) -> NoetherLogger:
    logger = NoetherLogger(SECTION, save_dir=tmp_path / "logs", run_name="tiny")
    trainer = pl.Trainer(
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data())
    return logger


def test_two_epochs_reach_tensorboard_and_wandb(tmp_path: Path) -> None:
    logger = train(tmp_path, TinyRegression())
    run_dir = Path(logger.log_dir)
    assert run_dir.parent == tmp_path / "logs" / "noether"
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == list(range(16))  # 8 batches x 2 epochs, at Lightning's global step
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert [row["_step"] for row in stored.history() if "train/loss" in row] == list(range(16))
    assert stored.config()["learning_rate"] == 0.05  # the hyperparameters are the config
    assert stored.exit_code == 0
    summary = yaml.safe_load((run_dir / "summary.yaml").read_text())
    assert summary["_status"] == "finished"


def test_a_failing_training_step_ends_the_run_failed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="on purpose"):
        train(tmp_path, TinyRegression(fail_at=5))
    [run_dir] = (tmp_path / "logs" / "noether").iterdir()
    summary = yaml.safe_load((run_dir / "summary.yaml").read_text())
    assert summary["_status"] == "failed"
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    assert WandbRunFile.read(wandb_file).exit_code not in (None, 0)
