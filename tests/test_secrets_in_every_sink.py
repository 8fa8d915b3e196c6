"""Secrets never reach a file or the console, whichever way they enter a run.

One real run with TensorBoard, W&B (offline) and Trackio together
(``support/run_every_backend.py``, in a process of its own) takes secrets through the config (under
secret-looking parent keys, in lists, tuples and dataclasses, in a URL), the run and stage
names, logged values (nested, flat, in a URL, a table cell, an image caption) and the summary.
Then every file under the run's whole environment (output directory with its journal,
TensorBoard events and W&B run, the W&B directories, the Trackio store, HOME, TMPDIR) is read
as bytes, SQLite databases and binary ``.wandb`` and event files included, and searched for
every secret. Visible markers logged next to the secrets prove that each sink's files do hold
the run's text, so the search would have seen a leak.
"""

from __future__ import annotations

import pytest
import yaml
from run_every_backend import FinishedRun, run_scenario


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """The secrets scenario, run once for this module."""
    return run_scenario(
        tmp_path_factory.mktemp("sandbox"), tmp_path_factory.mktemp("spec"), "secrets"
    )


def leaks(run: FinishedRun) -> list[str]:
    """``file: secret`` for every secret found in a file's bytes or in its path."""
    found = []
    for path in run.files():
        data = path.read_bytes()
        where = str(path.relative_to(run.sandbox))
        for name, secret in run.secrets.items():
            if secret.encode() in data or secret in where:
                found.append(f"{where}: {name}")
    return found


def test_the_run_reached_every_backend(finished: FinishedRun) -> None:
    assert list(finished.lost.values()) == [0, 0, 0], finished.lost


def test_no_file_of_any_sink_holds_a_secret(finished: FinishedRun) -> None:
    assert leaks(finished) == []


def test_the_console_shows_no_secret(finished: FinishedRun) -> None:
    assert [name for name, secret in finished.secrets.items() if secret in finished.console] == []


@pytest.mark.parametrize(
    ("sink", "pattern"),
    [
        ("config.yaml", "out/config.yaml"),
        ("journal", "out/journal.jsonl"),
        ("summary.yaml", "out/summary.yaml"),
        ("TensorBoard", "out/tensorboard_logs/**/events.out.tfevents.*"),
        ("W&B", "out/wandb/offline-run-*/**/*"),  # the .wandb file and the table's file
        ("Trackio", "trackio/**/*"),
    ],
)
def test_each_sink_holds_the_visible_text_next_to_the_secrets(
    finished: FinishedRun, sink: str, pattern: str
) -> None:
    """The searched files are the ones with the run's text: a leak would have been found."""
    files = [path for path in finished.sandbox.glob(pattern) if path.is_file()]
    assert files, f"{sink}: nothing matches {pattern}"
    text = b"".join(path.read_bytes() for path in files)
    expected = {
        "config.yaml": ["config", "tokenizer"],
        "summary.yaml": ["summary"],
    }.get(sink, ["config", "tokenizer", "log", "cell", "summary"])
    missing = [name for name in expected if finished.markers[name].encode() not in text]
    assert missing == [], f"{sink} does not hold the markers {missing}"


def test_only_the_secret_parts_are_hidden(finished: FinishedRun) -> None:
    """Kept: key names, numbers, the tokenizer's name, URLs but their passwords."""
    config = yaml.safe_load((finished.output / "config.yaml").read_text())
    assert config["secrets"] == {"hf": "***REDACTED***", "nested": {"deep": ["***REDACTED***"]}}
    assert config["api_keys"] == ["***REDACTED***", "***REDACTED***"]
    assert config["credentials"] == ["***REDACTED***", "***REDACTED***"]
    assert config["auth"] == {"header": "***REDACTED***", "retries": 3}
    assert config["database"] == "postgres://bob:***REDACTED***@db.example:5432/runs"
    assert config["tokenizer"] == {
        "name": finished.markers["tokenizer"],
        "hf_token": "***REDACTED***",
    }
    assert config["max_tokens"] == 512
