"""BaseTracker's public contract, seen from a recording backend."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from stored_configs import user_config

from noether.core.trackers import Histogram, Image, NoopTracker, Table
from noether.core.trackers.redaction import REDACTED
from recording_plugins import RecordingTracker, ScalarsOnlyTracker


def started(
    tmp_path: Path | None = None, cls: type[RecordingTracker] = RecordingTracker
) -> RecordingTracker:
    tracker = cls(output_path=tmp_path)
    tracker.init(run_name="run", run_id="id1", config={"lr": 0.1})
    return tracker


def test_steps_default_to_the_step_after_the_last_and_may_repeat_or_go_back() -> None:
    tracker = started()
    tracker.log({"a": 1})
    tracker.log({"a": 2})
    tracker.log({"a": 3}, step=10)
    tracker.log({"b": 4}, step=10)
    tracker.log({"eval": 5}, step=4)
    tracker.log({"a": 6})
    tracker.flush()
    assert [step for _, step in tracker.logged()] == [0, 1, 10, 10, 4, 11]


def test_values_are_normalised() -> None:

    class ZeroDimTensor:  # what matters about a 0-d torch tensor: ndim 0 and item()
        ndim = 0

        def item(self) -> float:
            return 2.5

    tracker = started()
    tracker.log(
        {
            "np_float": np.float32(0.5),
            "np_int": np.int64(7),
            "zero_d": np.array(3.0),
            "tensor": ZeroDimTensor(),
            "flag": True,
            "nan": float("nan"),
            "inf": np.inf,
            "text": "hello",
            "nested": {"deeper": {"x": 1}},
        }
    )
    tracker.flush()
    [(values, _)] = tracker.logged()
    assert values["np_float"] == 0.5 and type(values["np_float"]) is float
    assert values["np_int"] == 7 and type(values["np_int"]) is int
    assert values["zero_d"] == 3.0 and values["tensor"] == 2.5 and values["flag"] == 1
    assert math.isnan(values["nan"]) and values["inf"] == math.inf  # type: ignore[arg-type]
    assert values["text"] == "hello" and values["nested/deeper/x"] == 1


def test_unsupported_values_are_warned_once_per_key_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = started()
    with caplog.at_level(logging.WARNING, "noether.trackers"):
        for _ in range(3):
            tracker.log({"ok": 1, "bad": object(), "vector": np.zeros(3)})
    tracker.flush()
    assert [values for values, _ in tracker.logged()] == [{"ok": 1}] * 3
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "'bad'" in warnings[0] and "'vector'" in warnings[1]


def test_a_backend_skips_value_kinds_it_cannot_show(caplog: pytest.LogCaptureFixture) -> None:
    tracker = started(cls=ScalarsOnlyTracker)
    with caplog.at_level(logging.WARNING, "noether.trackers"):
        tracker.log({"loss": 1.0, "note": "text", "img": Image(np.zeros((2, 2)))})
        tracker.log({"loss": 2.0, "note": "text"})
        tracker.flush()  # the warning comes from the backend's delivery thread
    assert [values for values, _ in tracker.logged()] == [{"loss": 1.0}, {"loss": 2.0}]
    assert len(caplog.records) == 2
    assert "cannot show text values; skipping 'note'" in caplog.records[0].getMessage()


@pytest.mark.parametrize("data", [[("a", 1)], "loss", 3.0, None])
def test_non_mapping_data_is_rejected_at_once(data: object) -> None:
    with pytest.raises(TypeError, match="log\\(\\) needs a mapping"):
        started().log(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [1.5, "3", True, np.float64(2.0)])
def test_non_integer_step_is_rejected_at_once(step: object) -> None:
    with pytest.raises(TypeError, match="step must be an int"):
        started().log({"a": 1}, step=step)  # type: ignore[arg-type]


def test_numpy_integer_step_is_accepted_and_negative_rejected() -> None:
    tracker = started()
    tracker.log({"a": 1}, step=np.int64(5))  # type: ignore[arg-type]
    tracker.flush()
    assert tracker.logged()[0][1] == 5 and type(tracker.logged()[0][1]) is int
    with pytest.raises(ValueError, match="negative"):
        tracker.log({"a": 1}, step=-1)


def test_log_before_init_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="call init\\(\\) before log\\(\\)"):
        RecordingTracker().log({"a": 1})


def test_close_is_idempotent_and_safe_before_init(tmp_path: Path) -> None:
    never_started = RecordingTracker(output_path=tmp_path)
    never_started.close()
    never_started.close()
    assert never_started.calls == [] and not (tmp_path / "summary.yaml").exists()

    tracker = started(tmp_path)
    tracker.close()
    tracker.close(status="failed")
    assert [name for name, _ in tracker.calls].count("close") == 1
    assert tracker.status == "finished"


def test_log_after_close_is_ignored_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    tracker = started()
    tracker.close()
    with caplog.at_level(logging.WARNING, "noether.trackers"):
        tracker.log({"a": 1})
        tracker.log({"a": 2})
    assert tracker.logged() == [] and len(caplog.records) == 1


def test_context_manager_records_how_the_run_ended() -> None:
    with started() as tracker:
        pass
    assert tracker.calls[-1] == ("close", "finished")
    with pytest.raises(ZeroDivisionError), started() as failing:
        1 / 0  # noqa: B018
    assert failing.calls[-1] == ("close", "failed")
    with pytest.raises(KeyboardInterrupt), started() as interrupted:
        raise KeyboardInterrupt
    assert interrupted.calls[-1] == ("close", "interrupted")


def test_run_files_hold_redacted_config_and_best_last_summary(tmp_path: Path) -> None:
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(
        run_name="r",
        config={"optim": {"lr": 0.1, "api_key": "sk-123"}, "wandb_token": "t", "max_tokens": 512},
    )
    for step, (loss, acc, lr) in enumerate([(3.0, 0.1, 1.0), (1.0, 0.7, 0.5), (2.0, 0.6, 0.25)]):
        tracker.log({"train/loss": loss, "val/accuracy": acc, "lr": lr}, step=step)
    tracker.log({"train/loss": float("nan")})
    tracker.set_summary("best_epoch", 1)
    tracker.close()

    config = user_config(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert config == {
        "optim": {"lr": 0.1, "api_key": REDACTED},
        "wandb_token": REDACTED,
        "max_tokens": 512,
    }
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["train/loss/min"] == 1.0 and math.isnan(summary["train/loss/last"])
    assert summary["val/accuracy/max"] == 0.7 and summary["val/accuracy/last"] == 0.6
    assert summary["lr/last"] == 0.25 and "lr/min" not in summary and "lr/max" not in summary
    assert summary["best_epoch"] == 1 and summary["_status"] == "finished"
    sent = [args for name, args in tracker.calls if name == "summary"][-1]
    assert sent["train/loss/min"] == 1.0 and sent["best_epoch"] == 1


def test_secret_text_values_are_redacted_before_the_backend() -> None:
    tracker = started()
    tracker.log({"api_key": "sk-live", "keypoint_loss": 0.5})
    tracker.flush()
    assert tracker.logged()[0][0] == {"api_key": REDACTED, "keypoint_loss": 0.5}


def test_media_values_pass_through() -> None:
    tracker = started()
    image, histogram = Image(np.ones((4, 5, 3))), Histogram([1, 2, 2, 3, float("nan")], bins=3)
    table = Table(["a", "b"], [[1, "x"], [2, "y"]])
    tracker.log({"img": image, "hist": histogram, "table": table})
    tracker.flush()
    # the backend runs in the delivery process: it gets the same values, not the same objects
    got = tracker.logged()[0][0]
    assert set(got) == {"img", "hist", "table"}
    assert isinstance(got["img"], Image) and np.array_equal(got["img"].pixels, image.pixels)
    assert isinstance(got["hist"], Histogram)
    assert list(got["hist"].counts) == list(histogram.counts) == [1, 2, 1]
    assert list(got["hist"].edges) == list(histogram.edges) and got["hist"].dropped == 1
    assert (got["table"].columns, got["table"].rows) == (table.columns, table.rows)


def test_noop_tracker_checks_input_and_writes_nothing(tmp_path: Path) -> None:
    tracker = NoopTracker(output_path=tmp_path)
    tracker.init(run_name="r", config={"a": 1})
    tracker.log({"a": 1})
    with pytest.raises(TypeError):
        tracker.log([1])  # type: ignore[arg-type]
    tracker.close()
    assert list(tmp_path.iterdir()) == []


def test_init_twice_is_an_error() -> None:
    tracker = started()
    with pytest.raises(RuntimeError, match="already"):
        tracker.init(run_name="again")


def test_set_summary_reaches_a_backends_set_summary() -> None:
    class SetSummaryTracker(RecordingTracker):
        def _set_summary(self, key: str, value: object) -> None:
            self.calls.append(("set_summary", (key, value)))

    tracker = started(cls=SetSummaryTracker)
    tracker.set_summary("best", 0.5)
    tracker.update_summary({"a": 1, "b": 2})
    tracker.flush()
    assert [call for call in tracker.calls if call[0] in ("set_summary", "summary")] == [
        ("set_summary", ("best", 0.5)),
        ("summary", {"a": 1, "b": 2}),
    ]
    with pytest.raises(TypeError, match="str key"):
        tracker.set_summary(3, 1)  # type: ignore[arg-type]
