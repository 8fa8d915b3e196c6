"""Which metrics are best when low or high: substring defaults as in the Noether original, and
rules the user declares in YAML (``summary:``) and in code (``init(summary_directions=...)``),
validated like other options, kept by resume and replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from noether.core.trackers import TrackerConfigError, create_tracker
from noether.core.trackers.cli import main
from noether.core.trackers.journal import read_journal
from noether.core.trackers.summary import Direction, SummaryDirections, metric_direction

VALUES = {
    "trainloss": [3.0, 1.0, 2.0],  # "loss" anywhere in the name, as the original matches
    "val/LossCE": [3.0, 1.0, 2.0],
    "val/perplexity": [30.0, 10.0, 20.0],
    "val/score_bleu": [0.1, 0.5, 0.3],
    "amp/loss_scale": [1.0, 4.0, 2.0],  # "loss" in its name, but not a loss
    "grad_norm": [1.0, 0.5, 2.0],  # matches nothing: only /last
}


def run_summary(
    output: Path, section: Any, directions: dict[str, Any] | None = None
) -> dict[str, Any]:
    tracker = create_tracker(section, output)
    tracker.init(run_name="directions", run_id="r1", summary_directions=directions)
    for step in range(3):
        tracker.log({key: values[step] for key, values in VALUES.items()})
    tracker.close()
    summary: dict[str, Any] = yaml.safe_load((output / "summary.yaml").read_text())
    return summary


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("trainloss", Direction.LOWER),
        ("val/LossCE", Direction.LOWER),
        ("reconstruction_error", Direction.LOWER),
        ("valerror", Direction.LOWER),
        ("testaccuracy", Direction.HIGHER),
        ("loss_time", Direction.NEUTRAL),  # a neutral word still wins
        ("grad_norm", Direction.NEUTRAL),
    ],
)
def test_default_directions_match_loss_and_error_anywhere(key: str, direction: Direction) -> None:
    assert metric_direction(key) is direction
    assert SummaryDirections().direction(key) is direction


def test_yaml_rules_decide_before_the_defaults(tmp_path: Path) -> None:
    section = {
        "kind": "tensorboard",
        "summary": {
            "min": ["*perplexity*"],
            "max": "val/score_*",  # one pattern may be a str
            "last": ["amp/*"],
        },
    }
    summary = run_summary(tmp_path, section)
    assert summary["trainloss/min"] == 1.0 and summary["val/LossCE/min"] == 1.0
    assert summary["val/perplexity/min"] == 10.0
    assert summary["val/score_bleu/max"] == 0.5
    assert "amp/loss_scale/min" not in summary and summary["amp/loss_scale/last"] == 2.0
    assert "grad_norm/min" not in summary and summary["grad_norm/last"] == 2.0


def test_rules_in_code_come_before_the_yaml_rules(tmp_path: Path) -> None:
    section = {"kind": "tensorboard", "summary": {"min": ["*bleu*"]}}
    summary = run_summary(tmp_path, section, {"max": ["*BLEU*"], "min": ["grad_*"]})
    assert summary["val/score_bleu/max"] == 0.5 and "val/score_bleu/min" not in summary
    assert summary["grad_norm/min"] == 0.5


def test_a_fanout_takes_the_rules_of_every_entry(tmp_path: Path) -> None:
    section = [
        {"kind": "tensorboard", "summary": {"max": ["*bleu*"]}},
        {"kind": "csv", "summary": {"min": ["grad_*"]}},
    ]
    summary = run_summary(tmp_path, section)
    assert summary["val/score_bleu/max"] == 0.5 and summary["grad_norm/min"] == 0.5


@pytest.mark.parametrize(
    ("summary", "message"),
    [
        (
            {"mni": ["*x*"]},
            "tracker.summary: 'mni' is not a direction (use min, max or last); did you mean 'min'?",
        ),
        ({"min": [""]}, "tracker.summary: a pattern of 'min' is empty"),
        ({"min": 5}, "tracker.summary: expected dict[str, list[str] | str] | null, got dict"),
        (["*loss*"], "tracker.summary: expected dict"),
    ],
)
def test_bad_rules_are_refused_with_their_yaml_path(summary: Any, message: str) -> None:
    with pytest.raises(TrackerConfigError) as refused:
        create_tracker({"kind": "tensorboard", "summary": summary})
    assert message in str(refused.value)


def test_two_entries_giving_one_pattern_two_directions_are_refused() -> None:
    section = [
        {"kind": "tensorboard", "summary": {"min": ["*score*"]}},
        {"kind": "csv", "summary": {"max": ["*SCORE*"]}},
    ]
    with pytest.raises(TrackerConfigError) as refused:
        create_tracker(section)
    assert (
        "tracker[1].summary.max: pattern '*SCORE*' is 'min' in tracker[0].summary; "
        "give it one direction"
    ) in str(refused.value)


def test_validate_checks_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n  summary:\n    best: ['*x*']\n")
    assert main(["validate", str(config)]) != 0
    assert "tracker.summary: 'best' is not a direction" in capsys.readouterr().err
    config.write_text("tracker:\n  kind: tensorboard\n  summary:\n    max: ['*bleu*']\n")
    assert main(["validate", str(config)]) == 0


def test_bad_rules_in_code_name_the_argument(tmp_path: Path) -> None:
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)
    with pytest.raises(ValueError, match="summary_directions: 'best' is not a direction"):
        tracker.init(run_name="r", summary_directions={"best": ["*"]})


def test_the_journal_keeps_the_rules_and_replay_uses_them(tmp_path: Path) -> None:
    section = {"kind": "tensorboard", "summary": {"max": ["*perplexity*"]}}
    original = run_summary(tmp_path / "run", section)
    [init] = [r for r in read_journal(tmp_path / "run") if r["op"] == "init"]
    assert init["summary_directions"] == [["*perplexity*", "max"]]
    target = tmp_path / "target.yaml"
    target.write_text("tracker:\n  kind: tensorboard\n")  # no rules of its own
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "noether.core.trackers.cli",
            "replay",
            str(tmp_path / "run"),
            "--to",
            str(target),
            "--output",
            str(tmp_path / "replayed"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    replayed = yaml.safe_load((tmp_path / "replayed" / "summary.yaml").read_text())
    assert original["val/perplexity/max"] == replayed["val/perplexity/max"] == 30.0


def test_a_resumed_run_summarises_its_earlier_points_by_the_same_rules(tmp_path: Path) -> None:
    section = {"kind": "tensorboard", "summary": {"max": ["grad_*"]}}
    run_summary(tmp_path, section)  # grad_norm 1.0, 0.5, 2.0
    tracker = create_tracker(section, tmp_path)
    tracker.init(run_name="directions", run_id="r1")
    tracker.log({"grad_norm": 0.1})
    tracker.close()
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["grad_norm/max"] == 2.0 and summary["grad_norm/last"] == 0.1
