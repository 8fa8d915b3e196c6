"""Example: a small numpy regression trained by the reference trainer, tracked from YAML.

    python examples/train.py                                    # TensorBoard (default config)
    python examples/train.py --config examples/configs/fanout.yaml  # all three backends

Each run writes to a directory of its own, ``outputs/example/<run id>``, and prints where
every backend put it and how to look at it.

Every metric reaches the tracker through a callback's ``self.tracker.log({...})``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from omegaconf import OmegaConf

from noether.core.callbacks import CallbackBase
from noether.core.trackers import Histogram, Image, Table, TrackerConfigError
from noether.core.trackers.config import load_config_file
from noether.core.trackers.distributed import new_run_id
from noether.core.trackers.safe_names import safe_component
from noether.core.trackers.trainer import Trainer

HERE = Path(__file__).resolve().parent


class LinearRegression:
    """``y = x @ w + b`` fitted by mini-batch gradient descent on synthetic data."""

    def __init__(self, features: int, learning_rate: float, batch_size: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.true_weights = self.rng.normal(size=features)
        self.weights = np.zeros(features)
        self.bias = 0.0
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.x_val, self.y_val = self.batch(512)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        x = self.rng.normal(size=(size, self.true_weights.size))
        y = x @ self.true_weights + 0.5 + 0.1 * self.rng.normal(size=size)
        return x, y

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights + self.bias

    def train_step(self, step: int) -> Mapping[str, Any]:
        x, y = self.batch(self.batch_size)
        error = self.predict(x) - y
        self.weights -= self.learning_rate * 2 * x.T @ error / len(y)
        self.bias -= self.learning_rate * 2 * float(error.mean())
        return {"loss": float(np.mean(error**2))}

    def evaluate(self) -> dict[str, float]:
        error = self.predict(self.x_val) - self.y_val
        within = np.abs(error) < 0.25
        return {"loss": float(np.mean(error**2)), "accuracy": float(within.mean())}


class TrainLossCallback(CallbackBase):
    """Logs the training loss and learning rate every ``every`` steps."""

    def __init__(self, model: LinearRegression, every: int) -> None:
        super().__init__()
        self.model, self.every = model, every

    def after_step(self, trainer: Trainer, step: int, outputs: Mapping[str, Any]) -> None:
        if step % self.every == 0:
            self.tracker.log(
                {"train/loss": outputs["loss"], "lr": self.model.learning_rate}, step=step
            )


class EvaluationCallback(CallbackBase):
    """Evaluates after every epoch: validation metrics, a weight histogram and an image."""

    def __init__(self, model: LinearRegression, steps_per_epoch: int) -> None:
        super().__init__()
        self.model, self.steps_per_epoch = model, steps_per_epoch

    def after_epoch(self, trainer: Trainer, epoch: int) -> None:
        step = (epoch + 1) * self.steps_per_epoch - 1
        metrics = self.model.evaluate()
        error = np.abs(self.model.weights - self.model.true_weights)
        self.tracker.log(
            {
                "val": metrics,
                "epoch": epoch,
                "weights": Histogram(self.model.weights, bins=16),
                "weight_error": Image(np.tile(error / max(error.max(), 1e-9), (8, 1))),
            },
            step=step,
        )

    def after_training(self, trainer: Trainer) -> None:
        rows = [
            [i, round(float(w), 4), round(float(t), 4)]
            for i, (w, t) in enumerate(
                zip(self.model.weights, self.model.true_weights, strict=True)
            )
        ]
        self.tracker.log(
            {
                "weights_table": Table(["index", "learned", "true"], rows),
                "note": "training finished",
            }
        )
        self.tracker.set_summary("final/val_loss", self.model.evaluate()["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "configs" / "tensorboard.yaml"))
    parser.add_argument(
        "--output", help="the run's output directory (default: outputs/example/RUN_ID)"
    )
    parser.add_argument("--run-name", default="example")
    parser.add_argument(
        "--run-id", help="continue the run with this id, e.g. after preemption (default: new run)"
    )
    args = parser.parse_args()

    try:
        user_config = load_config_file(args.config)
    except TrackerConfigError as error:  # its message names the file, line and column
        fail(str(error))
    config = OmegaConf.merge(OmegaConf.load(HERE / "configs" / "hyperparameters.yaml"), user_config)
    train = config.train
    model = LinearRegression(train.features, train.learning_rate, train.batch_size, train.seed)
    # One directory per run: running the example again starts a new run next to this one.
    run_id = args.run_id or new_run_id()
    output = Path(args.output or Path("outputs", "example", safe_component(run_id)))
    try:
        trainer = Trainer(
            config,
            output_path=output,
            run_name=args.run_name,
            run_id=run_id,
            callbacks=[
                TrainLossCallback(model, every=10),
                EvaluationCallback(model, train.steps_per_epoch),
            ],
        )
        status = trainer.fit(
            model.train_step, epochs=train.epochs, steps_per_epoch=train.steps_per_epoch
        )
    except TrackerConfigError as error:  # also a backend refusing its options at init
        fail(f"{args.config}: {error}")
    if not output.exists():  # tracking disabled: no run, no files
        print(f"run '{args.run_name}' (id {run_id}) {status}; tracking is disabled: no files")
        return
    print(f"run '{args.run_name}' (id {run_id}) {status}; output in {output}/")
    for location in trainer.tracker.run_locations():
        print(location.describe())
    print(f"summary: {output / 'summary.yaml'}")


def fail(message: str) -> NoReturn:
    """Stop with ``message`` and exit status 2: a wrong config is the user's to fix, and the
    message names every problem with its YAML path; a traceback would only bury it."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
