"""The conformance kit: prove that a tracker plugin keeps the noether-trackers contract.

A plugin author subclasses :class:`TrackerConformanceTests` in their test suite, names the
kind their plugin registers and writes :meth:`~TrackerConformanceTests.read_back`, which
returns what their backend stored, read with the backend's own reader::

    from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

    class TestCsvTracker(TrackerConformanceTests):
        kind = "csv"
        backend_module = None          # the library that must not load before init, if any

        def read_back(self, tracker):
            return StoredRun(scalars=..., texts=..., config=..., summary=...)

Every ``test_*`` method below then runs against the plugin. A subclass cannot silently drop
one: overriding a kit test raises ``TypeError`` unless the override is marked
``@pytest.mark.xfail(reason="...")``, so every gap is visible in the test report.

This module imports pytest; nothing else in the core imports this module.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.config import create_tracker
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.redaction import REDACTED
from noether.core.trackers.registry import get_registry
from noether.core.trackers.run_files import flatten
from noether.core.trackers.tracker import Tracker

#: How long :meth:`TrackerConformanceTests.test_no_thread_is_left_after_close` waits for
#: threads to wind down after ``close()`` returned.
THREAD_GRACE_SECONDS = 5.0


@dataclass
class StoredRun:
    """What a backend stored for one run, as read back by the plugin's own reader.

    ``scalars`` maps each name to its ``(step, value)`` points in the order stored; ``texts``
    likewise for text (None when the backend cannot store text); ``config`` and ``summary``
    are the run's configuration and summary as the backend shows them (nested or flattened
    with ``/`` or ``.``; None when the backend has no such notion).
    """

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    texts: dict[str, list[tuple[int, str]]] | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class TrackerConformanceTests:
    """Base class of a plugin's conformance tests; see the module docstring."""

    #: The kind the plugin registers (the entry point's name).
    kind: ClassVar[str]
    #: Top-level module of the backend library, which must not be imported before ``init``.
    backend_module: ClassVar[str | None] = None

    # ---- what a plugin author provides ----------------------------------------------------

    def options(self, output_path: Path) -> dict[str, Any]:
        """The YAML options (besides ``kind``) of the tracker under test."""
        return {}

    def read_back(self, tracker: BaseTracker) -> StoredRun:
        """What the backend stored for the run, read with the backend's own reader (called
        after ``close()``). ``tracker`` is the plugin's own backend instance, the one the run
        delivered to (its ``run`` is the run's :class:`RunInfo`)."""
        raise NotImplementedError("a conformance test class must implement read_back")

    # ---- helpers ------------------------------------------------------------------------------

    @pytest.fixture
    def output_path(self, tmp_path: Path) -> Path:
        """The run's output directory."""
        return tmp_path / "run"

    def make_tracker(self, output_path: Path) -> Tracker:
        """A run built from YAML-like config, as a user's run would build it."""
        return create_tracker({"kind": self.kind, **self.options(output_path)}, output_path)

    def run_once(
        self,
        output_path: Path,
        body: Callable[[Tracker], None],
        config: dict[str, Any] | None = None,
    ) -> tuple[BaseTracker, StoredRun]:
        """Init a run, run ``body`` with it, close it and read back what was stored; returns
        the plugin's backend instance and what it stored."""
        tracker = self.make_tracker(output_path)
        [backend] = tracker.backends
        tracker.init(run_name="conformance", run_id="conformance-1", config=config)
        body(tracker)
        report = tracker.close(timeout=60)
        assert report.complete, report.describe()
        assert isinstance(backend, BaseTracker)
        return backend, self.read_back(backend)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _kit_tests():
            if name in cls.__dict__ and not _marked_expected_to_fail(cls.__dict__[name]):
                raise TypeError(
                    f"{cls.__name__}.{name} replaces a conformance test. Keep the kit's test; "
                    f"if your backend cannot pass it, override it only to mark it "
                    f'@pytest.mark.xfail(reason="why")'
                )

    # ---- the contract ---------------------------------------------------------------------------

    def test_runs_in_a_delivery_process(self, output_path: Path) -> None:
        """By default the backend runs in the run's delivery process, not in the training
        process: it is pickled there (its options must pickle), started there, and what it
        learnt there is copied back to the instance here."""
        tracker = self.make_tracker(output_path)
        [backend] = tracker.backends
        tracker.init(run_name="conformance", run_id="conformance-1")
        try:
            assert tracker.delivery_mode == "process", (
                f"expected process delivery, got {tracker.delivery_mode!r} (see the warning "
                "logged by init: a backend that cannot be pickled falls back to threads)"
            )
            tracker.log({"loss": 1.0})
            assert tracker.flush(60)
            assert isinstance(backend, BaseTracker)
            assert backend.run is not None and backend.run.run_id == "conformance-1", backend.run
        finally:
            tracker.close(timeout=60)

    def test_entry_point_registers_the_kind(self) -> None:
        """The kind comes from an installed entry point and resolves by every name."""
        entry = get_registry().resolve(self.kind)
        assert entry.distribution is not None, f"kind {self.kind!r} is not from an entry point"
        assert get_registry().resolve(f"noether.core.trackers.{entry.class_name}") is entry
        assert get_registry().broken == [], get_registry().broken

    def test_schema_rejects_an_unknown_option(self, output_path: Path) -> None:
        """A typo in the YAML is a configuration error naming the key."""
        section = {"kind": self.kind, **self.options(output_path), "no_such_option": 1}
        with pytest.raises(TrackerConfigError, match=r"tracker\.no_such_option: unknown option"):
            create_tracker(section, output_path)

    def test_scalars_round_trip_with_steps(self, output_path: Path) -> None:
        """Scalars arrive with their steps; repeated and earlier steps are not dropped."""

        def body(tracker: Tracker) -> None:
            for value in (3.0, 2.0, 1.0):
                tracker.log({"loss": value})  # steps 0, 1, 2
            tracker.log({"loss": 5.0}, step=1)  # a repeated step
            tracker.log({"eval/loss": 0.5}, step=0)  # an evaluation at an earlier step
            tracker.log({"acc": 0.25}, step=7)

        _, stored = self.run_once(output_path, body)
        assert sorted(_points(stored, "loss")) == [(0, 3.0), (1, 2.0), (1, 5.0), (2, 1.0)]
        assert _points(stored, "eval/loss") == [(0, 0.5)]
        assert _points(stored, "acc") == [(7, 0.25)]

    def test_nan_and_inf_are_kept(self, output_path: Path) -> None:
        """NaN and infinities are values, stored as such."""
        _, stored = self.run_once(
            output_path,
            lambda t: t.log({"nan": float("nan"), "inf": math.inf, "ninf": -math.inf}, step=3),
        )
        [(step, nan)] = stored.scalars["nan"]
        assert step == 3 and math.isnan(nan)
        assert stored.scalars["inf"] == [(3, math.inf)]
        assert stored.scalars["ninf"] == [(3, -math.inf)]

    def test_text_round_trips_or_is_skipped_with_a_warning(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Text arrives where the backend supports it, and is skipped with a warning if not."""
        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(
                output_path, lambda t: t.log({"note": "hello", "loss": 1.0}, step=2)
            )
        if "text" in tracker.supported_values:
            assert stored.texts is not None and stored.texts.get("note") == [(2, "hello")]
        else:
            assert "skipping 'note'" in caplog.text
        assert _points(stored, "loss") == [(2, 1.0)]

    def test_unsupported_values_are_skipped_with_a_warning(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A value no backend can show is warned about and skipped, never an exception."""
        with caplog.at_level(logging.WARNING, "noether.trackers"):
            _, stored = self.run_once(
                output_path, lambda t: t.log({"ok": 1.0, "weird": object()}, step=0)
            )
        assert "cannot log 'weird'" in caplog.text
        assert _points(stored, "ok") == [(0, 1.0)] and "weird" not in stored.scalars

    def test_config_reaches_the_backend_redacted(self, output_path: Path) -> None:
        """The run's config arrives, with secret-looking values redacted."""
        config = {"lr": 0.1, "model": {"width": 8}, "api_key": "sk-secret"}
        _, stored = self.run_once(output_path, lambda t: None, config=config)
        assert stored.config is not None, "read_back returned no config"
        flat = _flatten(stored.config)
        assert flat.get("lr") == 0.1 and flat.get("model/width") == 8
        assert flat.get("api_key") == REDACTED and "sk-secret" not in json.dumps(stored.config)

    def test_summary_reaches_the_backend(self, output_path: Path) -> None:
        """What ``set_summary`` sets and the end-of-run best/last summary are stored."""

        def body(tracker: Tracker) -> None:
            for loss in (3.0, 1.0, 2.0):
                tracker.log({"loss": loss})
            tracker.set_summary("best_epoch", 1)

        _, stored = self.run_once(output_path, body)
        assert stored.summary is not None, "read_back returned no summary"
        flat = _flatten(stored.summary)
        assert flat.get("best_epoch") == 1
        assert flat.get("loss/min") == 1.0 and flat.get("loss/last") == 2.0

    def test_close_is_idempotent_and_safe_before_init(self, output_path: Path) -> None:
        """``close()`` twice, and ``close()`` before ``init()``, do nothing bad."""
        self.make_tracker(output_path).close()
        tracker = self.make_tracker(output_path)
        tracker.init(run_name="conformance")
        tracker.close()
        tracker.close()
        assert tracker.status == "finished"

    def test_backend_library_is_not_imported_before_init(self, output_path: Path) -> None:
        """Resolving the kind and building the tracker leave the backend library unloaded."""
        if self.backend_module is None:
            return
        code = (
            "import json, sys\n"
            "from noether.core.trackers import create_tracker\n"
            f"create_tracker({{'kind': {self.kind!r}, **{self.options(output_path)!r}}}, "
            f"{str(output_path)!r})\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        modules = json.loads(done.stdout.strip().splitlines()[-1])
        loaded = [m for m in modules if m.split(".")[0] == self.backend_module]
        assert loaded == [], f"{self.backend_module} was imported before init: {loaded[:5]}"

    def test_no_thread_is_left_after_close(self, output_path: Path) -> None:
        """Every thread the tracker (or its backend library) started has ended after close."""
        before = set(threading.enumerate())
        self.run_once(output_path, lambda t: t.log({"loss": 1.0}))
        deadline = time.monotonic() + THREAD_GRACE_SECONDS
        while True:
            left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert left == [], f"threads still running after close(): {[t.name for t in left]}"


def _kit_tests() -> list[str]:
    return [name for name in vars(TrackerConformanceTests) if name.startswith("test_")]


def _marked_expected_to_fail(function: Any) -> bool:
    marks = getattr(function, "pytestmark", [])
    return any(mark.name == "xfail" and mark.kwargs.get("reason") for mark in marks)


def _points(stored: StoredRun, key: str) -> list[tuple[int, float]]:
    return [(int(step), float(value)) for step, value in stored.scalars.get(key, [])]


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts flattened with ``/`` (and dotted keys read as ``/``)."""
    return {key.replace(".", "/"): value for key, value in flatten(data).items()}
