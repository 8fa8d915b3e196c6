"""``mode: online`` on a machine that cannot use the W&B server: never a hang, one message.

Every case is a real wandb run: without an API key, against a local address that refuses
connections, one that accepts connections and never answers, and fault-injection servers
that answer 503 (a proxy that cannot get through), refuse the key (401) or whose API fails
(503). With ``offline_fallback``
(the default) the run goes on offline and its data is read back from disk; without it, the
run does not start. Either way within the configured ``init_timeout``, with one message
saying which, and with no wandb process left after ``close()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends_of import backend_of

from noether.core.trackers import Tracker, TrackerConfigError, create_tracker
from noether_trackers_wandb import WandBTracker

FAKE_API_KEY = "0123456789abcdef0123456789abcdef01234567"  # the right shape, never sent
#: How long wandb's online start may spend looking up the account (its own fixed timeout).
ACCOUNT_LOOKUP_SECONDS = 5


def online_tracker(output: Path, **options: Any) -> tuple[Tracker, WandBTracker]:
    """The run and its W&B backend."""
    tracker = create_tracker({"kind": "wandb", "project": "p", "mode": "online", **options}, output)
    return tracker, backend_of(tracker, WandBTracker)


def plugin_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "noether.trackers.wandb" and record.levelno >= logging.WARNING
    ]


def timed_init(tracker: Tracker) -> float:
    started = time.monotonic()
    tracker.init(run_name="cluster-job", run_id="job-7")
    return time.monotonic() - started


def assert_fell_back(
    tracker: Tracker,
    backend: WandBTracker,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    helpers: Any,
) -> Any:
    """The run is offline, says why once, and records what is logged; returns its records."""
    (message,) = plugin_messages(caplog)
    assert reason in message
    assert backend.offline_reason is not None and reason in backend.offline_reason
    assert backend.run_dir is not None
    assert f"wandb sync {backend.run_dir}" in message
    assert backend.run_dir.name.startswith("offline-run-")
    assert backend.run_dir.parent == backend.output_path / "wandb"  # type: ignore[operator]
    tracker.log({"loss": 0.5}, step=3)
    return tracker


def test_no_api_key_falls_back_to_offline_at_once(
    sandbox: Any, helpers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=20)
    seconds = timed_init(tracker)
    assert seconds < 10, "no key is known before any network call"
    assert_fell_back(tracker, backend, caplog, "no W&B API key is configured", helpers)
    tracker.close(status="failed")
    records = helpers.run_file(backend.run_dir)
    assert [row["loss"] for row in records.history()] == [0.5]
    assert records.exit_code == 1, "a failed run is not marked successful"


def test_no_api_key_fails_when_fallback_is_off(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    tracker, _ = online_tracker(sandbox.root / "out", init_timeout=20, offline_fallback=False)
    started = time.monotonic()
    with pytest.raises(TrackerConfigError) as raised:
        tracker.init(run_name="cluster-job", run_id="job-7")
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "no W&B API key is configured" in message
    assert "offline_fallback is false" in message
    assert not (sandbox.root / "out" / "wandb").exists(), "no run was started"
    tracker.close()


def test_refused_server_falls_back_to_offline_at_once(
    sandbox: Any, helpers: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=20)
    seconds = timed_init(tracker)
    assert seconds < 10, "a refused connection is known at once"
    reason = f"cannot connect to the W&B server {sandbox.refused_url}"
    assert_fell_back(tracker, backend, caplog, reason, helpers)
    assert "refused" in (backend.offline_reason or "")
    tracker.close(status="terminated")
    records = helpers.run_file(backend.run_dir)
    assert [row["loss"] for row in records.history()] == [0.5]
    assert records.exit_code == 143, "a terminated run is not marked successful"


def test_refused_server_fails_when_fallback_is_off(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    tracker, _ = online_tracker(sandbox.root / "out", init_timeout=20, offline_fallback=False)
    started = time.monotonic()
    with pytest.raises(TrackerConfigError, match="cannot connect to the W&B server"):
        tracker.init(run_name="cluster-job", run_id="job-7")
    assert time.monotonic() - started < 10
    tracker.close()


def test_silent_server_is_given_up_after_init_timeout(
    sandbox: Any,
    helpers: Any,
    silent_server: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=2)
    seconds = timed_init(tracker)
    assert 2 <= seconds < 2 + 8, "waits the timeout, then starts offline"
    assert_fell_back(
        tracker, backend, caplog, f"{silent_server} did not answer within 2 s", helpers
    )
    tracker.close()


def test_server_answering_503_falls_back_to_offline_at_once(
    sandbox: Any,
    helpers: Any,
    fault_server: Callable[[int, int], str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # what a cluster's HTTP proxy answers when it cannot get through
    url = fault_server(503, 503)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", url)
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=20)
    seconds = timed_init(tracker)
    assert seconds < 10
    assert_fell_back(tracker, backend, caplog, f"{url} answered HTTP 503", helpers)
    tracker.close()


def test_rejected_api_key_falls_back_to_offline(
    sandbox: Any,
    helpers: Any,
    fault_server: Callable[[int, int], str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server is there, so wandb itself tries: its API refuses the key.
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", fault_server(200, 401))
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=20)
    seconds = timed_init(tracker)
    assert seconds < 10
    assert_fell_back(tracker, backend, caplog, "the online W&B run could not start", helpers)
    assert "401" in (backend.offline_reason or "")
    tracker.close()


def test_failing_api_is_given_up_by_wandb_within_its_bound(
    sandbox: Any,
    helpers: Any,
    fault_server: Callable[[int, int], str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The server is up but its API fails: wandb retries until the rest of init_timeout runs
    # out, after looking up the account twice with its own fixed timeout.
    monkeypatch.setenv("WANDB_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", fault_server(200, 503))
    tracker, backend = online_tracker(sandbox.root / "out", init_timeout=3)
    seconds = timed_init(tracker)
    assert seconds < 3 + 2 * ACCOUNT_LOOKUP_SECONDS + 8
    assert_fell_back(tracker, backend, caplog, "the online W&B run could not start", helpers)
    tracker.close(status="interrupted")
    records = helpers.run_file(backend.run_dir)
    assert [row["loss"] for row in records.history()] == [0.5]
    assert records.exit_code == 255, "an interrupted run is not marked successful"
