"""The README's first command: the example training, end to end, with every example config.

The example is run as a user runs it, from a directory of their own, and everything it prints
for the user is run as printed there, on a ``PATH`` without the virtual environment (as on a
fresh machine after ``scripts/setup``): each backend's "where it went" line and its command.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from isolation import as_on_a_fresh_machine
from local_port import free_port
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers.journal import read_journal

ROOT = Path(__file__).resolve().parents[1]
#: Addresses that refuse connections: the seed configs ask for W&B online and a Trackio Space.
NO_SERVERS = {"WANDB_BASE_URL": "http://127.0.0.1:9", "HF_ENDPOINT": "http://127.0.0.1:9"}
#: A printed location: ``backend: where`` and, when there is one, ``; action: command``.
LOCATION = re.compile(
    r"^(?P<backend>[\w-]+): (?P<where>.+?)(?:; (?P<action>[\w ]+ it): (?P<command>.+))?$"
)


def run_example(
    cwd: Path, env: dict[str, str], *arguments: str
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/train.py`` from ``cwd`` (its outputs go below it)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train.py"), *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
    )


def train_example(cwd: Path, env: dict[str, str], *arguments: str) -> str:
    """Run the example successfully; its stdout."""
    done = run_example(cwd, env, *arguments)
    assert done.returncode == 0, done.stderr
    return done.stdout


def printed_run(stdout: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The output directory the example printed, and every backend's printed location."""
    [done] = [line for line in stdout.splitlines() if line.startswith("run 'example'")]
    output = Path(done.split("; output in ")[1].rstrip("/"))
    after = stdout.splitlines()[stdout.splitlines().index(done) + 1 :]
    locations = {}
    for line in after:
        if line.startswith("summary: "):
            break
        match = LOCATION.match(line)
        assert match, f"not a location line: {line!r}"
        locations[match["backend"]] = match.groupdict()
    return output, locations


def config(name: str) -> str:
    return str(ROOT / "examples" / "configs" / name)


def run_printed(command: str, cwd: Path, env: dict[str, str], *extra: str) -> Any:
    """``command`` as printed, with ``extra`` words, in a shell without the venv on PATH."""
    return subprocess.run(
        " ".join([command, *extra]),
        shell=True,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=as_on_a_fresh_machine(env),
        timeout=120,
    )


def test_example_training_with_tensorboard_and_the_printed_command_serves_it(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    stdout = train_example(tmp_path, subprocess_env)
    output, locations = printed_run(stdout)
    assert output.parent == Path("outputs/example")  # a directory of this run's own
    assert set(locations) == {"tensorboard"}
    view = locations["tensorboard"]
    assert view["action"] == "view it"
    assert view["command"].endswith(f"tensorboard --logdir {output / 'tensorboard_logs'}")
    summary = yaml.safe_load((tmp_path / output / "summary.yaml").read_text())
    assert summary["_status"] == "finished" and summary["val/loss/min"] < 0.1
    events = EventAccumulator(str(tmp_path / view["where"]), size_guidance={"scalars": 0})
    events.Reload()
    assert len(events.Scalars("train/loss")) == 50 and len(events.Scalars("val/accuracy")) == 5
    # the printed command, as printed (plus where to listen), serves the run
    port = free_port()
    server = subprocess.Popen(
        f"exec {view['command']} --host 127.0.0.1 --port {port} --load_fast false",
        shell=True,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=as_on_a_fresh_machine(subprocess_env),
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
                with urllib.request.urlopen(url, timeout=5) as answer:
                    tags = json.load(answer)
                if tags:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the printed tensorboard command never served"
            time.sleep(0.5)
        [run_tags] = tags.values()
        assert {"train/loss", "val/loss", "val/accuracy"} <= set(run_tags)
    finally:
        server.terminate()
        server.wait(timeout=20)


#: The backends each example config uses, as their location lines name them.
BACKENDS = {
    "tensorboard.yaml": {"tensorboard"},
    "wandb.yaml": {"wandb"},
    "trackio.yaml": {"trackio"},
    "fanout.yaml": {"tensorboard", "wandb", "trackio"},
    "csv.yaml": {"csv"},
}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_says_where_its_run_went_with_commands_that_run_as_printed(
    name: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The seed's W&B and Trackio YAML run unchanged here: no account, no network (W&B falls
    back to offline, Trackio to its local store); every printed command's ``--help`` runs."""
    env = {**subprocess_env, **NO_SERVERS}
    output, locations = printed_run(train_example(tmp_path, env, "--config", config(name)))
    assert set(locations) == BACKENDS[name]
    summary = yaml.safe_load((tmp_path / output / "summary.yaml").read_text())
    assert summary["_status"] == "finished" and summary["train/loss/last"] < 0.1
    for backend, location in locations.items():
        if not location["where"].startswith("http"):
            assert (tmp_path / location["where"]).exists(), backend
        if location["command"] is not None:
            done = run_printed(location["command"], tmp_path, env, "--help")
            assert done.returncode == 0 and "usage" in done.stdout.lower(), (backend, done)
    if "wandb" in locations:
        assert locations["wandb"]["action"] == "upload it"
        assert " sync " in locations["wandb"]["command"]
        assert list((tmp_path / locations["wandb"]["where"]).glob("run-*.wandb"))
    if "trackio" in locations:
        assert " show --project " in locations["trackio"]["command"]


def test_the_third_party_csv_plugin_writes_its_file(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """The example plugin, installed as a user would, is selected from YAML by its kind."""
    stdout = train_example(tmp_path, subprocess_env, "--config", config("csv.yaml"))
    _, locations = printed_run(stdout)
    with (tmp_path / locations["csv"]["where"]).open() as stream:
        rows = list(csv.DictReader(stream))
    assert sum(1 for row in rows if row["key"] == "train/loss") == 50
    assert {"record": "summary", "step": "", "key": "_status", "value": '"finished"'} in rows


def test_list_shows_the_installed_example_plugin(subprocess_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "noether.core.trackers.cli", "list", "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
        check=True,
    )
    [csv_kind] = [entry for entry in json.loads(done.stdout)["trackers"] if entry["kind"] == "csv"]
    assert csv_kind["distribution"] == "noether-trackers-csv" and csv_kind["version"] == "0.1.0"


def test_running_the_example_twice_makes_two_runs_that_never_mix(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    first, _ = printed_run(train_example(tmp_path, subprocess_env))
    second, _ = printed_run(train_example(tmp_path, subprocess_env))
    assert first != second and first.parent == second.parent == Path("outputs/example")
    for output in (first, second):
        inits = [r for r in read_journal(tmp_path / output) if r["op"] == "init"]
        assert [r["run_id"] for r in inits] == [output.name]
        assert len(list((tmp_path / output / "tensorboard_logs").glob("events.*"))) == 1


def test_the_run_id_of_an_earlier_run_resumes_it_on_purpose(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    first, _ = printed_run(train_example(tmp_path, subprocess_env, "--run-id", "job-1"))
    again, _ = printed_run(train_example(tmp_path, subprocess_env, "--run-id", "job-1"))
    assert first == again == Path("outputs/example/job-1")
    inits = [r for r in read_journal(tmp_path / first) if r["op"] == "init"]
    assert [r["run_id"] for r in inits] == ["job-1", "job-1"]


def test_an_output_directory_of_another_run_is_refused_naming_both_ids(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    train_example(tmp_path, subprocess_env, "--output", "mine", "--run-id", "first")
    done = run_example(tmp_path, subprocess_env, "--output", "mine", "--run-id", "second")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "already holds run 'first'" in done.stderr and "'second'" in done.stderr
    assert "new output directory" in done.stderr and "run_id='first'" in done.stderr
    inits = [r for r in read_journal(tmp_path / "mine") if r["op"] == "init"]
    assert [r["run_id"] for r in inits] == ["first"]


def test_example_with_tracking_disabled_claims_no_files(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    stdout = train_example(tmp_path, subprocess_env, "--config", config("disabled.yaml"))
    assert "finished; tracking is disabled: no files" in stdout and "summary:" not in stdout
    assert list(tmp_path.iterdir()) == []
