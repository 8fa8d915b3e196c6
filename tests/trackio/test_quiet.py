"""Quiet and clean: Trackio's banners go to logging, and nothing keeps running after close.

Every test of this folder also fails if it leaves a thread or child process behind (see
``nothing_left_running`` in conftest); the tests here look at that directly.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

import pytest

from noether.core.trackers import Tracker
from noether_trackers_trackio import console

Make = Callable[..., Tracker]


def test_trackio_banners_go_to_logging_not_to_the_console(
    make_tracker: Make, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="noether.trackers.trackio")
    print("training starts")
    tracker = make_tracker()
    tracker.init(run_name="quiet")
    tracker.log({"loss": 1.0})
    tracker.close()
    print("training ends")

    captured = capfd.readouterr()
    assert captured.out == "training starts\ntraining ends\n"
    assert "Trackio" not in captured.err
    messages = [r.getMessage() for r in caplog.records if r.name == "noether.trackers.trackio"]
    assert "* Trackio project initialized: proj" in messages
    assert 'trackio show --project "proj"' in messages  # ANSI colours removed
    assert "* Created new run: quiet" in messages
    assert any(message.startswith("* Run finished") for message in messages)
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.endswith("trackio"))


def test_only_the_capturing_thread_is_routed(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.routed")
    original = sys.stdout
    inside = threading.Event()
    release = threading.Event()

    def capture() -> None:
        with console.prints_to_logging(logging.getLogger("test.routed")):
            print("banner\x1b[0m line one\npartial", end="")
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=capture)
    worker.start()
    assert inside.wait(5)
    print("from the training thread")  # while the other thread captures
    release.set()
    worker.join(5)

    assert sys.stdout is original
    assert capsys.readouterr().out == "from the training thread\n"
    assert [r.getMessage() for r in caplog.records] == ["banner line one", "partial"]


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_close_stops_every_thread_trackio_started(make_tracker: Make) -> None:
    before = set(threading.enumerate())
    tracker = make_tracker()
    tracker.init(run_name="threads")
    tracker.log({"loss": 1.0})
    during = {t.name for t in set(threading.enumerate()) - before}
    assert any("_local_batch_sender" in name for name in during)  # Trackio's writer thread
    tracker.close()
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
