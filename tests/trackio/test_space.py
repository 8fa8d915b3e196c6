"""A Space with no reachable Hub: local fallback or a clear failure, within ``space_timeout``.

The Hub is a local address: one that refuses connections, or one that accepts them and never
answers (a firewall dropping packets looks like that).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from isolation import as_on_a_fresh_machine

from noether.core.trackers import Tracker, TrackerConfigError

Make = Callable[..., Tracker]
#: Slack on top of ``space_timeout`` for a loaded test machine.
SLACK = 2.0


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave HF_HUB_OFFLINE unset, as on a machine that believes it is online.

    huggingface_hub's own offline switch stays on (see conftest), so whatever Trackio does
    cannot reach the network; the plugin's probe goes to the test's local Hub address.
    """
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_refused_space_falls_back_to_local_with_one_warning(
    online: None,
    make_tracker: Make,
    store: Any,
    caplog: pytest.LogCaptureFixture,
    subprocess_env: dict[str, str],
) -> None:
    tracker = make_tracker(space_id="me/space", space_timeout=5)
    started = time.monotonic()
    tracker.init(run_name="fallback")
    assert time.monotonic() - started < 5 + SLACK
    tracker.log({"loss": 0.5})
    tracker.close()

    (warning,) = _warnings(caplog)
    assert "Trackio Space 'me/space' is unreachable" in warning
    assert "connection refused" in warning
    assert "logging run 'fallback' locally to" in warning
    assert "trackio sync --project proj --space-id me/space" in warning
    assert store.logs("proj", "fallback") == [{"loss": 0.5, "step": 0}]
    # the upload command runs as printed, without an activated virtual environment
    command = warning.split("Upload it later with: ")[1]
    done = subprocess.run(
        f"{command} --help",
        shell=True,
        env=as_on_a_fresh_machine(subprocess_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--space-id" in done.stdout, done.stderr


def test_refused_space_fails_when_asked_to(
    online: None, make_tracker: Make, store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = make_tracker(space_id="me/space", on_space_unreachable="fail")
    started = time.monotonic()
    with pytest.raises(TrackerConfigError) as caught:
        tracker.init(run_name="strict")
    assert time.monotonic() - started < 10 + SLACK
    (problem, _hint) = caught.value.problems
    assert "TrackioHubUnreachableError: Trackio Space 'me/space' is unreachable" in problem
    assert "on_space_unreachable: local" in problem
    assert store.projects() == []


@pytest.mark.parametrize("on_space_unreachable", ["local", "fail"])
def test_a_hub_that_never_answers_costs_space_timeout_and_no_more(
    online: None,
    on_space_unreachable: str,
    hanging_url: str,
    monkeypatch: pytest.MonkeyPatch,
    make_tracker: Make,
    store: Any,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hanging_url)
    tracker = make_tracker(
        space_id="me/space", space_timeout=1.0, on_space_unreachable=on_space_unreachable
    )
    started = time.monotonic()
    if on_space_unreachable == "fail":
        with pytest.raises(TrackerConfigError, match="no answer within 1s"):
            tracker.init(run_name="hung")
    else:
        tracker.init(run_name="hung")
        tracker.log({"loss": 0.5})
    elapsed = time.monotonic() - started
    tracker.close()
    assert 1.0 <= elapsed < 1.0 + SLACK
    expected = [{"loss": 0.5, "step": 0}] if on_space_unreachable == "local" else []
    assert (store.logs("proj", "hung") if store.projects() else []) == expected


def test_offline_mode_falls_back_without_asking_the_hub(
    make_tracker: Make,
    store: Any,
    caplog: pytest.LogCaptureFixture,
    hanging_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hanging_url)  # would cost space_timeout if probed
    tracker = make_tracker(space_id="space-only", space_timeout=30)
    started = time.monotonic()
    tracker.init(run_name="offline")
    assert time.monotonic() - started < SLACK
    tracker.close()

    (warning,) = _warnings(caplog)
    assert "HF_HUB_OFFLINE is set" in warning
    assert [record["name"] for record in store.runs("proj")] == ["offline"]


def test_a_space_from_the_environment_is_handled_the_same_way(
    online: None,
    make_tracker: Make,
    store: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import os

    monkeypatch.setenv("TRACKIO_SPACE_ID", "me/env-space")
    tracker = make_tracker()
    tracker.init(run_name="from-env")
    tracker.log({"loss": 0.5})
    tracker.close()

    (warning,) = _warnings(caplog)
    assert "'me/env-space' is unreachable" in warning
    assert store.logs("proj", "from-env") == [{"loss": 0.5, "step": 0}]
    assert os.environ["TRACKIO_SPACE_ID"] == "me/env-space"  # put back after init


def test_a_token_with_a_hanging_hub_fails_fast_even_for_a_local_run(
    online: None, hanging_url: str, monkeypatch: pytest.MonkeyPatch, make_tracker: Make
) -> None:
    # trackio.init looks up the token's user name on the Hub; that would block for minutes.
    monkeypatch.setenv("HF_ENDPOINT", hanging_url)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    tracker = make_tracker(space_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(TrackerConfigError, match="Set HF_HUB_OFFLINE=1"):
        tracker.init(run_name="token")
    assert time.monotonic() - started < 1.0 + SLACK


def test_a_token_with_a_refusing_hub_still_logs_locally(
    online: None,
    monkeypatch: pytest.MonkeyPatch,
    make_tracker: Make,
    store: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    tracker = make_tracker()
    tracker.init(run_name="token-local")
    tracker.log({"loss": 0.5})
    tracker.close()

    assert store.logs("proj", "token-local") == [{"loss": 0.5, "step": 0}]
    assert _warnings(caplog) == []
