"""Resuming a run: the same run id in the same output path continues the run, in the journal,
the summary and TensorBoard, with no duplicated or missing points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import create_tracker, journal, resume
from noether.core.trackers.cli import main
from noether.core.trackers.journal import read_journal

TENSORBOARD = {"kind": "tensorboard"}


def losses(log_dir: Path) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars("loss")]


def first_run(output: Path, run_id: str = "job-1") -> None:
    tracker = create_tracker(TENSORBOARD, output)
    tracker.init(run_name="resumable", run_id=run_id)
    for step in range(10):
        tracker.log({"loss": float(step)})  # steps 0..9
    tracker.set_summary("note", "first process")
    tracker.close(status="terminated")


def test_rerunning_the_run_id_continues_steps_and_summary(tmp_path: Path) -> None:
    first_run(tmp_path)
    tracker = create_tracker(TENSORBOARD, tmp_path)
    tracker.init(run_name="resumable", run_id="job-1")
    assert tracker.run is not None and tracker.run.resumed
    for loss in (20.0, 21.0):
        tracker.log({"loss": loss})  # continues at steps 10 and 11
    tracker.close()
    assert losses(tmp_path / "tensorboard_logs") == [(s, float(s)) for s in range(10)] + [
        (10, 20.0),
        (11, 21.0),
    ]
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/min"] == 0.0 and summary["loss/last"] == 21.0  # the whole run
    assert summary["note"] == "first process" and summary["_status"] == "finished"
    assert [r["op"] for r in read_journal(tmp_path)].count("init") == 2


def test_resume_step_supersedes_what_was_logged_from_there(tmp_path: Path) -> None:
    first_run(tmp_path)  # logged up to step 9; the last checkpoint was at step 5
    tracker = create_tracker(TENSORBOARD, tmp_path)
    tracker.init(run_name="resumable", run_id="job-1", resume_step=5)
    for step in range(5, 8):
        tracker.log({"loss": 100.0 + step})  # steps 5, 6, 7 again, from the checkpoint
    tracker.close()
    expected = [(s, float(s)) for s in range(5)] + [(s, 100.0 + s) for s in range(5, 8)]
    assert losses(tmp_path / "tensorboard_logs") == expected  # TensorBoard purged 5..9
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/min"] == 0.0 and summary["loss/last"] == 107.0
    assert {"op": "rewind", "step": 5}.items() <= next(
        r for r in read_journal(tmp_path) if r["op"] == "rewind"
    ).items()

    config = tmp_path / "tb.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")
    assert (
        main(["replay", str(tmp_path), "--to", str(config), "--output", str(tmp_path / "again")])
        == 0
    )
    assert losses(tmp_path / "again" / "tensorboard_logs") == expected  # replayed once


@pytest.mark.parametrize("run_id", ["job-2", None])
def test_another_run_id_in_the_same_directory_is_refused(
    tmp_path: Path, run_id: str | None
) -> None:
    first_run(tmp_path)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    tracker = create_tracker(TENSORBOARD, tmp_path)
    with pytest.raises(resume.RunDirectoryInUseError) as refused:
        tracker.init(run_name="other", run_id=run_id)
    message = str(refused.value)
    new_id = "job-2" if run_id else message.split("this run's id is ")[1].split("'")[1]
    assert "already holds run 'job-1'" in message and f"this run's id is '{new_id}'" in message
    assert "new output directory" in message and "run_id='job-1'" in message
    assert str(tmp_path) in message
    # nothing of the other run reached the directory: same files, same bytes
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    # the way out it names works: the tracker can be started again, resuming that run
    tracker.init(run_name="resumable", run_id=refused.value.journaled_run_id)
    assert tracker.run is not None and tracker.run.resumed
    tracker.close()


def test_a_new_run_in_a_new_directory_is_a_new_run(tmp_path: Path) -> None:
    first_run(tmp_path / "first")
    tracker = create_tracker(TENSORBOARD, tmp_path / "second")
    tracker.init(run_name="other", run_id="job-2")
    tracker.log({"loss": 50.0})
    tracker.close()
    assert tracker.run is not None and not tracker.run.resumed
    summary = yaml.safe_load((tmp_path / "second" / "summary.yaml").read_text())
    assert summary == {"loss/min": 50.0, "loss/last": 50.0, "_status": "finished"}


@pytest.mark.parametrize(("resume_step", "error"), [(-1, ValueError), (1.5, TypeError)])
def test_resume_step_is_checked(
    tmp_path: Path, resume_step: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="resume_step"):
        create_tracker(TENSORBOARD, tmp_path).init(run_name="r", resume_step=resume_step)  # type: ignore[arg-type]


def test_a_damaged_journal_resumes_from_what_is_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first_run(tmp_path)
    with (tmp_path / "journal.jsonl").open("a") as stream:
        stream.write("not json\n{}\n")  # damaged lines are skipped, not a reason to start afresh
    tracker = create_tracker(TENSORBOARD, tmp_path)
    tracker.init(run_name="resumable", run_id="job-1")
    tracker.close()
    assert tracker.run is not None and tracker.run.resumed
    assert "skipped 2 unreadable lines" in caplog.text


def test_an_unreadable_journal_starts_the_run_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_run(tmp_path)

    class Unreadable(journal.JournalReader):
        def records(self) -> Iterator[Any]:
            raise PermissionError(13, "Permission denied")  # chmod means nothing to root

    monkeypatch.setattr(resume, "JournalReader", Unreadable)
    tracker = create_tracker(TENSORBOARD, tmp_path)
    tracker.init(run_name="resumable", run_id="job-1")
    tracker.close()
    assert tracker.run is not None and not tracker.run.resumed
    assert "starting it afresh" in caplog.text


def test_a_resume_in_the_same_second_after_the_tenth_event_file_is_read_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TensorBoard reads event files in name order. The file number in the name was not
    zero-padded, so a process's 10th file sorted before its 9th: a run resumed in the same
    second then showed the purged points (found by this suite's own resume test)."""
    import itertools
    import types

    from noether_trackers_tensorboard import event_file

    monkeypatch.setattr(event_file, "_file_numbers", itertools.count(9))
    frozen = types.SimpleNamespace(time=lambda: 1_700_000_000.0)  # one second for both files
    monkeypatch.setattr(event_file, "time", frozen)
    first_run(tmp_path)  # event file number 9
    tracker = create_tracker(TENSORBOARD, tmp_path)
    tracker.init(run_name="resumable", run_id="job-1", resume_step=5)  # file number 10
    tracker.log({"loss": 105.0})
    tracker.close()
    expected = [(s, float(s)) for s in range(5)] + [(5, 105.0)]
    assert losses(tmp_path / "tensorboard_logs") == expected
