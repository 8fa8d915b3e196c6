"""A newer Trackio that changed an internal the plugin relies on: one warning naming the Trackio
version and what degrades, and the run is still logged.

The runs are real Trackio runs read back from the real store. What is faked is only the change:
Trackio itself still uses the internals (its own code reads ``utils.TRACKIO_DIR``,
``SQLiteStorage._get_process_lock``, ``Run._is_local``), so they are hidden from the plugin's
view of Trackio (``compat._module``, the run ``trackio.init`` returns), not removed from Trackio.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from noether.core.trackers import Tracker
from noether_trackers_trackio import compat

Make = Callable[..., Tracker]

#: These tests patch Trackio inside this process, so its backend must run here.
pytestmark = pytest.mark.usefixtures("thread_delivery")


class Hiding:
    """``target`` as the plugin would see it on a Trackio without the ``hidden`` attributes;
    everything else (reads and writes) goes to ``target`` itself."""

    def __init__(self, target: Any, *hidden: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_hidden", frozenset(hidden))

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: nothing warned about yet."""
    monkeypatch.setattr(compat, "_warned", set())


@pytest.fixture
def trackio_view(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Change what the plugin finds in a trackio module: ``view("trackio.utils",
    hide=["TRACKIO_DIR"])`` or ``view("trackio.sqlite_storage", SQLiteStorage=...)``."""
    real = compat._module
    changed: dict[str, Callable[[Any], Any]] = {}

    def module(name: str) -> Any:
        found = real(name)
        return changed[name](found) if name in changed else found

    def view(name: str, hide: tuple[str, ...] = (), **replace: Any) -> None:
        changed[name] = lambda found: SimpleNamespace(
            **{k: v for k, v in vars(found).items() if k not in hide and k not in replace},
            **replace,
        )

    monkeypatch.setattr(compat, "_module", module)
    return view


@pytest.fixture
def hide_run_attributes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the runs ``trackio.init`` returns lack the given attributes, as the plugin sees
    them."""

    def hide(*names: str) -> None:
        import trackio

        real = trackio.init

        def init(*args: Any, **kwargs: Any) -> Any:
            return Hiding(real(*args, **kwargs), *names)

        monkeypatch.setattr(trackio, "init", init)

    return hide


@pytest.fixture
def degradations(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """The plugin's warnings about a changed Trackio, so far."""
    caplog.set_level(logging.WARNING, logger="noether.trackers.trackio")

    def found() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "noether.trackers.trackio" and "has changed" in r.getMessage()
        ]

    yield found


def _version_named(warning: str) -> None:
    assert f"Trackio {metadata.version('trackio')} has changed" in warning
    assert "Logging goes on" in warning


def _three_steps(tracker: Tracker, name: str, **init: Any) -> None:
    tracker.init(run_name=name, config={"lr": 0.1}, **init)
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)})
    tracker.close()


THREE_ROWS = [{"loss": 1.0, "step": 0}, {"loss": 0.5, "step": 1}, {"loss": 1 / 3, "step": 2}]
SUMMARY = {"loss/min": 1 / 3, "loss/last": 1 / 3, "_status": "finished"}


def test_the_installed_trackio_needs_no_fallback(
    make_tracker: Make, store: Any, tmp_path: Path, degradations: Callable[[], list[str]]
) -> None:
    _three_steps(make_tracker(), "current")
    _three_steps(make_tracker(trackio_dir=str(tmp_path / "elsewhere")), "elsewhere")

    assert degradations() == []
    assert store.logs("proj", "current") == THREE_ROWS
    assert store.config("proj", "current")["summary"] == SUMMARY


def test_without_the_store_constants_runs_go_where_trackio_looks(
    make_tracker: Make,
    store: Any,
    tmp_path: Path,
    trackio_view: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    from trackio.sqlite_storage import SQLiteStorage

    # Where this process's Trackio writes when nobody moves it (imported in an earlier test).
    own_store = type(store)(SQLiteStorage.get_project_db_path("compat-store").parent)
    environment = os.environ["TRACKIO_DIR"]
    trackio_view("trackio.utils", hide=("TRACKIO_DIR",))

    _three_steps(make_tracker("compat-store"), "first")
    _three_steps(make_tracker("compat-store", trackio_dir=str(tmp_path / "asked")), "second")

    (warning,) = degradations()  # once per process, not once per run
    _version_named(warning)
    assert "trackio.utils.TRACKIO_DIR" in warning
    assert "`trackio_dir` and a $TRACKIO_DIR set after import may have no effect" in warning
    assert os.environ["TRACKIO_DIR"] == environment  # set for each run, put back after it
    for name in ("first", "second"):
        assert own_store.logs("compat-store", name) == THREE_ROWS
        assert own_store.config("compat-store", name)["summary"] == SUMMARY


def _until_rows_are_stored(store: Any, run: str, count: int, timeout: float = 10.0) -> None:
    """Wait until Trackio's writer has stored ``count`` rows of ``run`` (it writes in batches)."""
    deadline = time.monotonic() + timeout
    while len(store.logs("proj", run) if "proj" in store.projects() else []) < count:
        assert time.monotonic() < deadline, f"Trackio stored fewer than {count} rows of {run}"
        time.sleep(0.05)


def test_without_sqlite_internals_the_summary_travels_with_a_row(
    make_tracker: Make,
    store: Any,
    trackio_view: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    from trackio.sqlite_storage import SQLiteStorage

    trackio_view("trackio.sqlite_storage", SQLiteStorage=Hiding(SQLiteStorage, "_get_process_lock"))
    tracker = make_tracker()
    tracker.init(run_name="no-lock", config={"lr": 0.1})
    for step in range(3):
        tracker.log({"loss": 1.0 / (step + 1)})
    _until_rows_are_stored(store, "no-lock", 3)  # a run that lasts: its first row is stored
    tracker.close()

    (warning,) = degradations()
    _version_named(warning)
    assert "SQLiteStorage._get_process_lock" in warning
    assert "one extra row of no metrics" in warning
    assert store.logs("proj", "no-lock") == [*THREE_ROWS, {"step": 2}]
    assert store.config("proj", "no-lock")["summary"] == SUMMARY


def test_a_run_within_one_write_interval_keeps_its_summary(
    make_tracker: Make,
    store: Any,
    trackio_view: Callable[..., None],
    degradations: Callable[[], list[str]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trackio.run
    from trackio.sqlite_storage import SQLiteStorage

    # every Trackio the plugin declares has it (0.38.1 to 0.43.0, both run in CI); a newer one
    # without it fails here, so that this test gets another way to hold the writer
    assert hasattr(trackio.run, "BATCH_SEND_INTERVAL"), "this Trackio has no write interval"
    # Trackio's writer would send everything in one batch, at finish(); the plugin writes the
    # queued rows first (as its _flush does), so the summary row that follows is recorded
    monkeypatch.setattr(trackio.run, "BATCH_SEND_INTERVAL", 60.0)
    trackio_view("trackio.sqlite_storage", SQLiteStorage=Hiding(SQLiteStorage, "_get_process_lock"))
    _three_steps(make_tracker(), "short")

    (warning,) = degradations()
    assert "SQLiteStorage._get_process_lock" in warning
    assert not [r for r in caplog.records if "summary not recorded" in r.getMessage()]
    config = store.config("proj", "short")
    assert config["lr"] == 0.1 and config["summary"] == SUMMARY


def test_a_run_that_does_not_say_where_it_writes_sends_the_summary_with_a_row(
    make_tracker: Make,
    store: Any,
    hide_run_attributes: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    hide_run_attributes("_is_local")
    _three_steps(make_tracker(), "unsure")

    (warning,) = degradations()
    _version_named(warning)
    assert "trackio.Run._is_local" in warning
    # Sent with the run, and written in place if it did not arrive.
    assert store.logs("proj", "unsure") == [*THREE_ROWS, {"step": 2}]
    assert store.config("proj", "unsure")["summary"] == SUMMARY


def test_without_a_way_to_resend_the_config_a_local_run_is_rewritten_in_place(
    make_tracker: Make,
    store: Any,
    hide_run_attributes: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    hide_run_attributes("_is_local", "_config_logged")
    _three_steps(make_tracker(), "rewritten")

    unsure, no_resend = degradations()
    assert "trackio.Run._is_local" in unsure
    _version_named(no_resend)
    assert "trackio.Run._config_logged" in no_resend
    assert store.logs("proj", "rewritten") == THREE_ROWS  # no pointless extra row
    assert store.config("proj", "rewritten")["summary"] == SUMMARY


def test_with_no_way_to_store_it_only_the_summary_is_lost(
    make_tracker: Make,
    store: Any,
    trackio_view: Callable[..., None],
    hide_run_attributes: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    from trackio.sqlite_storage import SQLiteStorage

    trackio_view("trackio.sqlite_storage", SQLiteStorage=Hiding(SQLiteStorage, "_get_connection"))
    hide_run_attributes("_is_local", "_config_logged")
    _three_steps(make_tracker(), "no-summary")
    _three_steps(make_tracker(), "no-summary-again")

    warnings = degradations()  # once per process each, not once per run
    assert len(warnings) == 3
    for warning, internal in zip(
        warnings,
        ("trackio.Run._is_local", "SQLiteStorage._get_connection", "trackio.Run._config_logged"),
        strict=True,
    ):
        _version_named(warning)
        assert internal in warning
    assert "the run summary is not recorded" in warnings[2]
    for name in ("no-summary", "no-summary-again"):
        assert store.logs("proj", name) == THREE_ROWS
        config = store.config("proj", name)
        assert config["lr"] == 0.1 and "summary" not in config


def test_a_run_that_logged_nothing_needs_no_internal_for_its_summary(
    make_tracker: Make,
    store: Any,
    hide_run_attributes: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    hide_run_attributes("_is_local", "_storage_mode", "_config_logged")
    tracker = make_tracker()
    tracker.init(run_name="empty", config={"lr": 0.1})
    tracker.close()

    assert degradations() == []
    assert store.config("proj", "empty")["summary"] == {"_status": "finished"}
    assert store.logs("proj", "empty") == [{"step": 0}]


def test_without_the_writer_thread_the_run_is_kept_unchecked(
    make_tracker: Make,
    store: Any,
    hide_run_attributes: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    hide_run_attributes("_local_sender_thread")
    _three_steps(make_tracker(), "unchecked")

    (warning,) = degradations()
    _version_named(warning)
    assert "trackio.Run._local_sender_thread" in warning
    assert store.logs("proj", "unchecked") == THREE_ROWS
    assert store.config("proj", "unchecked")["summary"] == SUMMARY


def test_a_changed_configs_table_loses_only_the_summary(
    make_tracker: Make,
    store: Any,
    trackio_view: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    from trackio.sqlite_storage import SQLiteStorage

    class ChangedLayout:
        """SQLiteStorage of a Trackio whose database has no ``configs`` table."""

        get_project_db_path = staticmethod(SQLiteStorage.get_project_db_path)
        _get_process_lock = staticmethod(SQLiteStorage._get_process_lock)

        @staticmethod
        @contextlib.contextmanager
        def _get_connection(path: Path) -> Iterator[sqlite3.Connection]:
            with contextlib.closing(sqlite3.connect(":memory:")) as connection:
                yield connection

    trackio_view("trackio.sqlite_storage", SQLiteStorage=ChangedLayout)
    _three_steps(make_tracker(), "changed-table")

    (warning,) = degradations()
    _version_named(warning)
    assert "the configs table of its SQLite store (no such table: configs)" in warning
    assert store.logs("proj", "changed-table") == THREE_ROWS
    assert "summary" not in store.config("proj", "changed-table")


def test_an_init_parameter_trackio_dropped_is_left_out(
    make_tracker: Make,
    store: Any,
    monkeypatch: pytest.MonkeyPatch,
    degradations: Callable[[], list[str]],
) -> None:
    import trackio

    real = trackio.init

    def init(
        project: str,
        name: str | None = None,
        group: str | None = None,
        space_id: str | None = None,
        config: dict[str, Any] | None = None,
        resume: str = "never",
    ) -> Any:
        """trackio.init of a release without ``private`` and ``embed``."""
        return real(
            project,
            name=name,
            group=group,
            space_id=space_id,
            config=config,
            resume=resume,
            embed=False,
        )

    monkeypatch.setattr(trackio, "init", init)
    _three_steps(make_tracker(), "fewer-options")

    warnings = degradations()
    assert len(warnings) == 2
    for warning, parameter in zip(warnings, ("private", "embed"), strict=True):
        _version_named(warning)
        assert f"trackio.init (no parameter '{parameter}')" in warning
    assert store.logs("proj", "fewer-options") == THREE_ROWS
    assert store.config("proj", "fewer-options")["summary"] == SUMMARY


def test_without_a_way_to_read_stored_rows_a_replacement_process_writes_every_call(
    tmp_path: Path,
    store: Any,
    trackio_view: Callable[..., None],
    degradations: Callable[[], list[str]],
) -> None:
    from trackio.sqlite_storage import SQLiteStorage

    from noether.core.trackers.run_info import RunInfo
    from noether_trackers_trackio import TrackioTracker

    def run(first: int, count: int, redelivery: bool) -> None:
        backend = TrackioTracker(project="proj", output_path=tmp_path)
        info = RunInfo("unread", "run-1", None, {}, tmp_path, resumed=redelivery)
        backend._receive_start(replace(info, redelivery=redelivery))
        for step in range(first, first + count):
            backend._receive_log({"loss": float(step)}, step)
        backend._close("finished")

    run(0, 3, redelivery=False)
    trackio_view("trackio.sqlite_storage", SQLiteStorage=Hiding(SQLiteStorage, "get_logs"))
    run(2, 2, redelivery=True)

    (warning,) = degradations()
    _version_named(warning)
    assert "SQLiteStorage.get_logs" in warning
    assert "write again" in warning
    # the call at step 2 is written twice; nothing is lost
    assert [row["step"] for row in store.logs("proj", "unread")] == [0, 1, 2, 2, 3]
