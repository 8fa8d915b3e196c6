"""The conformance kit's own tests: it passes a correct plugin, catches a broken one, and
cannot be silently weakened by a subclass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from noether.core.trackers.pytest_plugin import NOT_RUN_TITLE
from noether.core.trackers.run_info import RUN_STATUSES
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests, same_value

pytest_plugins = ["pytester"]

MEMORY_PLUGIN = '''
import os
import pickle
from noether.core.trackers.base import BaseTracker
from noether.core.trackers.hookspecs import hookimpl
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.values import VALUE_KINDS

class MemoryTracker(BaseTracker):
    """Keeps everything in memory (and in a file of the output path, for a resumed run);
    NOETHER_KIT_BREAK names the contract point to break, NOETHER_KIT_UNSUPPORTED a value
    kind it does not show."""

    supported_values = VALUE_KINDS - {os.environ.get("NOETHER_KIT_UNSUPPORTED")}

    def _init(self, run):
        self.file = run.output_path / "memory.pickle"
        broken = os.environ.get("NOETHER_KIT_BREAK")
        if run.resumed and broken != "resume":
            self.stored = pickle.loads(self.file.read_bytes())
        else:
            self.stored = {
                "scalars": {}, "texts": {}, "images": {}, "histograms": {}, "tables": {},
                "config": run.config, "summary": {}, "status": None,
                "display_name": run.display_name,
            }
        self.last_step = -1

    def _log(self, values, step):
        broken = os.environ.get("NOETHER_KIT_BREAK")
        if broken == "earlier-steps" and step < self.last_step:
            return  # what W&B does without care: drop values at earlier steps
        self.last_step = max(self.last_step, step)
        for key, value in values.items():
            if isinstance(value, str):
                self.stored["texts"].setdefault(key, []).append((step, value))
            elif isinstance(value, Image):
                size = (value.width, value.height) if broken == "image-size" else (
                    value.height, value.width)
                self.stored["images"].setdefault(key, []).append((step, size))
            elif isinstance(value, Histogram):
                self.stored["histograms"].setdefault(key, []).append((step, value.num))
            elif isinstance(value, Table):
                shape = (list(value.columns), len(value.rows))
                self.stored["tables"].setdefault(key, []).append((step, shape))
            else:
                if broken == "nan" and value != value:
                    value = 0.0
                if broken == "strings":
                    value = repr(value)  # as MLflow stores params: equal by the kit's rule
                self.stored["scalars"].setdefault(key, []).append((step, value))

    def _update_summary(self, values):
        self.stored["summary"].update(values)

    def _close(self, status):
        broken = os.environ.get("NOETHER_KIT_BREAK")
        self.stored["status"] = "finished" if broken == "status" else status
        self.file.write_bytes(pickle.dumps(self.stored))

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

#: A kit subclass whose read_back reads neither images nor the status.
PARTIAL_KIT_SUBCLASS = """
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests

class TestPartialMemoryTracker(TrackerConformanceTests):
    kind = "memory"

    def read_back(self, tracker):
        return StoredRun(**{**tracker.stored, "images": None, "status": None})
"""

#: The kit's test items: its test methods, the status test once per status.
KIT_ITEMS = (
    len([n for n in vars(TrackerConformanceTests) if n.startswith("test_")]) + len(RUN_STATUSES) - 1
)


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


def run_kit(
    pytester: pytest.Pytester, *arguments: str, subclass: str = KIT_SUBCLASS
) -> pytest.RunResult:
    """Run the kit against the in-memory plugin in a pytest subprocess (which loads the kit's
    pytest plugin from its entry point, as a plugin author's pytest does)."""
    pytester.makepyfile(test_memory_conformance=subclass)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *arguments)


def test_a_correct_plugin_passes_every_kit_test(
    memory_plugin: Path, pytester: pytest.Pytester
) -> None:
    result = run_kit(pytester)
    result.assert_outcomes(passed=KIT_ITEMS)
    assert NOT_RUN_TITLE not in result.stdout.str()


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


@pytest.mark.parametrize(
    ("broken", "selected", "failures", "shown"),
    [
        (
            "status",
            "test_final_status_is_stored",
            3,
            [
                "AssertionError: expected status 'terminated', stored 'finished'",
                "assert 'finished' == 'terminated'",  # pytest's own rewritten explanation
            ],
        ),
        (
            "resume",
            "test_a_resumed_run_keeps_both_parts",
            1,
            [
                "AssertionError: scalar 'loss': expected points "
                "[(0, 4.0), (1, 3.0), (2, 2.0), (3, 1.0)], stored [(2, 2.0), (3, 1.0)]"
            ],
        ),
        (
            "image-size",
            "test_images_round_trip",
            1,
            [
                "AssertionError: images['sample']: expected [(1, (4, 6)), (3, (5, 7)), "
                "(4, (2, 3))], stored [(1, (6, 4)), (3, (7, 5)), (4, (3, 2))]"
            ],
        ),
    ],
)
def test_kit_failures_show_the_expected_and_the_stored_values(
    memory_plugin: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    broken: str,
    selected: str,
    failures: int,
    shown: list[str],
) -> None:
    """A broken contract point fails its kit test with a message holding both values."""
    monkeypatch.setenv("NOETHER_KIT_BREAK", broken)
    result = run_kit(pytester, "-k", selected)
    output = result.stdout.str()
    assert result.parseoutcomes().get("failed") == failures, output
    for text in shown:
        assert text in output


def test_stored_strings_equal_the_numbers_they_spell(
    memory_plugin: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that stores scalars as strings (as MLflow stores params) passes the scalar
    checks: the kit's one comparison rule."""
    monkeypatch.setenv("NOETHER_KIT_BREAK", "strings")
    result = run_kit(pytester, "-k", "scalars or nan_and_inf or just_before_close")
    result.assert_outcomes(passed=3)


def test_same_value_is_the_stated_rule() -> None:
    assert same_value("0.1", 0.1) and same_value(8.0, 8) and same_value(" 8 ", 8)
    assert same_value("nan", float("nan")) and same_value(float("inf"), float("inf"))
    assert not same_value("0.10001", 0.1) and not same_value("x", 1.0)
    assert not same_value(True, 1) and not same_value(1, True) and same_value(True, True)
    assert same_value("hello", "hello") and not same_value(1, "1")


def test_checks_that_cannot_run_are_listed_in_the_report(
    memory_plugin: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field read_back leaves None, or a kind the backend does not show, passes the test
    but is named in the section the kit's pytest plugin adds to the terminal summary."""
    monkeypatch.setenv("NOETHER_KIT_UNSUPPORTED", "table")
    result = run_kit(pytester, "-k", "images or tables or status", subclass=PARTIAL_KIT_SUBCLASS)
    result.assert_outcomes(passed=2 + len(RUN_STATUSES))
    result.stdout.fnmatch_lines(
        [
            f"*= {NOT_RUN_TITLE} =*",
            "TestPartialMemoryTracker: images (read_back gives no images)",
            "TestPartialMemoryTracker: tables (the backend does not show table values)",
            "TestPartialMemoryTracker: status (read_back gives no status)",
        ],
        consecutive=False,
    )
    section = result.stdout.str().split(NOT_RUN_TITLE, 1)[1]
    assert section.count("status (read_back gives no status)") == 1  # once, not per status


def test_without_the_pytest_plugin_a_check_not_run_is_a_warning(
    memory_plugin: Path, pytester: pytest.Pytester
) -> None:
    """With the kit's pytest plugin not loaded (autoloading off), a check that cannot run is
    still said: in pytest's warnings summary."""
    result = run_kit(
        pytester, "-p", "no:noether_trackers", "-k", "images", subclass=PARTIAL_KIT_SUBCLASS
    )
    result.assert_outcomes(passed=1, warnings=1)
    output = result.stdout.str()
    assert "TestPartialMemoryTracker: images not checked (read_back gives no images)" in output
    assert NOT_RUN_TITLE not in output


def test_the_pytest_plugin_imports_only_pytest() -> None:
    """The ``pytest11`` entry point loads in every pytest session of an environment with the
    core installed: it must import nothing but pytest (least of all the kit, which pytest must
    rewrite), and it must be registered."""
    import ast
    from importlib.metadata import entry_points

    from noether.core.trackers import pytest_plugin

    tree = ast.parse(Path(pytest_plugin.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "pytest"}
    [entry] = entry_points(group="pytest11").select(name="noether_trackers")
    assert entry.value == "noether.core.trackers.pytest_plugin"


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
