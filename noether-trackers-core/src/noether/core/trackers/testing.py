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

Every ``test_*`` method below then runs against the plugin: values of every kind (scalars,
text, images, histograms, tables), config and summary, the run's display name and final
status, a resumed run, a backend whose ``_init`` fails, values logged just before
``close()``, and the plugin's packaging and threads. A subclass cannot silently drop one:
overriding a kit test raises ``TypeError`` unless the override is marked
``@pytest.mark.xfail(reason="...")``, so every gap is visible in the test report.

**Checks that cannot run.** Every field of :class:`StoredRun` but ``scalars`` may be left
None: the backend cannot show it, or ``read_back`` does not read it. A value kind may be left
out of the backend's ``supported_values``. A kit test whose check needs such a field or kind
still runs the run (it must not fail) and checks what it can (an unsupported kind is skipped
with a warning), then records the check it could not make instead of passing it silently:
the kit's pytest plugin (:mod:`noether.core.trackers.pytest_plugin`, loaded by pytest through
its ``pytest11`` entry point) ends the test report with a section
``noether-trackers conformance: checks not run`` naming each one, e.g.
``TestCsvTracker: images (read_back gives no images)``. The kit never skips a test.

**Comparing stored values with logged ones.** Backends store values in their own types: a
float32, a JSON number, a string (MLflow params, a YAML or markdown cell). One rule applies
wherever the kit compares a stored value with a logged one (scalars, config, summary): *a
stored value equals a logged number when it is a number, or a string that Python's
``float()`` parses, with the same float value (NaN equals NaN); any other logged value (text,
a bool) equals only a stored value that is equal to it.* So ``"0.1"`` equals a logged ``0.1``
and ``8.0`` a logged ``8``; ``"hello"`` equals only ``"hello"``. The kit logs numbers that
float32 holds exactly, so a float32 store compares equal too.

This module imports pytest; nothing else in the core imports this module. Its assertions
carry messages with the expected and the stored values, and pytest rewrites them too (the
kit's pytest plugin registers this module for assertion rewriting).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from noether.core.trackers.base import BaseTracker
from noether.core.trackers.config import create_tracker
from noether.core.trackers.errors import TrackerConfigError
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.pytest_plugin import NOT_RUN_PLUGIN, NOT_RUN_PROPERTY
from noether.core.trackers.redaction import REDACTED
from noether.core.trackers.registry import get_registry
from noether.core.trackers.run_files import flatten
from noether.core.trackers.run_info import RUN_STATUSES, RunStatus
from noether.core.trackers.tracker import Tracker

#: How long :meth:`TrackerConformanceTests.test_no_thread_is_left_after_close` waits for
#: threads to wind down after ``close()`` returned.
THREAD_GRACE_SECONDS = 5.0
#: The run name, run id and stage the kit's runs use (``display_name`` is checked against
#: ``RUN_NAME/STAGE_NAME``).
RUN_NAME = "conformance"
RUN_ID = "conformance-1"
STAGE_NAME = "train"
#: The message of the error the kit's failing ``_init`` raises.
FAILED_INIT_MESSAGE = "conformance kit: _init refuses on purpose"


@dataclass
class StoredRun:
    """What a backend stored for one run, as read back by the plugin's own reader.

    Every point is a ``(step, ...)`` tuple; a key's points may come in any order (the kit
    compares them sorted, so a backend need not keep the order of logging, but must keep
    every point: a repeated step is two points). Values are compared by the rule of the
    module docstring (a stored string that parses to the logged number equals it). Every
    field but ``scalars`` may be None: the backend cannot show it, or ``read_back`` does not
    read it; the checks that need it are then reported as not run (see the module docstring).

    - ``scalars``: name -> ``(step, value)`` points.
    - ``texts``: name -> ``(step, text)`` points.
    - ``images``: name -> ``(step, (height, width))`` points, the size in pixels of each
      image stored.
    - ``histograms``: name -> ``(step, count)`` points, the number of (finite) values each
      histogram stored holds, i.e. the sum of its bin counts.
    - ``tables``: name -> ``(step, (columns, number_of_rows))`` points, the column names in
      order and the row count of each table stored.
    - ``config``: the run's configuration as the backend shows it (nested, or flattened with
      ``/`` or ``.``).
    - ``summary``: the run's summary as the backend shows it (nested or flattened); extra
      keys are allowed.
    - ``status``: how the backend shows the run ended: ``finished``, ``failed``,
      ``interrupted`` or ``terminated`` (the status given to ``close()``).
    - ``display_name``: the run's name as the backend shows it (the run name, or
      ``run_name/stage_name`` for a run with a stage).
    """

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    texts: dict[str, list[tuple[int, str]]] | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    images: dict[str, list[tuple[int, tuple[int, int]]]] | None = None
    histograms: dict[str, list[tuple[int, int]]] | None = None
    tables: dict[str, list[tuple[int, tuple[list[str], int]]]] | None = None
    status: str | None = None
    display_name: str | None = None


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
        delivered to (its ``run`` is the run's :class:`RunInfo`). For a resumed run it is the
        instance of the last part, and the stored run is the whole run, every part of it, as
        the backend shows it."""
        raise NotImplementedError("a conformance test class must implement read_back")

    # ---- helpers ------------------------------------------------------------------------------

    @pytest.fixture
    def output_path(self, tmp_path: Path) -> Path:
        """The run's output directory."""
        return tmp_path / "run"

    @pytest.fixture(autouse=True)
    def conformance_test_node(self, request: pytest.FixtureRequest) -> None:
        """Keep the running test's node, where checks that could not run are recorded."""
        self._kit_node: pytest.Item | None = request.node

    def make_tracker(self, output_path: Path) -> Tracker:
        """A run built from YAML-like config, as a user's run would build it."""
        return create_tracker({"kind": self.kind, **self.options(output_path)}, output_path)

    def run_once(
        self,
        output_path: Path,
        body: Callable[[Tracker], None],
        config: dict[str, Any] | None = None,
        *,
        stage_name: str | None = None,
        status: RunStatus = "finished",
    ) -> tuple[BaseTracker, StoredRun]:
        """Init a run (run id :data:`RUN_ID`; a run already journaled in ``output_path``
        resumes), run ``body`` with it, close it with ``status`` and read back what was
        stored; returns the plugin's backend instance and what it stored."""
        tracker = self.make_tracker(output_path)
        [backend] = tracker.backends
        tracker.init(run_name=RUN_NAME, run_id=RUN_ID, stage_name=stage_name, config=config)
        body(tracker)
        report = tracker.close(timeout=60, status=status)
        assert report.complete, report.describe()
        assert isinstance(backend, BaseTracker), f"expected a BaseTracker, got {backend!r}"
        return backend, self.read_back(backend)

    def not_run(self, check: str, reason: str) -> None:
        """Record that ``check`` could not run, and why: the kit's pytest plugin lists it at
        the end of the test report (see the module docstring)."""
        node = getattr(self, "_kit_node", None)
        if node is not None and not node.config.pluginmanager.has_plugin(NOT_RUN_PLUGIN):
            # plugin autoloading is off: say it here, in pytest's warnings summary
            warnings.warn(
                f"{type(self).__name__}: {check} not checked ({reason}); load the kit's pytest "
                "plugin (-p noether.core.trackers.pytest_plugin) to list these in one section",
                UserWarning,
                stacklevel=2,
            )
        if node is not None:
            node.user_properties.append(
                (NOT_RUN_PROPERTY, f"{type(self).__name__}: {check} ({reason})")
            )

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
        tracker.init(run_name=RUN_NAME, run_id=RUN_ID)
        try:
            assert tracker.delivery_mode == "process", (
                f"expected process delivery, got {tracker.delivery_mode!r} (see the warning "
                "logged by init: a backend that cannot be pickled falls back to threads)"
            )
            tracker.log({"loss": 1.0})
            assert tracker.flush(60), "flush() did not complete within 60 s"
            assert isinstance(backend, BaseTracker), f"expected a BaseTracker, got {backend!r}"
            run_id = backend.run.run_id if backend.run is not None else None
            assert run_id == RUN_ID, f"expected the backend's run id {RUN_ID!r}, got {run_id!r}"
        finally:
            tracker.close(timeout=60)

    def test_entry_point_registers_the_kind(self) -> None:
        """The kind comes from an installed entry point and resolves by every name."""
        entry = get_registry().resolve(self.kind)
        assert entry.distribution is not None, f"kind {self.kind!r} is not from an entry point"
        dotted = get_registry().resolve(f"noether.core.trackers.{entry.class_name}")
        assert dotted is entry, f"expected {entry!r} by its class name, got {dotted!r}"
        broken = get_registry().broken
        assert broken == [], f"expected no broken plugins, got {broken!r}"

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
        _check_points(stored, "loss", [(0, 3.0), (1, 2.0), (1, 5.0), (2, 1.0)])
        _check_points(stored, "eval/loss", [(0, 0.5)])
        _check_points(stored, "acc", [(7, 0.25)])

    def test_nan_and_inf_are_kept(self, output_path: Path) -> None:
        """NaN and infinities are values, stored as such."""
        _, stored = self.run_once(
            output_path,
            lambda t: t.log({"nan": float("nan"), "inf": math.inf, "ninf": -math.inf}, step=3),
        )
        _check_points(stored, "nan", [(3, math.nan)])
        _check_points(stored, "inf", [(3, math.inf)])
        _check_points(stored, "ninf", [(3, -math.inf)])

    def test_text_round_trips_or_is_skipped_with_a_warning(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Text arrives where the backend supports it, and is skipped with a warning if not."""
        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(
                output_path, lambda t: t.log({"note": "hello", "loss": 1.0}, step=2)
            )
        _check_points(stored, "loss", [(2, 1.0)])
        if self._kind_shown(tracker, "text", "texts", "note", caplog):
            self._check_field(stored, "texts", "note", [(2, "hello")])

    def test_images_round_trip(self, output_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Images (RGB, grey, RGBA) arrive with their steps and sizes."""
        if _numpy_missing():
            self.not_run("images", "numpy, which Image needs, is not installed")
            return
        import numpy as np

        def body(tracker: Tracker) -> None:
            tracker.log({"sample": Image(np.zeros((4, 6, 3), dtype=np.uint8))}, step=1)
            tracker.log({"sample": Image(np.full((5, 7), 200, dtype=np.uint8))}, step=3)
            tracker.log({"sample": Image(np.ones((2, 3, 4)), caption="rgba"), "x": 1.0}, step=4)

        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(output_path, body)
        _check_points(stored, "x", [(4, 1.0)])
        if self._kind_shown(tracker, "image", "images", "sample", caplog):
            self._check_field(stored, "images", "sample", [(1, (4, 6)), (3, (5, 7)), (4, (2, 3))])

    def test_histograms_round_trip(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Histograms arrive with their steps and every (finite) value counted, also with more
        bins than some backends allow."""
        if _numpy_missing():
            self.not_run("histograms", "numpy, which Histogram needs, is not installed")
            return

        def body(tracker: Tracker) -> None:
            tracker.log({"weights": Histogram([0.5, 1.5, 1.5, 2.5, math.nan], bins=3)}, step=2)
            tracker.log({"weights": Histogram(list(range(1000)), bins=600), "x": 1.0}, step=5)

        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(output_path, body)
        _check_points(stored, "x", [(5, 1.0)])
        if self._kind_shown(tracker, "histogram", "histograms", "weights", caplog):
            self._check_field(stored, "histograms", "weights", [(2, 4), (5, 1000)])

    def test_tables_round_trip(self, output_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Tables arrive with their steps, columns (in order) and number of rows."""

        def body(tracker: Tracker) -> None:
            table = Table(["name", "score"], [["a", 1], ["b", 2.5]])
            tracker.log({"results": table}, step=4)
            tracker.log({"results": Table(["x"], [[1], [2], [3]]), "x": 1.0}, step=6)

        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(output_path, body)
        _check_points(stored, "x", [(6, 1.0)])
        if self._kind_shown(tracker, "table", "tables", "results", caplog):
            expected = [(4, (["name", "score"], 2)), (6, (["x"], 3))]
            self._check_field(stored, "tables", "results", expected)

    def test_unsupported_values_are_skipped_with_a_warning(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A value no backend can show is warned about and skipped, never an exception."""
        with caplog.at_level(logging.WARNING, "noether.trackers"):
            _, stored = self.run_once(
                output_path, lambda t: t.log({"ok": 1.0, "weird": object()}, step=0)
            )
        assert "cannot log 'weird'" in caplog.text, f"expected a warning, got {caplog.text!r}"
        _check_points(stored, "ok", [(0, 1.0)])
        assert "weird" not in stored.scalars, f"'weird' was stored: {stored.scalars['weird']}"

    def test_config_reaches_the_backend_redacted(self, output_path: Path) -> None:
        """The run's config arrives, with secret-looking values redacted."""
        config = {"lr": 0.1, "model": {"width": 8}, "api_key": "sk-secret"}
        _, stored = self.run_once(output_path, lambda t: None, config=config)
        if stored.config is None:
            self.not_run("config", "read_back gives no config")
            return
        flat = _flatten(stored.config)
        _check_values(flat, {"lr": 0.1, "model/width": 8, "api_key": REDACTED}, "config")
        shown = json.dumps(stored.config, default=str)
        assert "sk-secret" not in shown, f"the secret is stored in the config: {shown}"

    def test_summary_reaches_the_backend(self, output_path: Path) -> None:
        """What ``set_summary`` sets and the end-of-run best/last summary are stored."""

        def body(tracker: Tracker) -> None:
            for loss in (3.0, 1.0, 2.0):
                tracker.log({"loss": loss})
            tracker.set_summary("best_epoch", 1)

        _, stored = self.run_once(output_path, body)
        if stored.summary is None:
            self.not_run("summary", "read_back gives no summary")
            return
        expected = {"best_epoch": 1, "loss/min": 1.0, "loss/last": 2.0}
        _check_values(_flatten(stored.summary), expected, "summary")

    @pytest.mark.parametrize("status", RUN_STATUSES)
    def test_final_status_is_stored(self, output_path: Path, status: RunStatus) -> None:
        """The status given to ``close()`` (every one of them) is the status the backend
        shows for the run, and the values logged before it are kept."""
        _, stored = self.run_once(output_path, lambda t: t.log({"loss": 1.0}), status=status)
        _check_points(stored, "loss", [(0, 1.0)])
        if stored.status is None:
            self.not_run("status", "read_back gives no status")
            return
        assert stored.status == status, f"expected status {status!r}, stored {stored.status!r}"

    def test_display_name_shows_run_and_stage(self, output_path: Path) -> None:
        """A run with a stage is shown as ``run_name/stage_name``, and its values arrive."""
        _, stored = self.run_once(
            output_path, lambda t: t.log({"loss": 1.0}, step=0), stage_name=STAGE_NAME
        )
        _check_points(stored, "loss", [(0, 1.0)])
        if stored.display_name is None:
            self.not_run("display name", "read_back gives no display_name")
            return
        expected = f"{RUN_NAME}/{STAGE_NAME}"
        assert stored.display_name == expected, (
            f"expected display name {expected!r}, stored {stored.display_name!r}"
        )

    def test_a_resumed_run_keeps_both_parts(self, output_path: Path) -> None:
        """Started again with the same run id and output path, the run resumes: steps go on
        after the last one, and the backend shows both parts, nothing lost or twice."""
        config = {"lr": 0.5}

        def first(tracker: Tracker) -> None:
            tracker.log({"loss": 4.0})  # step 0
            tracker.log({"loss": 3.0, "note": "first part"})  # step 1
            tracker.set_summary("best_epoch", 1)

        def second(tracker: Tracker) -> None:
            tracker.log({"loss": 2.0, "note": "second part"})  # step 2
            tracker.log({"loss": 1.0})  # step 3

        self.run_once(output_path, first, config=config)
        backend, stored = self.run_once(output_path, second, config=config)
        resumed = backend.run is not None and backend.run.resumed
        assert resumed, f"expected the second part to resume the run, got {backend.run!r}"
        _check_points(stored, "loss", [(0, 4.0), (1, 3.0), (2, 2.0), (3, 1.0)])
        if "text" in backend.supported_values and stored.texts is not None:
            self._check_field(stored, "texts", "note", [(1, "first part"), (2, "second part")])
        if stored.config is not None:
            _check_values(_flatten(stored.config), config, "config of the resumed run")
        if stored.summary is None:
            self.not_run("summary of a resumed run", "read_back gives no summary")
            return
        expected = {"best_epoch": 1, "loss/min": 1.0, "loss/last": 1.0}
        _check_values(_flatten(stored.summary), expected, "summary of the resumed run")

    def test_a_failed_init_gets_no_further_call(
        self, output_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A required backend whose ``_init`` raises stops ``init()`` with a
        :class:`TrackerConfigError` naming the error, and gets no further call (no ``_log``,
        no summary, no ``_flush``, no ``_close``)."""
        monkeypatch.setenv("NOETHER_TRACKERS_DELIVERY", "thread")  # to see the calls here
        tracker = self.make_tracker(output_path)
        [backend] = tracker.backends
        assert isinstance(backend, BaseTracker), f"expected a BaseTracker, got {backend!r}"
        calls: list[str] = []
        backend.__class__ = _refusing_subclass(type(backend), calls)
        with pytest.raises(TrackerConfigError) as raised:
            tracker.init(run_name=RUN_NAME, run_id=RUN_ID)
        assert FAILED_INIT_MESSAGE in str(raised.value), (
            f"expected the error to name {FAILED_INIT_MESSAGE!r}, got {str(raised.value)!r}"
        )
        tracker.log({"loss": 1.0})
        tracker.set_summary("best_epoch", 1)
        tracker.close(timeout=60)
        locations = tracker.run_locations()
        assert calls == ["_init"], f"expected only the failed _init, the backend got {calls}"
        assert locations == [], f"expected no run location, got {locations}"

    def test_values_logged_just_before_close_arrive(
        self, output_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Whatever is logged right before ``close()`` (no flush in between) is stored."""

        def body(tracker: Tracker) -> None:
            for step in range(50):
                tracker.log({"late/loss": float(step)}, step=step)
            tracker.log({"late/note": "bye", "late/last": 0.5}, step=49)
            tracker.set_summary("late/final", 7)

        with caplog.at_level(logging.WARNING, "noether.trackers"):
            tracker, stored = self.run_once(output_path, body)
        _check_points(stored, "late/loss", [(step, float(step)) for step in range(50)])
        _check_points(stored, "late/last", [(49, 0.5)])
        if self._kind_shown(tracker, "text", "late text", "late/note", caplog):
            self._check_field(stored, "texts", "late/note", [(49, "bye")])
        if stored.summary is None:
            self.not_run("late summary", "read_back gives no summary")
            return
        _check_values(_flatten(stored.summary), {"late/final": 7}, "summary")

    def test_close_is_idempotent_and_safe_before_init(self, output_path: Path) -> None:
        """``close()`` twice, and ``close()`` before ``init()``, do nothing bad."""
        self.make_tracker(output_path).close()
        tracker = self.make_tracker(output_path)
        tracker.init(run_name=RUN_NAME)
        tracker.close()
        tracker.close()
        assert tracker.status == "finished", f"expected status 'finished', got {tracker.status!r}"

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
        assert done.returncode == 0, f"expected exit code 0, got {done.returncode}: {done.stderr}"
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

    # ---- checks shared by the tests above ---------------------------------------------------

    def _kind_shown(
        self,
        tracker: BaseTracker,
        kind: str,
        check: str,
        key: str,
        caplog: pytest.LogCaptureFixture,
    ) -> bool:
        """Whether the backend shows ``kind`` values; if not, check that logging ``key`` was
        skipped with a warning and record ``check`` as not run."""
        if kind not in tracker.supported_values:
            warning = f"skipping '{key}'"
            assert warning in caplog.text, (
                f"{type(tracker).__name__} does not show {kind} values: expected a warning "
                f"{warning!r}, got {caplog.text!r}"
            )
            self.not_run(check, f"the backend does not show {kind} values")
            return False
        return True

    def _check_field(
        self, stored: StoredRun, field_name: str, key: str, expected: list[tuple[int, Any]]
    ) -> None:
        """``stored.<field_name>[key]`` holds the ``expected`` points (any order); a field
        that read_back leaves None is recorded as not run."""
        points = getattr(stored, field_name)
        if points is None:
            self.not_run(field_name, f"read_back gives no {field_name}")
            return
        stored_points = sorted(points.get(key, []), key=_plain)
        assert sorted(map(_plain, stored_points)) == sorted(map(_plain, expected)), (
            f"{field_name}[{key!r}]: expected {sorted(expected, key=_plain)}, stored "
            f"{stored_points} (stored keys: {sorted(points)})"
        )


def _kit_tests() -> list[str]:
    return [name for name in vars(TrackerConformanceTests) if name.startswith("test_")]


def _marked_expected_to_fail(function: Any) -> bool:
    marks = getattr(function, "pytestmark", [])
    return any(mark.name == "xfail" and mark.kwargs.get("reason") for mark in marks)


def _numpy_missing() -> bool:
    return importlib.util.find_spec("numpy") is None


def _number(value: Any) -> float | None:
    """``value`` as a float when the comparison rule takes it for a number: a number (not a
    bool), or a string that ``float()`` parses; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    try:  # numpy scalars and other numbers
        return float(value) if hasattr(value, "__float__") else None
    except (TypeError, ValueError):
        return None


def same_value(stored: Any, logged: Any) -> bool:
    """The kit's one rule for comparing a stored value with a logged one (see the module
    docstring): a logged number equals a stored number or numeric string of the same float
    value (NaN equals NaN); anything else equals only what is equal to it."""
    if isinstance(logged, int | float) and not isinstance(logged, bool):
        number = _number(stored)
        if number is None:
            return False
        return number == logged or (math.isnan(number) and math.isnan(logged))
    return isinstance(stored, bool) == isinstance(logged, bool) and bool(stored == logged)


def _points(stored: StoredRun, key: str) -> list[tuple[int, Any]]:
    return sorted(
        ((int(step), value) for step, value in stored.scalars.get(key, [])),
        key=lambda point: (point[0], _sort_key(point[1])),
    )


def _sort_key(value: Any) -> tuple[int, float, str]:
    number = _number(value)
    if number is None:
        return (2, 0.0, repr(value))
    return (1, 0.0, "") if math.isnan(number) else (0, number, "")


def _check_points(stored: StoredRun, key: str, expected: list[tuple[int, float]]) -> None:
    """The scalar ``key`` holds exactly the ``expected`` points (in any order), each value
    equal by :func:`same_value`."""
    actual = _points(stored, key)
    wanted = sorted(expected, key=lambda point: (point[0], _sort_key(point[1])))
    matches = len(actual) == len(wanted) and all(
        step == wanted_step and same_value(value, wanted_value)
        for (step, value), (wanted_step, wanted_value) in zip(actual, wanted, strict=True)
    )
    assert matches, (
        f"scalar {key!r}: expected points {wanted}, stored {actual} "
        f"(stored scalars: {sorted(stored.scalars)})"
    )


def _check_values(flat: Mapping[str, Any], expected: Mapping[str, Any], what: str) -> None:
    """Every key of ``expected`` is in ``flat`` with a value equal by :func:`same_value`."""
    wrong = {
        key: flat.get(key, "<missing>")
        for key, value in _flatten(dict(expected)).items()
        if key not in flat or not same_value(flat[key], value)
    }
    assert not wrong, (
        f"{what}: expected {dict(expected)}, but these keys are stored differently: {wrong} "
        f"(stored: {dict(flat)})"
    )


def _plain(point: Iterable[Any]) -> tuple[Any, ...]:
    """A media point with its numbers as floats and sequences as tuples, to compare."""
    step, value = point
    return (int(step), _plain_value(value))


def _plain_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_plain_value(item) for item in value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _refusing_subclass(base: type[BaseTracker], calls: list[str]) -> type[BaseTracker]:
    """A subclass of the plugin's backend class whose ``_init`` raises, and which records
    in ``calls`` every backend method the run calls on it."""

    def recording(name: str) -> Callable[..., Any]:
        def method(self: BaseTracker, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return getattr(super(refusing, self), name)(*args, **kwargs)

        method.__name__ = name
        return method

    def _init(self: BaseTracker, run: Any) -> None:
        calls.append("_init")
        raise RuntimeError(FAILED_INIT_MESSAGE)

    names = ("_log", "_set_summary", "_update_summary", "_flush", "_close", "run_location")
    namespace: dict[str, Any] = {name: recording(name) for name in names}
    namespace["_init"] = _init
    refusing = type(f"Refusing{base.__name__}", (base,), namespace)
    return refusing


def _flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts flattened with ``/`` (and dotted keys read as ``/``)."""
    return {key.replace(".", "/"): value for key, value in flatten(data).items()}
