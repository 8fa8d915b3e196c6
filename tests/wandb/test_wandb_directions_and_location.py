"""W&B gets the run's summary directions (``define_metric(summary=...)``) and says where its
run went, read back from a real offline run's ``.wandb`` file."""

from __future__ import annotations

import subprocess
from typing import Any

from backends_of import backend_of
from isolation import as_on_a_fresh_machine

from noether.core.trackers import RunLocation, create_tracker
from noether_trackers_wandb import WandBTracker


def test_metric_directions_become_w_and_b_metric_summaries(sandbox: Any, helpers: Any) -> None:
    section = {"kind": "wandb", "mode": "offline", "summary": {"max": ["*perplexity*"]}}
    tracker = create_tracker(section, sandbox.root / "out")
    backend = backend_of(tracker, WandBTracker)
    tracker.init(run_name="directions", run_id="dir-1", summary_directions={"min": ["grad_*"]})
    for loss in [3.0, 1.0, 2.0]:
        tracker.log(
            {"train/loss": loss, "val/perplexity": 10.0 * loss, "lr": 0.1, "grad_norm": loss}
        )
    tracker.close()
    assert backend.run_dir is not None
    metrics = {
        metric.name: metric for metric in helpers.run_file(backend.run_dir).of_type("metric")
    }
    assert metrics["train/loss"].summary.min and metrics["train/loss"].summary.last
    assert not metrics["train/loss"].summary.max
    assert metrics["val/perplexity"].summary.max and not metrics["val/perplexity"].summary.min
    assert metrics["grad_norm"].summary.min
    # neutral: W&B's own last value (a wandb that records the "*" definition for it adds no
    # min or max)
    assert "lr" not in metrics or not (metrics["lr"].summary.min or metrics["lr"].summary.max)
    assert metrics["train/loss"].step_metric == "global_step"


def test_an_offline_run_says_where_it_went_with_a_sync_command_that_runs(
    sandbox: Any, subprocess_env: dict[str, str]
) -> None:
    tracker = create_tracker({"kind": "wandb", "mode": "offline"}, "out")  # below the cwd
    backend = backend_of(tracker, WandBTracker)
    tracker.init(run_name="where", run_id="where-1")
    tracker.log({"loss": 1.0})
    tracker.close()
    [location] = tracker.run_locations()
    assert isinstance(location, RunLocation) and backend.run_dir is not None
    assert location.backend == "wandb" and location.action == "upload it"
    assert (sandbox.cwd / location.where).resolve() == backend.run_dir.resolve()
    assert location.command is not None and location.command.endswith(
        f"wandb sync {location.where}"
    )
    # as printed, from where it was printed, without an activated environment
    done = subprocess.run(
        f"{location.command} --help",
        shell=True,
        cwd=sandbox.cwd,
        capture_output=True,
        text=True,
        env=as_on_a_fresh_machine(subprocess_env),
        timeout=120,
    )
    assert done.returncode == 0 and "Usage: wandb sync" in done.stdout, done.stderr


def test_a_disabled_run_says_nothing(sandbox: Any) -> None:
    tracker = create_tracker({"kind": "wandb", "mode": "disabled"}, sandbox.root / "out")
    tracker.init(run_name="nowhere")
    tracker.close()
    assert tracker.run_locations() == []
