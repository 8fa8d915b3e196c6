"""Accelerate, tracked from YAML through ``NoetherTracker``.

    .venv/bin/python examples/frameworks/accelerate_train.py [--config CONFIG]

Fits ``y = 2x`` for 30 steps; ``accelerator.log`` reaches every backend of the config, and the
run goes to ``outputs/accelerate/<run id>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from accelerate import Accelerator

from noether.core.trackers.accelerate import NoetherTracker
from noether.core.trackers.config import load_config_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=Path(__file__).with_name("config.yaml"))
    cfg = load_config_file(parser.parse_args().config)

    tracking = NoetherTracker(cfg.tracker, run_name="regression", save_dir="outputs/accelerate")
    accelerator = Accelerator(cpu=True, log_with=tracking)
    accelerator.init_trackers("regression", config={"learning_rate": 0.05, "steps": 30})
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = accelerator.prepare(model, optimizer)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    for step in range(30):
        loss = torch.nn.functional.mse_loss(model(x), 2 * x)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        accelerator.log({"train/loss": loss.item()}, step=step)
    accelerator.end_training()  # closes the run

    for location in tracking.tracker.run_locations():
        print(location.describe())


if __name__ == "__main__":
    main()
