"""PyTorch Lightning's ``LightningCLI``, with ``NoetherLogger`` chosen in its YAML config.

    .venv/bin/python examples/frameworks/lightning_cli.py fit \
        --config examples/frameworks/lightning_cli.yaml

The config's ``trainer.logger`` is ``class_path: noether.core.trackers.lightning.NoetherLogger``
with the tracker section in ``init_args``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from lightning_train import Regression
from torch.utils.data import DataLoader, TensorDataset


class RegressionData(pl.LightningDataModule):
    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        x = torch.linspace(-1, 1, 64).unsqueeze(1)
        return DataLoader(TensorDataset(x, 2 * x), batch_size=8)


if __name__ == "__main__":
    cli = LightningCLI(Regression, RegressionData, save_config_callback=None)
    for location in cli.trainer.logger.experiment.run_locations():
        print(location.describe())
