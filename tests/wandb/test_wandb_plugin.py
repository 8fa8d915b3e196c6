"""Selecting and configuring the W&B plugin; what it costs when W&B is not used.

Most tests here never start wandb: the registry, the YAML schema, the lazy import and
``mode: disabled`` are checked without it (the last two in a fresh interpreter, where
"wandb is not imported" means something). The mode and settings tests start real offline
runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backends_of import backend_of
from omegaconf import OmegaConf

from noether.core.trackers import TrackerConfigError, create_tracker
from noether.core.trackers.registry import get_registry
from noether_trackers_wandb import WandBTracker
from noether_trackers_wandb.connectivity import server_problem
from noether_trackers_wandb.convert import merge_bins
from noether_trackers_wandb.tracker import EXIT_CODES

SEED_YAML = """\
tracker:
  kind: noether.core.trackers.WandBTracker
  project: my-project
  entity: my-team
  mode: online          # online | offline | disabled
"""


def run_python(code: str, sandbox: Any) -> str:
    """Run ``code`` in a fresh interpreter inside the sandbox; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=sandbox.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---- 1. selection and config -------------------------------------------------------------------


def test_kind_and_class_name_resolve_to_the_plugin() -> None:
    registry = get_registry()
    assert registry.resolve("wandb").tracker_class is WandBTracker
    assert registry.resolve("noether.core.trackers.WandBTracker").tracker_class is WandBTracker
    assert registry.resolve("wandb").distribution == "noether-trackers-wandb"
    from noether.core.trackers import WandBTracker as FromCore

    assert FromCore is WandBTracker


def test_seed_yaml_builds_the_tracker(tmp_path: Path) -> None:
    section = OmegaConf.create(SEED_YAML).tracker
    backend = backend_of(create_tracker(section, output_path=tmp_path), WandBTracker)
    assert (backend.project, backend.entity, backend.mode) == ("my-project", "my-team", "online")
    assert backend.directory == tmp_path, "the W&B directory defaults to the run's output path"


def test_common_w_and_b_options_are_accepted(tmp_path: Path) -> None:
    tracker = create_tracker(
        {
            "kind": "wandb",
            "project": "p",
            "entity": "e",
            "mode": "offline",
            "name": "nice name",
            "group": "sweep",
            "job_type": "eval",
            "tags": ["a", "b"],
            "notes": "why this run",
            "dir": "w_and_b",
            "resume": "never",
            "init_timeout": 5,
            "offline_fallback": False,
            "step_metric": "trainer/step",
            "settings": {"x_disable_stats": True},
            "required": False,
        },
        output_path=tmp_path,
    )
    backend = backend_of(tracker, WandBTracker)
    assert backend.directory == tmp_path / "w_and_b", "a relative dir is inside the output path"
    assert backend.tags == ["a", "b"]
    assert backend.init_timeout == 5.0
    assert backend.settings == {"x_disable_stats": True}


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"projet": "p"}, "tracker.projet: unknown option; did you mean 'project'?"),
        ({"mode": "onlin"}, "tracker.mode: expected 'online' | 'offline' | 'disabled' | null"),
        ({"tags": "a,b"}, "tracker.tags: expected list[str] | null, got str"),
        ({"init_timeout": "soon"}, "tracker.init_timeout: expected float, got str"),
        # the order of the choices is not checked: typing caches Literal unions by value, so
        # a Literal of the same choices made elsewhere (in wandb) may be the one returned
        ({"resume": "sometimes"}, "tracker.resume: expected 'allow' | '"),
        ({"init_timeout": 0}, "tracker.init_timeout: must be a positive number of seconds"),
        ({"tags": ["x" * 65]}, "tracker.tags: W&B tags have 1 to 64 characters"),
        ({"step_metric": ""}, "tracker.step_metric: must not be empty"),
        ({"settings": {"mode": "x"}}, "tracker.settings.mode: set it with the option `mode`"),
        ({"settings": {"run_name": "x"}}, "tracker.settings.run_name: set it with the option"),
        ({"settings": {"run_id": "x"}}, "tracker.settings.run_id: the W&B run id is the run id"),
    ],
)
def test_option_errors_name_their_yaml_path(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(TrackerConfigError) as raised:
        create_tracker({"kind": "wandb", **options})
    assert any(line.startswith(problem) for line in raised.value.problems), raised.value.problems


def test_unknown_wandb_setting_is_a_clear_error_at_init(sandbox: Any, tmp_path: Path) -> None:
    tracker = create_tracker(
        {"kind": "wandb", "mode": "offline", "settings": {"no_such_setting": 1}}, tmp_path
    )
    with pytest.raises(TrackerConfigError, match=r"settings: .*no_such_setting"):
        tracker.init(run_name="r", run_id="bad-settings")
    tracker.close()


def test_importing_and_configuring_does_not_import_wandb(sandbox: Any) -> None:
    output = run_python(
        f"""
        import sys
        import noether_trackers_wandb
        from noether.core.trackers import WandBTracker, create_tracker
        from noether.core.trackers.registry import get_registry
        from omegaconf import OmegaConf

        get_registry().resolve("wandb")
        create_tracker(OmegaConf.create({SEED_YAML!r}).tracker, output_path="out")
        print("wandb" in sys.modules)
        """,
        sandbox,
    )
    assert output.strip() == "False"


def test_list_shows_the_plugin_and_its_wandb_version(sandbox: Any) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("noether-trackers")), "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listing = json.dumps(json.loads(result.stdout))
    assert "noether-trackers-wandb" in listing
    assert '"wandb"' in listing


def test_disabled_mode_touches_no_file_and_does_not_import_wandb(sandbox: Any) -> None:
    output = run_python(
        """
        import sys
        from noether.core.trackers import create_tracker

        tracker = create_tracker({"kind": "wandb", "project": "p", "mode": "disabled"})
        tracker.init(run_name="r", run_id="off", config={"lr": 0.1})
        tracker.log({"loss": 1.0}, step=1)
        tracker.update_summary({"best": 1})
        tracker.close()
        [backend] = tracker.backends
        print("wandb" in sys.modules, backend.wandb_run)
        """,
        sandbox,
    )
    assert output.split() == ["False", "None"]
    assert sandbox.files() == []


# ---- how the run is started ------------------------------------------------------------------


def test_unset_mode_follows_wandb_mode_and_settings_pass_through(
    sandbox: Any, helpers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    tracker = create_tracker(
        {"kind": "wandb", "settings": {"console": "off"}}, output_path=sandbox.root / "out"
    )
    backend = backend_of(tracker, WandBTracker)
    tracker.init(run_name="env-mode", run_id="env-1")
    tracker.log({"loss": 1.0})
    tracker.close()
    assert backend.run_dir is not None
    assert backend.run_dir.parent == sandbox.root / "out" / "wandb"
    assert backend.run_dir.name.startswith("offline-run-")
    assert not (backend.run_dir / "files" / "output.log").exists(), "console: off was applied"
    assert [row["loss"] for row in helpers.run_file(backend.run_dir).history()] == [1.0]


def test_rerun_with_the_same_run_id_resumes_it(sandbox: Any, helpers: Any) -> None:
    # Offline, each run has its own directory; `wandb sync` then continues the same W&B run,
    # and the step metric keeps the second run's points from being dropped.
    run_dirs = []
    for attempt in range(2):
        tracker = create_tracker({"kind": "wandb", "mode": "offline"}, sandbox.root / "out")
        backend = backend_of(tracker, WandBTracker)
        tracker.init(run_name="resumable", run_id="same-id")
        tracker.log({"loss": float(attempt)}, step=attempt)
        tracker.close()
        assert backend.run_dir is not None
        run_dirs.append(backend.run_dir)
    assert run_dirs[0] != run_dirs[1]
    for attempt, run_dir in enumerate(run_dirs):
        records = helpers.run_file(run_dir)
        assert (records.run.run_id, records.run.resume) == ("same-id", True)
        assert [row["global_step"] for row in records.history()] == [attempt]


@pytest.mark.usefixtures("thread_delivery")  # looks inside this process
def test_two_runs_at_once_share_wandb_and_the_last_one_out_stops_it(
    sandbox: Any, helpers: Any
) -> None:
    trackers = [
        create_tracker({"kind": "wandb", "mode": "offline"}, sandbox.root / f"out-{index}")
        for index in range(2)
    ]
    starts = [
        threading.Thread(target=tracker.init, kwargs={"run_name": "r", "run_id": f"both-{index}"})
        for index, tracker in enumerate(trackers)
    ]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    for index, tracker in enumerate(trackers):
        tracker.log({"loss": float(index)}, step=index)
    trackers[0].close()
    assert "wandb-core" in helpers.wandb_processes().values(), "still serving the second run"
    trackers[1].close()
    assert helpers.wandb_processes() == {}
    for index, tracker in enumerate(trackers):
        backend = backend_of(tracker, WandBTracker)
        assert backend.run_dir is not None
        history = helpers.run_file(backend.run_dir).history()
        assert [(row["global_step"], row["loss"]) for row in history] == [(index, float(index))]


def test_the_users_own_wandb_run_and_service_are_left_alone(sandbox: Any, helpers: Any) -> None:
    import wandb

    own = wandb.init(mode="offline", dir=str(sandbox.root / "own"), id="users-own")
    try:
        tracker = create_tracker({"kind": "wandb", "mode": "offline"}, sandbox.root / "out")
        tracker.init(run_name="tracked", run_id="tracked-1")
        tracker.log({"loss": 1.0}, step=0)
        tracker.close()
        assert wandb.run is own, "the user's run is still the current one"
        own.log({"mine": 1})
        assert "wandb-core" in helpers.wandb_processes().values(), "the user's service runs on"
    finally:
        own.finish()
        wandb.teardown()
    assert [row["mine"] for row in helpers.run_file(Path(own.settings.sync_dir)).history()] == [1]


# ---- building blocks ---------------------------------------------------------------------------


def test_only_a_finished_run_exits_with_zero() -> None:
    assert EXIT_CODES["finished"] == 0
    assert all(code != 0 for status, code in EXIT_CODES.items() if status != "finished")


@pytest.mark.parametrize(("bins", "merged"), [(10, 10), (512, 512), (1000, 500), (1025, 342)])
def test_merge_bins_keeps_counts_and_edges(bins: int, merged: int) -> None:
    values = np.random.default_rng(0).normal(size=5000)
    counts, edges = np.histogram(values, bins=bins)
    new_counts, new_edges = merge_bins(counts, edges, 512)
    assert len(new_counts) == merged and len(new_edges) == merged + 1
    assert new_counts.sum() == counts.sum()
    assert new_edges[0] == edges[0] and new_edges[-1] == edges[-1]
    assert set(new_edges.tolist()) <= set(edges.tolist())


def test_probe_reports_a_refused_connection_at_once(helpers: Any) -> None:
    url = helpers.refused_address()
    started = time.monotonic()
    problem = server_problem(url, timeout=10)
    assert time.monotonic() - started < 2
    assert problem is not None and "refused" in problem and url in problem


def test_probe_accepts_any_answer_but_a_server_error(fault_server: Any) -> None:
    assert server_problem(fault_server(404, 404), timeout=5) is None
    assert server_problem(fault_server(401, 401), timeout=5) is None
    problem = server_problem(fault_server(502, 502), timeout=5)
    assert problem is not None and "answered HTTP 502" in problem


def test_probe_gives_up_after_its_timeout(silent_server: str) -> None:
    started = time.monotonic()
    problem = server_problem(silent_server, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 2
    assert problem == f"the W&B server {silent_server} did not answer within 0.5 s"


def test_probe_reports_an_unusable_url() -> None:
    problem = server_problem("not a url", timeout=1)
    assert problem is not None and "not a url" in problem
