"""One output directory holds one run: the reference trainer gives every run a directory of
its own unless the user resumes on purpose (the refusal of a second run id in one directory is
in ``test_resume.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.callbacks import CallbackBase
from noether.core.trackers.distributed import new_run_id
from noether.core.trackers.journal import read_journal
from noether.core.trackers.resume import RunDirectoryInUseError
from noether.core.trackers.trainer import Trainer

CONFIG = {"tracker": {"kind": "tensorboard"}, "model": {"width": 8}}


class LossLogger(CallbackBase):
    def after_step(self, trainer: Trainer, step: int, outputs: Mapping[str, Any]) -> None:
        self.tracker.log(dict(outputs), step=step)


def train(**arguments: Any) -> Trainer:
    trainer = Trainer(CONFIG, run_name="r", callbacks=[LossLogger()], **arguments)
    trainer.fit(lambda step: {"loss": 1.0 / (step + 1)}, epochs=1, steps_per_epoch=3)
    return trainer


def event_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("tensorboard_logs/events.out.tfevents.*"))


def test_without_an_output_path_every_run_gets_its_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first, second = train(), train()
    assert first.run_id != second.run_id
    assert first.output_path == Path("outputs") / first.run_id
    assert second.output_path == Path("outputs") / second.run_id
    for trainer in (first, second):
        inits = [r for r in read_journal(trainer.output_path) if r["op"] == "init"]
        assert [r["run_id"] for r in inits] == [trainer.run_id]
        assert len(event_files(trainer.output_path)) == 1


def test_the_same_run_id_resumes_that_run_in_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    train(run_id="job-7")
    resumed = train(run_id="job-7")  # a job restarted after preemption
    assert resumed.output_path == Path("outputs/job-7")
    assert resumed.tracker.run is not None and resumed.tracker.run.resumed
    inits = [r for r in read_journal(resumed.output_path) if r["op"] == "init"]
    assert [r["run_id"] for r in inits] == ["job-7", "job-7"]
    events = EventAccumulator(
        str(tmp_path / resumed.output_path / "tensorboard_logs"), size_guidance={"scalars": 0}
    )
    events.Reload()
    # the second process logged at the same explicit steps: they continue the same run
    assert len(events.Scalars("loss")) == 6


def test_a_given_output_path_holding_another_run_is_refused_before_training(
    tmp_path: Path,
) -> None:
    train(output_path=tmp_path, run_id="first")
    trainer = Trainer(CONFIG, run_name="r", output_path=tmp_path, run_id="second")
    steps: list[int] = []
    with pytest.raises(RunDirectoryInUseError, match="already holds run 'first'"):
        trainer.fit(lambda step: steps.append(step) or {}, epochs=1, steps_per_epoch=3)
    assert steps == []  # refused before the first step


def test_an_id_that_is_not_a_plain_name_still_names_one_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trainer = train(run_id="../escape")
    assert trainer.output_path.parent == Path("outputs")
    assert (tmp_path / trainer.output_path / "journal.jsonl").is_file()


def test_new_run_ids_sort_by_start_time_and_differ() -> None:
    ids = [new_run_id() for _ in range(100)]
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_id) for run_id in ids)
    assert len(set(ids)) == 100 and sorted(ids)[0][:15] <= ids[-1][:15]
