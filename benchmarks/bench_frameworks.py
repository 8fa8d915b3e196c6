"""What tracking costs a training loop run by a framework: its own TensorBoard + W&B loggers
against noether-trackers' integration with the same two backends (issue 14).

    .venv/bin/python benchmarks/bench_frameworks.py              # median of 3 (about 8 minutes)
    .venv/bin/python benchmarks/bench_frameworks.py --quick      # fewer steps, one repeat
    .venv/bin/python benchmarks/bench_frameworks.py --framework lightning --repeats 5

For each framework (PyTorch Lightning, the Hugging Face ``Trainer``, Accelerate), the same
training (a CPU MLP, 4 x Linear(256), batch 64, one thread, logging every step) runs in three
modes, each in a fresh process:

- none: no tracking (Lightning ``logger=False``, ``report_to="none"``, no ``log_with``);
- built-in: the framework's own loggers, TensorBoard and W&B (offline): Lightning's
  ``TensorBoardLogger`` + ``WandbLogger``, ``report_to=["tensorboard", "wandb"]``,
  ``log_with=["tensorboard", "wandb"]``;
- noether: ``NoetherLogger`` / ``NoetherCallback`` / ``NoetherTracker`` with a ``tracker:``
  section of ``tensorboard`` and ``wandb`` (offline), default (process) delivery.

What each framework logs is its own: Lightning and Accelerate 10 scalars per step (``log_dict``,
``accelerator.log``), the ``Trainer`` what it logs at ``logging_steps=1`` (loss, grad norm,
learning rate, epoch). The loop time runs from the first training step's start to the end of
training (start-up, where W&B starts, and the loggers' closing excluded); "end" is from then
until the framework's call returns (``fit``, ``train``, ``end_training``), where the loggers
close. Printed per framework: the no-tracking loop time, each tracking mode's loop slowdown
against it and its end time, and the loop-time ratio noether / built-in. Modes alternate (the
order rotating per repeat); each figure is the median of ``--repeats`` processes. Ratios are
between modes of the same run: this machine is noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_logging import SCALARS, isolate
from fresh_processes import Cleanup, run_fresh

FRAMEWORKS = ("lightning", "transformers", "accelerate")
MODES = ("none", "built-in", "noether")
WIDTH, BATCH = 256, 64
#: noether-trackers' section: the same two backends as the frameworks' own loggers.
SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "bench", "mode": "offline"}]


# ---- the child process: one framework in one mode ---------------------------------------------


def mlp() -> Any:
    """4 x Linear(WIDTH) with ReLU; one thread, seeded."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for _ in range(4):
        layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def inputs(steps: int) -> Any:
    import torch

    return torch.randn(steps * BATCH, WIDTH, generator=torch.Generator().manual_seed(0))


def scalars(loss: Any) -> dict[str, Any]:
    """Ten scalars per step, as in ``bench_loop.py``: the loss and nine derived from it."""
    return {name: loss * (index + 1) for index, name in enumerate(SCALARS)}


class Timer:
    """The loop's start (first step) and end (end of training)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.ended: float | None = None

    def step(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def end(self) -> None:
        self.ended = time.perf_counter()

    def result(self, returned: float) -> dict[str, float]:
        assert self.started is not None and self.ended is not None
        return {"loop": self.ended - self.started, "end": returned - self.ended}


def run_lightning(mode: str, steps: int, root: Path) -> dict[str, float]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    timer = Timer()

    class Regression(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = mlp()

        def training_step(self, batch: Any, batch_index: int) -> Any:
            loss = self.model(batch[0]).square().mean()
            self.log_dict(scalars(loss.detach()))
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    class Timing(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            timer.step()

        def on_train_end(self, *args: Any) -> None:
            timer.end()

    logger: Any = False
    if mode == "built-in":
        from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

        logger = [
            TensorBoardLogger(root / "lightning"),
            WandbLogger(project="bench", save_dir=root / "lightning", offline=True),
        ]
    elif mode == "noether":
        from noether.core.trackers.lightning import NoetherLogger

        logger = NoetherLogger(SECTION, save_dir=root / "lightning")
    trainer = pl.Trainer(
        max_steps=steps, logger=logger, log_every_n_steps=1, accelerator="cpu",
        callbacks=[Timing()], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=root,
    )  # fmt: skip
    data = DataLoader(TensorDataset(inputs(steps)), batch_size=BATCH)
    trainer.fit(Regression(), data)
    return timer.result(time.perf_counter())


def run_transformers(mode: str, steps: int, root: Path) -> dict[str, float]:
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    timer = Timer()

    class Regression(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = mlp()

        def forward(self, x: Any) -> dict[str, Any]:
            return {"loss": self.model(x).square().mean()}

    class Timing(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            timer.step()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            timer.end()

    callbacks: list[Any] = []
    report_to: Any = "none"
    if mode == "built-in":
        report_to = ["tensorboard", "wandb"]
    elif mode == "noether":
        from noether.core.trackers.transformers import NoetherCallback

        callbacks.append(NoetherCallback(SECTION))
    arguments = TrainingArguments(
        output_dir=str(root / "transformers"), max_steps=steps, per_device_train_batch_size=BATCH,
        logging_steps=1, report_to=report_to, use_cpu=True, save_strategy="no",
        disable_tqdm=True, learning_rate=0.01, dataloader_num_workers=0,
    )  # fmt: skip
    trainer = Trainer(
        model=Regression(),
        args=arguments,
        train_dataset=[{"x": row} for row in inputs(steps)],
        callbacks=callbacks,
    )
    trainer.callback_handler.callbacks.insert(0, Timing())  # its on_train_end before any close
    trainer.train()
    return timer.result(time.perf_counter())


def run_accelerate(mode: str, steps: int, root: Path) -> dict[str, float]:
    import torch
    from accelerate import Accelerator

    log_with: Any = None
    init_kwargs: dict[str, Any] = {}
    if mode == "built-in":
        log_with = ["tensorboard", "wandb"]
        init_kwargs = {"wandb": {"mode": "offline", "dir": str(root / "accelerate")}}
    elif mode == "noether":
        from noether.core.trackers.accelerate import NoetherTracker

        log_with = NoetherTracker(SECTION, run_name="bench", save_dir=root / "accelerate")
    accelerator = Accelerator(cpu=True, log_with=log_with, project_dir=root / "accelerate")
    accelerator.init_trackers("bench", config={"width": WIDTH}, init_kwargs=init_kwargs)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model, optimizer = accelerator.prepare(model, optimizer)
    batches = inputs(steps).split(BATCH)
    timer = Timer()
    for step, batch in enumerate(batches):
        timer.step()
        loss = model(batch).square().mean()
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        accelerator.log({key: value.item() for key, value in scalars(loss).items()}, step=step)
    timer.end()
    accelerator.end_training()
    return timer.result(time.perf_counter())


RUNS: dict[str, Callable[[str, int, Path], dict[str, float]]] = {
    "lightning": run_lightning,
    "transformers": run_transformers,
    "accelerate": run_accelerate,
}


def run_child(spec: dict[str, Any]) -> dict[str, float]:
    root = Path(spec["root"])
    isolate(root)
    return RUNS[spec["framework"]](spec["mode"], spec["steps"], root)


# ---- the parent -------------------------------------------------------------------------------


def slowdown(seconds: float, base: float) -> str:
    return f"{(seconds / base - 1) * 100:+.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 steps, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="processes per mode (3)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (1000)")
    parser.add_argument("--framework", choices=FRAMEWORKS, action="append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(run_child(json.loads(arguments.child))))
        return
    repeats = arguments.repeats or (1 if arguments.quick else 3)
    steps = arguments.steps or (300 if arguments.quick else 1000)
    frameworks = arguments.framework or list(FRAMEWORKS)
    cleanup = Cleanup()
    cleanup.adopt_orphans()
    print(
        f"{steps} steps of a CPU MLP (4 x Linear({WIDTH}), batch {BATCH}, one thread), logging "
        f"every step; tracking: TensorBoard + W&B offline; median of {repeats} processes"
    )
    print(
        f"\n{'framework':<13} {'no tracking':>12} {'built-in loggers':>24} "
        f"{'noether-trackers':>24} {'loop noether/built-in':>22}"
    )
    for framework in frameworks:
        results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for repeat in range(repeats):
            order = MODES[repeat % 3 :] + MODES[: repeat % 3]
            for mode in order:
                spec = {"framework": framework, "mode": mode, "steps": steps}
                results[mode].append(run_fresh(__file__, spec, cleanup, f"{framework}/{mode}"))
        loop = {mode: statistics.median(r["loop"] for r in results[mode]) for mode in MODES}
        end = {mode: statistics.median(r["end"] for r in results[mode]) for mode in MODES}
        cells = [
            f"{slowdown(loop[mode], loop['none'])} (end {end[mode]:.2f} s)"
            for mode in ("built-in", "noether")
        ]
        print(
            f"{framework:<13} {loop['none']:>10.2f} s {cells[0]:>24} {cells[1]:>24} "
            f"{loop['noether'] / loop['built-in']:>22.2f}"
        )
        sys.stdout.flush()
    print(
        "\nslowdown: the loop's time against the same loop without tracking; end: from the end "
        "of training until the framework's call returned (the loggers closing)"
    )
    print(cleanup.describe())


if __name__ == "__main__":
    main()
