"""Selecting Trackio from YAML: kinds, options, their checks, and a lazy import of trackio."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from noether.core.trackers import TrackerConfigError, create_tracker
from noether.core.trackers.registry import get_registry
from noether_trackers_trackio import TrackioTracker

SEED_YAML = """
tracker:
  kind: noether.core.trackers.TrackioTracker
  project: my-project
  space_id: my-hf-space-id   # optional
"""


def test_seed_yaml_selects_the_trackio_tracker(tmp_path: Path) -> None:
    section = OmegaConf.create(SEED_YAML).tracker
    [backend] = create_tracker(section, tmp_path).backends
    assert isinstance(backend, TrackioTracker)
    assert (backend.project, backend.space_id) == ("my-project", "my-hf-space-id")
    assert backend.output_path == tmp_path


def test_short_kind_dotted_kind_and_import_name_are_the_same_class(tmp_path: Path) -> None:
    from noether.core.trackers import TrackioTracker as imported

    registry = get_registry()
    assert imported is TrackioTracker
    assert registry.resolve("trackio").tracker_class is TrackioTracker
    assert registry.resolve("noether.core.trackers.TrackioTracker").kind == "trackio"
    assert registry.resolve("trackio").distribution == "noether-trackers-trackio"
    assert registry.resolve("trackio").backend_version is not None


def test_every_option_of_a_trackio_user_is_accepted(tmp_path: Path) -> None:
    config = OmegaConf.create(
        textwrap.dedent(
            """
            base: ${oc.env:TRACKIO_DIR}
            tracker:
              kind: trackio
              project: my-project
              space_id: me/space
              name: baseline
              group: sweep-1
              trackio_dir: ${base}/elsewhere
              resume: allow
              private: true
              space_timeout: 2.5
              on_space_unreachable: fail
            """
        )
    )
    [backend] = create_tracker(config.tracker, tmp_path).backends
    assert isinstance(backend, TrackioTracker)
    assert backend.name == "baseline" and backend.group == "sweep-1"
    assert backend.trackio_dir is not None and backend.trackio_dir.endswith("/elsewhere")
    assert (backend.resume, backend.private) == ("allow", True)
    assert (backend.space_timeout, backend.on_space_unreachable) == (2.5, "fail")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "tracker.project: missing required option (project: str)"),
        (
            {"project": "p", "projet": "q"},
            "tracker.projet: unknown option; did you mean 'project'?",
        ),
        ({"project": "p", "space_timeout": "ten"}, "tracker.space_timeout: expected float"),
        ({"project": 3}, "tracker.project: expected str, got int 3"),
        ({"project": "p", "resume": "yes"}, "tracker.resume: expected 'never' | 'allow' | 'must'"),
        ({"project": "p", "on_space_unreachable": "retry"}, "tracker.on_space_unreachable"),
        ({"project": "p", "space_timeout": 0}, "tracker.space_timeout: must be a positive number"),
        ({"project": "  "}, "tracker.project: must not be empty"),
        ({"project": "p", "name": ""}, "tracker.name: must not be empty"),
        (
            {"project": "p", "space_id": "a/b/c"},
            "tracker.space_id: must be 'user/space' or 'space'",
        ),
    ],
)
def test_wrong_options_give_one_clear_error_naming_the_yaml_path(
    options: dict[str, object], expected: str, tmp_path: Path
) -> None:
    with pytest.raises(TrackerConfigError) as caught:
        create_tracker({"kind": "trackio", **options}, tmp_path)
    assert expected in str(caught.value)
    assert len(caught.value.problems) == 1


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_trackio_is_imported_only_when_a_run_starts(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # A fresh interpreter: this test process has long imported trackio.
    script = textwrap.dedent(
        f"""
        import json, sys
        from noether.core.trackers import create_tracker
        from noether.core.trackers.registry import get_registry
        get_registry().resolve("trackio")
        tracker = create_tracker({{"kind": "trackio", "project": "lazy"}}, {str(tmp_path)!r})
        before = "trackio" in sys.modules
        tracker.init(run_name="r")
        after = "trackio" in sys.modules
        tracker.close()
        print(json.dumps([before, after]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**subprocess_env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [False, True]


def test_a_project_name_trackio_refuses_stops_the_run_before_training(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "trackio", "project": "registry-models"}, tmp_path)
    with pytest.raises(TrackerConfigError, match="reserved for trackio registries"):
        tracker.init(run_name="r")
