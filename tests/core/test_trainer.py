"""The reference trainer's run lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf
from stored_configs import user_config

import noether.core.trackers.config as config_module
from noether.core.callbacks import CallbackBase
from noether.core.trackers import TrackerConfigError
from noether.core.trackers.trainer import Trainer
from recording_plugins import RecordingTracker, registry_with_test_plugin


@pytest.fixture(autouse=True)
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = registry_with_test_plugin()
    monkeypatch.setattr(config_module, "get_registry", lambda: registry)


class LossLogger(CallbackBase):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def before_training(self, trainer: Trainer) -> None:
        self.seen.append(self.tracker)

    def after_step(self, trainer: Trainer, step: int, outputs: Mapping[str, Any]) -> None:
        self.tracker.log({"loss": outputs["loss"]}, step=step)

    def after_epoch(self, trainer: Trainer, epoch: int) -> None:
        self.tracker.log({"epoch": epoch})


CONFIG = {"tracker": {"kind": "recorder"}, "model": {"width": 8, "api_key": "sk"}}


def test_trainer_initialises_hands_out_and_closes_the_tracker(tmp_path: Path) -> None:
    callback = LossLogger()
    trainer = Trainer(
        OmegaConf.create(CONFIG),
        output_path=tmp_path,
        run_name="r",
        run_id="abc",
        stage_name="train",
        callbacks=[callback],
    )
    status = trainer.fit(lambda step: {"loss": 1.0 / (step + 1)}, epochs=2, steps_per_epoch=3)
    tracker = trainer.tracker
    [backend] = tracker.backends
    assert (
        status == "finished"
        and callback.seen == [tracker]
        and isinstance(backend, RecordingTracker)
    )
    (name, run), *_ = backend.calls
    assert name == "init" and (run.run_name, run.run_id, run.stage_name) == ("r", "abc", "train")
    assert user_config(run.config) == {"model": {"width": 8, "api_key": "***REDACTED***"}}
    assert [step for _, step in backend.logged()] == [0, 1, 2, 3, 3, 4, 5, 6]
    assert backend.calls[-1] == ("close", "finished")
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/min"] == pytest.approx(1 / 6) and summary["_status"] == "finished"
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]["width"] == 8


@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("diverged"), "failed"), (KeyboardInterrupt(), "interrupted")],
)
def test_trainer_closes_the_tracker_on_every_way_out(
    tmp_path: Path, error: BaseException, status: str
) -> None:
    trainer = Trainer(CONFIG, output_path=tmp_path, run_name="r", callbacks=[LossLogger()])

    def step_function(step: int) -> Mapping[str, float]:
        if step == 2:
            raise error
        return {"loss": 1.0}

    with pytest.raises(type(error)):
        trainer.fit(step_function, epochs=1, steps_per_epoch=5)
    assert trainer.status == status
    [backend] = trainer.tracker.backends
    assert backend.calls[-1] == ("close", status)  # type: ignore[attr-defined]
    assert yaml.safe_load((tmp_path / "summary.yaml").read_text())["_status"] == status


def test_a_bad_tracker_config_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(
        TrackerConfigError, match=r"tracker\.nme: unknown option; did you mean 'name'"
    ):
        Trainer({"tracker": {"kind": "recorder", "nme": "x"}}, output_path=tmp_path, run_name="r")
    with pytest.raises(TrackerConfigError, match="tracker: missing"):
        Trainer({"model": {}}, output_path=tmp_path, run_name="r")
    assert list(tmp_path.iterdir()) == []


def test_tracker_null_trains_without_tracking(tmp_path: Path) -> None:
    callback = LossLogger()
    trainer = Trainer({"tracker": None}, output_path=tmp_path, run_name="r", callbacks=[callback])
    assert trainer.fit(lambda step: {"loss": 1.0}, epochs=1, steps_per_epoch=2) == "finished"
    assert callback.tracker is trainer.tracker and callback.tracker.backends == ()
    assert list(tmp_path.iterdir()) == []
