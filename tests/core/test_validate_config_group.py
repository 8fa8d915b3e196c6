"""Issue 10, point 7: a tracker config-group file (Noether's ``configs/tracker/wandb.yaml``, whose
root *is* the tracker section) is accepted as well as a full config with a ``tracker:`` key, and
a whole config given where a section belongs is named as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from noether.core.trackers import TrackerConfigError, config, create_tracker
from noether.core.trackers.cli import main
from noether.core.trackers.config import check_tracker_section, load_tracker_section

GROUP = "a tracker config-group file (its root is the tracker section)"
FULL = "a full config, under its `tracker:` key"


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``noether-trackers validate PATH``: exit status, stdout, stderr."""
    status = main(["validate", str(path)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        pytest.param("kind: tensorboard\nflush_secs: 5\n", "tensorboard", id="one-entry"),
        pytest.param("- kind: tensorboard\n- kind: noop\n", "tensorboard, noop", id="list"),
        pytest.param("null\n", "none (tracking disabled)", id="null"),
    ],
)
def test_validate_accepts_a_config_group_file_and_says_so(
    text: str, kinds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "configs" / "tracker" / "mine.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    status, out, err = validate(path, capsys)
    assert (status, err) == (0, "")
    assert out == f"{path}: OK (trackers: {kinds}) in {GROUP}\n"


def test_validate_says_when_it_read_a_full_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model: {kind: mlp}\ntracker:\n  kind: tensorboard\n")
    status, out, _ = validate(path, capsys)
    assert status == 0
    assert out == f"{path}: OK (trackers: tensorboard) in {FULL}\n"


def test_a_bad_config_group_file_is_reported_like_a_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tensorboard.yaml"
    path.write_text("kind: tensorboard\nflush_sec: 5\n")
    status, out, err = validate(path, capsys)
    assert (status, out) == (1, "")
    assert "tracker.flush_sec: unknown option; did you mean 'flush_secs'?" in err


def test_a_file_that_is_neither_says_what_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hyperparameters.yaml"
    path.write_text("train: {epochs: 1}\n")
    status, _, err = validate(path, capsys)
    assert status == 1
    assert "no `tracker:` key" in err and "no `kind`" in err and "tracker: null" in err


def test_load_tracker_section_returns_the_root_of_a_config_group_file(tmp_path: Path) -> None:
    path = tmp_path / "wandb.yaml"
    path.write_text("kind: wandb\nproject: p\nmode: offline\n")
    assert OmegaConf.to_container(load_tracker_section(path)) == {
        "kind": "wandb",
        "project": "p",
        "mode": "offline",
    }
    assert config.read_tracker_section(path).source == "config group"


@pytest.mark.parametrize(
    "whole",
    [
        pytest.param({"model": {"layers": 2}, "tracker": {"kind": "tensorboard"}}, id="dict"),
        pytest.param(OmegaConf.create({"tracker": None, "lr": 0.1}), id="omegaconf"),
    ],
)
def test_a_whole_config_where_a_section_belongs_is_named_as_such(whole: object) -> None:
    for call in (check_tracker_section, create_tracker):
        with pytest.raises(TrackerConfigError) as caught:
            call(whole)
        [problem] = caught.value.problems
        assert problem.startswith("tracker: got a whole config (it has a `tracker:` key")
        assert "config['tracker']" in problem
        assert "kind: missing" not in problem
