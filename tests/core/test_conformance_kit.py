"""The conformance kit's own tests: it passes a correct plugin, catches a broken one, and
cannot be silently weakened by a subclass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

pytest_plugins = ["pytester"]

MEMORY_PLUGIN = '''
import os
from noether.core.trackers.base import BaseTracker
from noether.core.trackers.hookspecs import hookimpl

class MemoryTracker(BaseTracker):
    """Keeps everything in memory; NOETHER_KIT_BREAK names the contract point to break."""

    def _init(self, run):
        self.stored = {"scalars": {}, "texts": {}, "config": run.config, "summary": {}}
        self.last_step = -1

    def _log(self, values, step):
        broken = os.environ.get("NOETHER_KIT_BREAK")
        if broken == "earlier-steps" and step < self.last_step:
            return  # what W&B does without care: drop values at earlier steps
        self.last_step = max(self.last_step, step)
        for key, value in values.items():
            if isinstance(value, str):
                self.stored["texts"].setdefault(key, []).append((step, value))
            else:
                if broken == "nan" and value != value:
                    value = 0.0
                self.stored["scalars"].setdefault(key, []).append((step, value))

    def _update_summary(self, values):
        self.stored["summary"].update(values)

@hookimpl
def register_trackers(register):
    register(MemoryTracker, kind="memory")
'''

KIT_SUBCLASS = """
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

class TestMemoryTracker(TrackerConformanceTests):
    kind = "memory"

    def read_back(self, tracker):
        return StoredRun(**tracker.stored)
"""


@pytest.fixture
def memory_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the in-memory plugin as a distribution with an entry point (on PYTHONPATH)."""
    site = tmp_path / "site"
    info = site / "noether_trackers_memory-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: noether-trackers-memory\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text("[noether.trackers]\nmemory = memory_plugin\n")
    (site / "memory_plugin.py").write_text(textwrap.dedent(MEMORY_PLUGIN))
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def run_kit(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_memory_conformance=KIT_SUBCLASS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_a_correct_plugin_passes_every_kit_test(
    memory_plugin: Path, pytester: pytest.Pytester
) -> None:
    result = run_kit(pytester)
    result.assert_outcomes(
        passed=len([n for n in vars(TrackerConformanceTests) if n.startswith("test_")])
    )


@pytest.mark.parametrize(
    ("broken", "failing_test"),
    [("earlier-steps", "test_scalars_round_trip_with_steps"), ("nan", "test_nan_and_inf_are_kept")],
)
def test_the_kit_catches_a_plugin_that_breaks_the_contract(
    memory_plugin: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    broken: str,
    failing_test: str,
) -> None:
    monkeypatch.setenv("NOETHER_KIT_BREAK", broken)
    result = run_kit(pytester)
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    result.stdout.fnmatch_lines([f"*FAILED*{failing_test}*"])


def test_a_subclass_cannot_silently_replace_a_kit_test() -> None:
    with pytest.raises(TypeError, match=r"replaces a conformance test.*xfail"):

        class Weakened(TrackerConformanceTests):
            kind = "x"

            def test_nan_and_inf_are_kept(self, output_path: Path) -> None:  # type: ignore[override]
                pass

    with pytest.raises(TypeError, match="replaces a conformance test"):

        class Deleted(TrackerConformanceTests):
            kind = "x"
            test_nan_and_inf_are_kept = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="replaces a conformance test"):

        class NoReason(TrackerConformanceTests):
            kind = "x"

            @pytest.mark.xfail
            def test_nan_and_inf_are_kept(self, output_path: Path) -> None:  # type: ignore[override]
                pass


def test_a_subclass_may_mark_a_kit_test_expected_to_fail_with_a_reason() -> None:
    class Honest(TrackerConformanceTests):
        kind = "x"

        @pytest.mark.xfail(reason="this backend stores float32 and cannot hold NaN")
        def test_nan_and_inf_are_kept(self, output_path: Path) -> None:  # type: ignore[override]
            super().test_nan_and_inf_are_kept(output_path)

    assert Honest.kind == "x" and StoredRun().scalars == {}
