"""A callback used outside a trainer logs without failing, as CallbackBase promises."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from noether.core.callbacks import CallbackBase
from noether.core.trackers import create_tracker


class LossCallback(CallbackBase):
    """Logs what it is given, as a callback in a training loop would."""

    def report(self, loss: float, step: int | None = None) -> None:
        self.tracker.log({"loss": loss}, step=step)
        self.tracker.set_summary("best/loss", loss)


def test_every_tracker_call_works_outside_a_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    threads = set(threading.enumerate())
    callback = LossCallback()
    callback.report(0.5)
    callback.report(0.25, step=7)
    callback.tracker.update_summary({"acc": 0.9})
    assert callback.tracker.flush() is True
    callback.tracker.close()
    callback.report(0.1)  # after close: ignored with a warning, as on any tracker
    # stores nothing: no file, no thread
    assert list(tmp_path.iterdir()) == []
    assert set(threading.enumerate()) == threads


def test_the_default_tracker_checks_its_input_like_any_other() -> None:
    tracker = CallbackBase().tracker
    not_a_mapping: Any = [("loss", 1.0)]
    with pytest.raises(TypeError, match="mapping"):
        tracker.log(not_a_mapping)
    with pytest.raises(ValueError, match="negative"):
        tracker.log({"loss": 1.0}, step=-1)
    bad_key: Any = 3
    with pytest.raises(TypeError, match="str key"):
        tracker.set_summary(bad_key, 1.0)


def test_a_callback_on_a_non_main_rank_logs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    LossCallback().report(0.5)


def test_each_callback_has_its_own_tracker() -> None:
    first, second = CallbackBase(), CallbackBase()
    first.tracker.close()
    second.tracker.log({"loss": 1.0})  # closing one callback's tracker leaves the other's open
    assert first.tracker is not second.tracker


def test_an_explicitly_created_tracker_still_needs_init() -> None:
    tracker = create_tracker(None)
    with pytest.raises(RuntimeError, match=r"call init\(\) before log\(\)"):
        tracker.log({"loss": 1.0})
