"""Issue 10, point 11: the error messages of a wrong config say exactly what is wrong and
where, and option values that make no sense are refused by the schema check from the
constructor's annotations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest

from noether.core.trackers import TrackerConfigError
from noether.core.trackers.cli import main
from noether.core.trackers.config import check_tracker_section, load_tracker_section
from noether.core.trackers.hookspecs import RegisterTracker, hookimpl
from noether.core.trackers.registry import TrackerRegistry
from noether.core.trackers.schema import Constraint, Finite, Ge, Gt, Option, tracker_options
from recording_plugins import RecordingTracker

ROOT = Path(__file__).resolve().parents[2]


def problems_of(section: object, registry: TrackerRegistry | None = None) -> list[str]:
    """The problems ``check_tracker_section`` reports for ``section``."""
    with pytest.raises(TrackerConfigError) as caught:
        check_tracker_section(section, registry)
    return caught.value.problems


# ---- (a) a misspelled kind ---------------------------------------------------------------------


def test_a_misspelled_kind_suggests_the_installed_one_without_an_install_hint() -> None:
    [problem] = problems_of({"kind": "tensorbord"})
    assert problem.startswith(
        "tracker.kind: unknown tracker kind 'tensorbord'; did you mean 'tensorboard'? "
        "(installed kinds: "
    )
    assert "?." not in problem and "pip install" not in problem


def test_an_unknown_kind_names_only_the_backends_that_are_not_installed() -> None:
    only_core = TrackerRegistry()
    [problem] = problems_of({"kind": "mlflow"}, only_core)
    assert problem == (
        "tracker.kind: unknown tracker kind 'mlflow'; installed kinds: none; backends are "
        "installed as plugins, e.g. pip install noether-trackers-wandb, pip install "
        "noether-trackers-trackio, pip install noether-trackers-tensorboard"
    )
    [problem] = problems_of({"kind": "mlflow"})  # every first-party plugin is installed here
    assert problem.endswith("; pip install the plugin distribution that provides it")


# ---- (b) a misspelled `kind` key ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["kidn", "knid", "Kind", "kinds"])
def test_a_misspelled_kind_key_is_suggested(key: str) -> None:
    [problem] = problems_of([{"kind": "noop"}, {key: "tensorboard"}])
    assert problem == (
        "tracker[1].kind: missing (every tracker entry names its kind); "
        f"did you mean 'kind' instead of '{key}'?"
    )


def test_a_config_group_file_with_a_misspelled_kind_key_gets_the_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "csv.yaml"
    path.write_text("kidn: csv\n")
    assert main(["validate", str(path)]) == 1
    assert "did you mean 'kind' instead of 'kidn'?" in capsys.readouterr().err


# ---- (c) invalid YAML --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("tracker:\n  kind: tensorboard\n   flush_secs: 5\n", "at line 3, column 14: "),
        ("tracker: [unclosed\n", "at line 2, column 1: "),
        ("tracker: null\ntracker: null\n", "at line 2, column 1: found duplicate key tracker"),
    ],
)
def test_invalid_yaml_names_the_file_once_with_line_and_column(
    text: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TrackerConfigError) as caught:
        load_tracker_section(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML {where}")
    assert "\n" not in problem and problem.count(str(path)) == 1
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count(str(path)) == 1 and where in err


def test_a_file_that_cannot_be_read_is_not_called_invalid_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omegaconf import OmegaConf

    def refuse(path: object) -> None:
        raise PermissionError(13, "Permission denied")

    path = tmp_path / "c.yaml"
    path.write_text("tracker: null\n")
    monkeypatch.setattr(OmegaConf, "load", refuse)  # as for a file without read permission
    assert problems_of_file(path) == [f"{path}: cannot read: Permission denied"]


def problems_of_file(path: Path) -> list[str]:
    """The problems ``load_tracker_section`` reports for the file ``path``."""
    with pytest.raises(TrackerConfigError) as caught:
        load_tracker_section(path)
    return caught.value.problems


# ---- (d) the example stops on a bad config with the message, no traceback ----------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tracker:\n  kind: tensorboard\n  flush_sec: 5\n", "did you mean 'flush_secs'?"),
        ("tracker: [unclosed\n", "not valid YAML at line 2, column 1"),
    ],
)
def test_the_example_prints_the_message_and_exits_2_on_a_bad_config(
    text: str, message: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), "--config", str(config)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1


# ---- (e) values that make no sense, declared in the constructor's annotations ------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"kind": "tensorboard", "flush_secs": -5}, "tracker[0].flush_secs: must be > 0; got -5"),
        ({"kind": "tensorboard", "flush_secs": 0}, "tracker[0].flush_secs: must be > 0; got 0"),
        (
            {"kind": "trackio", "project": "p", "space_timeout": 0},
            "tracker[0].space_timeout: must be a positive number of seconds; got 0",
        ),
        (
            {"kind": "trackio", "project": "p", "space_timeout": float("inf")},
            "tracker[0].space_timeout: must be a finite number; got inf",
        ),
        (
            {"kind": "wandb", "init_timeout": -1.5},
            "tracker[0].init_timeout: must be a positive number of seconds; got -1.5",
        ),
        (
            {"kind": "wandb", "init_timeout": float("nan")},
            "tracker[0].init_timeout: must be a positive number of seconds; got nan",
        ),
    ],
)
def test_nonsense_values_are_refused_by_the_schema_check(
    entry: dict[str, object], problem: str
) -> None:
    # check_tracker_section builds no tracker: the annotation alone refuses the value
    assert problems_of([entry]) == [problem]


def test_validate_refuses_a_negative_flush_secs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("tracker:\n  - kind: tensorboard\n    flush_secs: -5\n")
    assert main(["validate", str(path)]) == 1
    assert "tracker[0].flush_secs: must be > 0; got -5" in capsys.readouterr().err


def test_first_party_constraints_are_declared_in_the_annotations() -> None:
    from noether_trackers_tensorboard.tracker import TensorboardTracker
    from noether_trackers_trackio.tracker import TrackioTracker
    from noether_trackers_wandb.tracker import WandBTracker

    seconds = (Gt(0, "a positive number of seconds"), Finite())
    assert tracker_options(TensorboardTracker, frozenset())["flush_secs"].constraints == (Gt(0),)
    assert tracker_options(TrackioTracker, frozenset())["space_timeout"].constraints == seconds
    assert tracker_options(WandBTracker, frozenset())["init_timeout"].constraints == seconds
    assert tracker_options(TensorboardTracker, frozenset())["flush_secs"].annotation is int


class NonEmpty(Constraint):
    """A plugin's own constraint on text: it is about strings, not numbers."""

    def applies(self, value: object) -> bool:
        """Strings only."""
        return isinstance(value, str)

    def holds(self, value: object) -> bool:
        """True for text with more than blanks."""
        return bool(str(value).strip())

    def describe(self) -> str:
        """``non-empty``."""
        return "non-empty"


class ConstrainedTracker(RecordingTracker):
    """A third-party tracker declaring its own constraints, also on an optional option."""

    def __init__(
        self,
        *,
        retries: Annotated[int, Ge(0)] = 3,
        ratio: Annotated[float, Gt(0), Finite()] | None = None,
        label: Annotated[str, NonEmpty()] = "run",
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(output_path=output_path)


class ConstrainedPlugin:
    """Registers :class:`ConstrainedTracker` as the kind ``constrained``."""

    @hookimpl
    def register_trackers(self, register: RegisterTracker) -> None:
        register(ConstrainedTracker, kind="constrained")


def constrained_registry() -> TrackerRegistry:
    """A registry with only the kind ``constrained``."""
    registry = TrackerRegistry()
    registry.add_plugin(ConstrainedPlugin(), name="constrained")
    return registry


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        ({"retries": 0, "ratio": None}, []),
        ({"retries": 0, "ratio": 0.5}, []),
        ({"retries": -1}, ["tracker.retries: must be >= 0; got -1"]),
        ({"ratio": 0}, ["tracker.ratio: must be > 0; got 0"]),
        ({"ratio": float("-inf")}, ["tracker.ratio: must be > 0; got -inf"]),
        ({"ratio": float("inf")}, ["tracker.ratio: must be a finite number; got inf"]),
        ({"retries": "many"}, ["tracker.retries: expected int, got str 'many'"]),
        ({"retries": True}, ["tracker.retries: expected int, got bool True"]),
        ({"label": " "}, ["tracker.label: must be non-empty; got ' '"]),
        (
            {"label": "a", "retries": -2, "ratio": -1.0},
            [
                "tracker.retries: must be >= 0; got -2",
                "tracker.ratio: must be > 0; got -1.0",
            ],
        ),
    ],
)
def test_a_plugin_declares_constraints_with_annotated(
    options: dict[str, object], problems: list[str]
) -> None:
    section = {"kind": "constrained", **options}
    registry = constrained_registry()
    if problems:
        assert problems_of(section, registry) == problems
    else:
        [entry] = check_tracker_section(section, registry)
        assert entry.options == options


def test_an_option_describes_its_constraints() -> None:
    options = tracker_options(ConstrainedTracker, frozenset({"output_path"}))
    assert options["retries"].describe() == "retries: int (>= 0) = 3"
    assert options["ratio"].describe() == "ratio: float | null (> 0, a finite number) = None"
    assert Option("x", int, 1).describe() == "x: int = 1"
