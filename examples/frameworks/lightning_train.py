"""PyTorch Lightning, tracked from YAML through ``NoetherLogger``.

    .venv/bin/python examples/frameworks/lightning_train.py [--config CONFIG]

Fits ``y = 2x`` for two epochs; the run goes to ``outputs/lightning/noether/<run id>``
(Lightning's ``save_dir/name/version``), its checkpoints beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from noether.core.trackers.config import load_config_file
from noether.core.trackers.lightning import NoetherLogger


class Regression(pl.LightningModule):
    def __init__(self, learning_rate: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()  # Lightning hands them to the logger: the run's config
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=Path(__file__).with_name("config.yaml"))
    cfg = load_config_file(parser.parse_args().config)

    logger = NoetherLogger(cfg.tracker, save_dir="outputs/lightning", run_name="regression")
    trainer = pl.Trainer(max_epochs=2, logger=logger, log_every_n_steps=1, accelerator="cpu")
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    trainer.fit(Regression(), DataLoader(TensorDataset(x, 2 * x), batch_size=8))

    for location in logger.experiment.run_locations():
        print(location.describe())


if __name__ == "__main__":
    main()
