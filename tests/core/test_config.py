"""The ``tracker:`` section: what it accepts, and one clear error naming the YAML path for
everything it does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from noether.core.trackers import NoopTracker, Tracker, TrackerConfigError, create_tracker
from noether.core.trackers.config import check_tracker_section, load_tracker_section
from noether.core.trackers.registry import TrackerRegistry, get_registry
from recording_plugins import RecordingTracker, registry_with_test_plugin

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"


@pytest.fixture
def registry():
    return registry_with_test_plugin()


def problems_of(section: object, registry: object) -> list[str]:
    with pytest.raises(TrackerConfigError) as caught:
        check_tracker_section(section, registry)
    return caught.value.problems


BAD_CONFIGS = [
    pytest.param(
        {"kind": "tensorbord"},
        [
            "tracker.kind: unknown tracker kind 'tensorbord'",
            "installed kinds:",
            "did you mean 'tensorboard'?",
        ],
        id="unknown-kind-typo",
    ),
    pytest.param(
        {"kind": "os.system"},
        ["tracker.kind: unknown tracker kind 'os.system'", "module paths are never imported"],
        id="arbitrary-module-kind",
    ),
    pytest.param(
        {"kind": "tensorboard", "flush_sec": 5},
        ["tracker.flush_sec: unknown option; did you mean 'flush_secs'?"],
        id="typo-key",
    ),
    pytest.param(
        {"kind": "tensorboard", "flush_secs": "often"},
        ["tracker.flush_secs: expected int, got str 'often'"],
        id="wrong-type",
    ),
    pytest.param(
        {"kind": "tensorboard", "flush_secs": True},
        ["tracker.flush_secs: expected int, got bool True"],
        id="bool-is-not-int",
    ),
    pytest.param(
        {"kind": "needs-project"},
        ["tracker.project: missing required option (project: str)"],
        id="missing-required",
    ),
    pytest.param({"log_dir": "x"}, ["tracker.kind: missing"], id="missing-kind"),
    pytest.param({"kind": 3}, ["tracker.kind: expected str, got int 3"], id="kind-not-str"),
    pytest.param([], ["tracker: empty list"], id="empty-list"),
    pytest.param("tensorboard", ["tracker: expected a mapping with a `kind`"], id="bare-string"),
    pytest.param(
        [{"kind": "tensorboard"}, {"kind": "recorder", "mode": "medium"}],
        ["tracker[1].mode: expected 'fast' | 'slow', got str 'medium'"],
        id="list-entry-bad-literal",
    ),
    pytest.param(
        [{"kind": "tensorboard"}, ["nested"]],
        ["tracker[1]: expected a mapping with a `kind`; got list"],
        id="list-entry-not-mapping",
    ),
    pytest.param(
        {"kind": "recorder", "tags": ["a", 3]},
        ["tracker.tags: expected list[str] | null, got list ['a', 3]"],
        id="list-item-type",
    ),
    pytest.param(
        {"kind": "tensorboard", "flush_secs": 0},
        ["tracker.flush_secs: must be > 0; got 0"],
        id="constraint-in-annotation",
    ),
]


@pytest.mark.parametrize(("section", "expected"), BAD_CONFIGS)
def test_bad_config_gives_one_clear_error_naming_the_yaml_path(section, expected, registry) -> None:
    with pytest.raises(TrackerConfigError) as caught:
        create_tracker(section, registry=registry)
    message = str(caught.value)
    assert len(caught.value.problems) == 1, message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize(
    ("kind", "distribution"),
    [
        ("wandb", "noether-trackers-wandb"),
        ("noether.core.trackers.TrackioTracker", "noether-trackers-trackio"),
        ("tensorboard", "noether-trackers-tensorboard"),
    ],
)
def test_a_first_party_kind_that_is_not_installed_names_the_pip_install(
    kind: str, distribution: str
) -> None:
    only_core = TrackerRegistry()  # as if no plugin were installed
    [problem] = problems_of({"kind": kind, "project": "p"}, only_core)
    assert problem == (
        f"tracker.kind: tracker kind '{kind}' is provided by {distribution}, which is not "
        f"installed: pip install {distribution}"
    )


def test_unresolvable_env_interpolation_names_the_path(registry, monkeypatch) -> None:
    monkeypatch.delenv("NOETHER_TEST_UNSET", raising=False)
    section = OmegaConf.create(
        {"tracker": [{"kind": "tensorboard", "log_dir": "${oc.env:NOETHER_TEST_UNSET}"}]}
    )
    [problem] = problems_of(section.tracker, registry)
    assert problem.startswith("tracker[0].log_dir:")
    assert "NOETHER_TEST_UNSET" in problem


def test_missing_mandatory_value_names_the_path(registry) -> None:
    [problem] = problems_of(OmegaConf.create({"kind": "tensorboard", "log_dir": "???"}), registry)
    assert problem.startswith("tracker.log_dir:") and "Missing mandatory value" in problem


def test_every_problem_is_reported_at_once(registry) -> None:
    problems = problems_of(
        [{"kind": "tensorboard", "flush_secs": "x", "logdir": "y"}, {"kind": "nope"}], registry
    )
    assert [p.split(":")[0] for p in problems] == [
        "tracker[0].flush_secs",
        "tracker[0].logdir",
        "tracker[1].kind",
    ]


def test_a_kind_never_imports_a_module(registry) -> None:
    import sys

    sys.modules.pop("antigravity", None)
    problems_of({"kind": "antigravity"}, registry)
    problems_of({"kind": "antigravity.fly"}, registry)
    assert "antigravity" not in sys.modules


def test_null_and_noop_give_a_run_without_backends(tmp_path) -> None:
    for section in (None, OmegaConf.create({"tracker": None}).tracker, {"kind": "noop"}):
        tracker = create_tracker(section, tmp_path)
        assert isinstance(tracker, Tracker) and tracker.backends == ()
        tracker.init(run_name="off")
        tracker.log({"loss": 1.0})
        tracker.close()
    assert list(tmp_path.iterdir()) == []  # no tracking stores nothing


def test_the_noop_kind_is_the_noop_backend() -> None:
    assert get_registry().resolve("noop").tracker_class is NoopTracker


def test_short_dotted_and_alias_kinds_resolve_to_the_same_class(registry) -> None:
    from noether_trackers_tensorboard import TensorboardTracker

    for kind in ("tensorboard", "noether.core.trackers.TensorboardTracker"):
        [backend] = create_tracker({"kind": kind}, registry=registry).backends
        assert type(backend) is TensorboardTracker
    for kind in ("recorder", "test.Recorder", "noether.core.trackers.RecordingTracker"):
        [backend] = create_tracker({"kind": kind}, registry=registry).backends
        assert type(backend) is RecordingTracker


def test_a_list_fans_out_to_every_entry(registry, tmp_path) -> None:
    tracker = create_tracker(
        [{"kind": "recorder", "name": "a"}, {"kind": "recorder", "name": "b"}],
        tmp_path,
        registry=registry,
    )
    assert type(tracker) is Tracker and len(tracker.backends) == 2
    tracker.init(run_name="fan")
    tracker.log({"loss": 1.0})
    tracker.close()
    for child in tracker.backends:
        assert isinstance(child, RecordingTracker)
        assert child.logged() == [({"loss": 1.0}, 0)]


def test_env_interpolation_is_resolved(registry, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NOETHER_TEST_LOGDIR", "custom_logs")
    section = OmegaConf.create({"kind": "tensorboard", "log_dir": "${oc.env:NOETHER_TEST_LOGDIR}"})
    [backend] = create_tracker(section, tmp_path, registry=registry).backends
    assert backend.log_dir == tmp_path / "custom_logs"  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["tensorboard.yaml", "disabled.yaml"])
def test_seed_configs_load_unchanged(name: str) -> None:
    check_tracker_section(load_tracker_section(EXAMPLES / name))


def test_config_file_without_tracker_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 1}\n")
    with pytest.raises(TrackerConfigError, match=r"tracker: missing from .*tracker: null"):
        load_tracker_section(path)


def test_config_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("tracker: [unclosed\n")
    with pytest.raises(TrackerConfigError, match="not valid YAML"):
        load_tracker_section(path)
