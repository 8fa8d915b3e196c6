"""``NoetherLogger``: a tiny LightningModule trained on CPU logs through TensorBoard and W&B
(offline), read back from both stores; a failing ``training_step`` ends the run ``failed``;
``LightningCLI`` builds the logger from ``class_path``/``init_args``; Fabric logs through it;
checkpoints go beside the run (issue 14, point 1). Ctrl+C and SIGTERM:
``test_framework_endings.py``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from child_lines import run_job
from lightning.fabric import Fabric
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_models import lightning_regression, regression_data
from wandb_file import WandbRunFile

from noether.core.trackers import TrackerConfigError
from noether.core.trackers.lightning import NoetherLogger, run_status

SECTION = [{"kind": "tensorboard"}, {"kind": "wandb", "project": "lightning", "mode": "offline"}]


def trainer(tmp_path: Path, logger: NoetherLogger, **settings: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "max_epochs": 2, "logger": logger, "log_every_n_steps": 1, "accelerator": "cpu",
        "enable_progress_bar": False, "enable_model_summary": False,
        "default_root_dir": tmp_path, **settings,
    }  # fmt: skip
    return pl.Trainer(**options)


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run_dir / "tensorboard_logs"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def summary_of(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = yaml.safe_load((run_dir / "summary.yaml").read_text())
    return summary


def test_two_epochs_reach_tensorboard_and_wandb(tmp_path: Path) -> None:
    logger = NoetherLogger(SECTION, save_dir=tmp_path / "logs", run_name="tiny")
    trainer(tmp_path, logger, enable_checkpointing=False).fit(
        lightning_regression(), regression_data()
    )
    run_dir = Path(logger.log_dir)
    assert run_dir.parent == tmp_path / "logs" / "noether"  # save_dir/name/version
    assert logger.version == logger.experiment.run.run_id  # type: ignore[union-attr]
    assert tensorboard_steps(run_dir, "train/loss") == list(range(16))  # 8 batches x 2 epochs
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert [row["_step"] for row in stored.history() if "train/loss" in row] == list(range(16))
    assert stored.run.display_name == "tiny"
    assert stored.config()["learning_rate"] == 0.05  # the hyperparameters are the config
    assert stored.exit_code == 0
    assert summary_of(run_dir)["_status"] == "finished"


def test_a_failing_training_step_ends_the_run_failed(tmp_path: Path) -> None:
    def fail() -> None:
        raise RuntimeError("training_step failed on purpose")

    logger = NoetherLogger(SECTION, save_dir=tmp_path / "logs")
    with pytest.raises(RuntimeError, match="on purpose"):
        trainer(tmp_path, logger).fit(lightning_regression(at_step=(5, fail)), regression_data())
    run_dir = Path(logger.log_dir)
    assert summary_of(run_dir)["_status"] == "failed"
    assert tensorboard_steps(run_dir, "train/loss") == list(range(5))
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    assert WandbRunFile.read(wandb_file).exit_code not in (None, 0)


def test_fit_then_test_with_one_logger_is_one_run(tmp_path: Path) -> None:
    class WithTest(type(lightning_regression())):  # type: ignore[misc]
        def test_step(self, batch: Any, batch_index: int) -> None:
            x, y = batch
            self.log("test/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    logger = NoetherLogger(SECTION, save_dir=tmp_path / "logs")
    trainer_ = trainer(tmp_path, logger, enable_checkpointing=False)
    model = WithTest(learning_rate=0.05)
    trainer_.fit(model, regression_data())
    trainer_.test(model, regression_data())  # Lightning finalized the run after fit
    run_dir = Path(logger.log_dir)
    assert [path.name for path in run_dir.parent.iterdir()] == [run_dir.name]
    assert tensorboard_steps(run_dir, "train/loss") == list(range(16))
    assert tensorboard_steps(run_dir, "test/loss") == [16]
    # W&B offline keeps a resumed run in a second offline run of the same id (synced together)
    first, resumed = (
        WandbRunFile.read(path) for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    )
    assert first.run.run_id == resumed.run.run_id == logger.version
    assert [row["global_step"] for row in resumed.history() if "test/loss" in row] == [16]
    assert summary_of(run_dir)["_status"] == "finished"
    assert summary_of(run_dir)["train/loss/last"] > 0  # the summary covers the whole run


def test_checkpoints_go_beside_the_run_and_the_best_is_in_its_summary(tmp_path: Path) -> None:
    logger = NoetherLogger([{"kind": "tensorboard"}], save_dir=tmp_path / "logs")
    checkpoint = ModelCheckpoint(monitor="val/loss", mode="min")
    trainer(tmp_path, logger, callbacks=[checkpoint]).fit(
        lightning_regression(), regression_data(), regression_data()
    )
    run_dir = Path(logger.log_dir)
    # Lightning's layout: save_dir/name/version/checkpoints, as with its own loggers
    [saved] = (run_dir / "checkpoints").glob("*.ckpt")
    assert Path(checkpoint.best_model_path) == saved
    summary = summary_of(run_dir)
    assert summary["checkpoint/best_path"] == str(saved)
    assert summary["checkpoint/best_score"] == pytest.approx(float(checkpoint.best_model_score))
    assert tensorboard_steps(run_dir, "val/loss") == [7, 15]  # after each epoch's last step
    # and the checkpoint restores: training continues from it
    resumed = trainer(tmp_path, NoetherLogger(None, save_dir=tmp_path / "resumed"), max_epochs=3)
    resumed.fit(lightning_regression(), regression_data(), ckpt_path=saved)
    assert resumed.global_step == 24


def test_lightning_cli_builds_the_logger_from_class_path_and_init_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["train.py"])  # LightningCLI reads the real command line too
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"learning_rate": 0.05},
                "trainer": {
                    "max_epochs": 1,
                    "accelerator": "cpu",
                    "log_every_n_steps": 1,
                    "enable_progress_bar": False,
                    "enable_model_summary": False,
                    "enable_checkpointing": False,
                    "logger": {
                        "class_path": "noether.core.trackers.lightning.NoetherLogger",
                        "init_args": {
                            "tracker": [{"kind": "tensorboard"}],
                            "save_dir": str(tmp_path / "logs"),
                            "name": "cli",
                            "run_name": "from-the-cli",
                        },
                    },
                },
            }
        )
    )

    class RegressionData(pl.LightningDataModule):
        def train_dataloader(self) -> Any:
            return regression_data()

    cli = LightningCLI(
        type(lightning_regression()),  # a LightningModule class taking learning_rate
        RegressionData,
        args=["fit", "--config", str(config)],
        save_config_callback=None,
    )
    logger = cli.trainer.logger
    assert isinstance(logger, NoetherLogger)
    run_dir = Path(logger.log_dir)
    assert run_dir.parent == tmp_path / "logs" / "cli"
    assert tensorboard_steps(run_dir, "train/loss") == list(range(8))
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["learning_rate"] == 0.05
    assert summary_of(run_dir)["_status"] == "finished"


def test_fabric_logs_through_the_logger(tmp_path: Path) -> None:
    logger = NoetherLogger(SECTION, save_dir=tmp_path, name="fabric", run_name="fabric")
    fabric = Fabric(accelerator="cpu", loggers=logger)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = fabric.setup(model, optimizer)
    fabric.logger.log_hyperparams({"learning_rate": 0.05})
    for step, (x, y) in enumerate(fabric.setup_dataloaders(regression_data())):
        loss = torch.nn.functional.mse_loss(model(x), y)
        fabric.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        fabric.log_dict({"train/loss": loss.item()}, step=step)
    fabric.logger.finalize("success")

    run_dir = Path(logger.log_dir)
    assert tensorboard_steps(run_dir, "train/loss") == list(range(8))
    [wandb_file] = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    stored = WandbRunFile.read(wandb_file)
    assert stored.config()["learning_rate"] == 0.05 and stored.exit_code == 0
    assert summary_of(run_dir)["_status"] == "finished"


def test_lightnings_statuses_become_run_statuses() -> None:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    assert run_status("success", None) == "finished"
    assert run_status("finished", None) == "finished"  # before a SLURM requeue
    assert run_status("failed", RuntimeError()) == "failed"
    assert run_status("failed", KeyboardInterrupt()) == "interrupted"
    assert run_status("failed", SIGTERMException()) == "terminated"


def test_a_typo_in_the_section_fails_before_the_trainer_is_built() -> None:
    with pytest.raises(TrackerConfigError, match="tensorbord"):
        NoetherLogger([{"kind": "tensorbord"}])
    with pytest.raises(TrackerConfigError, match=r"tracker\[0\]\.mode"):
        NoetherLogger([{"kind": "wandb", "mode": "offlin"}])


def test_a_ddp_job_is_one_run_written_by_rank_zero(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    script = Path(__file__).parent / "support" / "lightning_ddp.py"
    env = {**subprocess_env, "PYTHONPATH": str(script.parent), "MASTER_ADDR": "127.0.0.1"}
    job = run_job([sys.executable, str(script), str(tmp_path)], env, timeout=240)  # both ranks
    assert job.returncode == 0, job.stderr[-3000:]
    done = sorted(line.split()[1:] for line in job.stdout.splitlines() if line.startswith("DONE"))
    assert [rank for rank, _ in done] == ["0", "1"]
    [run_dir] = (tmp_path / "noether").iterdir()  # only rank 0 wrote anything
    assert run_dir.name == done[0][1]  # rank 0's version
    # 32 points, batches of 4, split over two ranks: 4 steps an epoch, logged once
    assert tensorboard_steps(run_dir, "train/loss") == list(range(8))
    assert len(list((run_dir / "tensorboard_logs").glob("events.out.tfevents.*"))) == 1
    assert list((run_dir / "checkpoints").glob("*.ckpt"))  # Lightning's layout, from rank 0
    assert summary_of(run_dir)["_status"] == "finished"
