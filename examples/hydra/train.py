"""A training script configured with Hydra; the tracker comes from the config group ``tracker``.

    .venv/bin/python examples/hydra/train.py                                  # TensorBoard
    .venv/bin/python examples/hydra/train.py tracker=wandb tracker.project=x  # W&B (offline)
    .venv/bin/python examples/hydra/train.py -m tracker=tensorboard,trackio   # one run per job

Each job writes its run into Hydra's output directory (``outputs/<date>/<time>/``, or
``multirun/<date>/<time>/<job>/``), which is the run's output path.
"""

from __future__ import annotations

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from noether.core.trackers import create_tracker


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(config: DictConfig) -> float:
    """Fit ``y = 3x`` by gradient descent, logging the loss at every step."""
    output_dir = HydraConfig.get().runtime.output_dir
    tracker = create_tracker(config.tracker, output_dir)
    hyperparameters = OmegaConf.to_container(config, resolve=True)
    assert isinstance(hyperparameters, dict)
    rng = np.random.default_rng(0)
    weight = 0.0
    with tracker:
        tracker.init(run_name=config.run_name, config=hyperparameters)
        for _ in range(config.steps):
            x = rng.normal(size=32)
            error = weight * x - 3.0 * x
            weight -= config.learning_rate * 2 * float(np.mean(error * x))
            tracker.log({"train/loss": float(np.mean(error**2)), "weight": weight})
    for location in tracker.run_locations():
        print(location.describe())
    return weight


if __name__ == "__main__":
    main()
