"""The secret rules of docs/secrets.md, one by one, for config, log, summary and names.

What every real sink stores is checked in ``tests/test_secrets_in_every_sink.py``; here the
rules are pinned down on a recording backend and on the redaction functions themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from stored_configs import user_config

from noether.core.trackers import Image, Table
from noether.core.trackers import values as values_module
from noether.core.trackers.redaction import REDACTED, redact
from noether.core.trackers.run_files import to_plain
from noether.core.trackers.values import normalise_values
from recording_plugins import RecordingTracker


@dataclass
class Login:
    user: str
    password_hint: str
    retries: int = 3


@pytest.mark.parametrize(
    "name",
    [
        "API_KEY",
        "api_keys",
        "hf_token",
        "tokens",
        "client_secret",
        "my_secret_value",
        "SecretsManager",
        "db_password",
        "passwd",
        "ssh_passphrase",
        "credentials",
        "gcp_credential_file",
        "auth",
        "oauth",
        "Authorization",
        "authorize_url",
        "basic_auth",
        "private_key",
        "max_tokens",  # hides text under it; numbers stay (below)
        "secrets/hf",
        "tokenizer/hf_token",
    ],
)
def test_a_secret_looking_name_hides_everything_under_it(name: str) -> None:
    assert redact({name: "text"}) == {name: REDACTED}
    assert redact({name: {"inner": ["text", {"deeper": "text"}]}}) == {
        name: {"inner": [REDACTED, {"deeper": REDACTED}]}
    }


@pytest.mark.parametrize(
    "name", ["lr", "author", "authors", "authority", "batch_size", "tokenizer/name", "model/path"]
)
def test_other_names_hide_nothing(name: str) -> None:
    config = {name: "text", "section": {name: ["text"]}}
    assert redact(config) == config


@pytest.mark.parametrize("name", ["tokenizer", "Tokenization", "keypoints", "key_frames"])
def test_machine_learning_words_hide_only_their_own_text(name: str) -> None:
    """The documented ``*key*``/``*token*`` substring promise holds for the value itself; the
    section under such a name is judged key by key."""
    assert redact({name: "text"}) == {name: REDACTED}
    assert redact({name: ["text"]}) == {name: [REDACTED]}
    assert redact({name: {"name": "text", "api_key": "k"}}) == {
        name: {"name": "text", "api_key": REDACTED}
    }


def test_secret_parents_hide_mappings_lists_tuples_and_dataclasses() -> None:
    config = {
        "secrets": {"hf": "hf_abc", "nested": {"deep": ["sk-1", ("sk-2", b"raw")]}},
        "api_keys": ["sk-3", "sk-4"],
        "credentials": ("bob", "hunter2"),
        "auth": Login(user="bob", password_hint="pet"),
        "passwd": "x",
        "private_key": "-----BEGIN",
        "my_secret_value": "y",
        "lr": 0.1,
    }
    assert redact(to_plain(config)) == {
        "secrets": {"hf": REDACTED, "nested": {"deep": [REDACTED, [REDACTED, REDACTED]]}},
        "api_keys": [REDACTED, REDACTED],
        "credentials": [REDACTED, REDACTED],
        "auth": {"user": REDACTED, "password_hint": REDACTED, "retries": 3},
        "passwd": REDACTED,
        "private_key": REDACTED,
        "my_secret_value": REDACTED,
        "lr": 0.1,
    }


def test_numbers_booleans_and_nulls_stay_under_secret_keys() -> None:
    config = {"max_tokens": 512, "auth": {"port": 5432, "enabled": True, "user": None}}
    assert redact(config) == config


def test_a_tokenizer_section_is_judged_key_by_key() -> None:
    """``tokenizer`` hides its own text (the ``*token*`` promise) but not its section."""
    config = {
        "tokenizer": {
            "name": "gpt2",
            "vocab_size": 50257,
            "files": ["vocab.json"],
            "hf_token": "hf_abc",
            "pad_token": "<pad>",
        },
        "keypoints": [{"name": "nose", "api_key": "k"}, "plain"],
        "tokenizer_path": "/models/tok.json",
    }
    assert redact(config) == {
        "tokenizer": {
            "name": "gpt2",
            "vocab_size": 50257,
            "files": ["vocab.json"],
            "hf_token": REDACTED,
            "pad_token": REDACTED,
        },
        "keypoints": [{"name": "nose", "api_key": REDACTED}, REDACTED],
        "tokenizer_path": REDACTED,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://bob:hunter2@db:5432/x", f"postgres://bob:{REDACTED}@db:5432/x"),
        ("redis://:pw@cache:6379", f"redis://:{REDACTED}@cache:6379"),
        ("mongodb+srv://u:p@ss@h/db?x=1", f"mongodb+srv://u:{REDACTED}@h/db?x=1"),
        (
            "see https://u:one@a and s3://k:two@b",
            f"see https://u:{REDACTED}@a and s3://k:{REDACTED}@b",
        ),
        ("https://user@host/path", "https://user@host/path"),
        ("http://localhost:8080/@user", "http://localhost:8080/@user"),
        ("no url: a:b@c", "no url: a:b@c"),
    ],
)
def test_a_url_keeps_everything_but_its_password(text: str, expected: str) -> None:
    assert redact({"endpoint": text}) == {"endpoint": expected}
    logged = normalise_values({"endpoint": text}, lambda key, value: None)
    assert logged == {"endpoint": expected}


def started(tmp_path: Path, **init: Any) -> RecordingTracker:
    tracker = RecordingTracker(output_path=tmp_path)
    tracker.init(run_name=init.pop("run_name", "run"), run_id="id1", **init)
    return tracker


def test_log_and_summary_follow_the_config_rules(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    tracker.log(
        {
            "loss": 0.5,
            "secrets": {"hf": "hf_abc", "count": 2},
            "credentials/user": "bob",
            "tokenizer": {"name": "gpt2"},
            "note": "from postgres://u:pw1@db/x",
        },
        step=0,
    )
    tracker.set_summary("auth_header", "Bearer abc")
    tracker.update_summary({"api_keys": {"main": "sk-1"}, "best": "epoch 3"})
    tracker.close()
    [(logged, _)] = tracker.logged()
    assert logged == {
        "loss": 0.5,
        "secrets/hf": REDACTED,
        "secrets/count": 2,
        "credentials/user": REDACTED,
        "tokenizer/name": "gpt2",
        "note": f"from postgres://u:{REDACTED}@db/x",
    }
    summaries = [args for name, args in tracker.calls if name == "summary"]
    assert {"auth_header": REDACTED} in summaries
    assert {"api_keys/main": REDACTED, "best": "epoch 3"} in summaries
    journal = (tmp_path / "journal.jsonl").read_text()
    for secret in ("hf_abc", "bob", "pw1", "Bearer", "sk-1"):
        assert secret not in journal
        assert secret not in (tmp_path / "summary.yaml").read_text()


def test_table_cells_and_image_captions_follow_the_rules(tmp_path: Path) -> None:
    tracker = started(tmp_path)
    image = Image(np.zeros((2, 2)), caption="pulled from https://u:pw2@host/x")
    table = Table(["user", "api_key", "score"], [["ann", "sk-5", 0.5]])
    secret_table = Table(["name"], [["hf_xyz"]])
    tracker.log({"img": image, "logins": table, "credentials": secret_table}, step=0)
    tracker.close()
    [(logged, _)] = tracker.logged()
    assert logged["img"].caption == f"pulled from https://u:{REDACTED}@host/x"  # type: ignore[union-attr]
    assert logged["logins"].rows == [["ann", REDACTED, 0.5]]  # type: ignore[union-attr]
    assert logged["credentials"].rows == [[REDACTED]]  # type: ignore[union-attr]
    assert image.caption is not None and "pw2" in image.caption  # the user's object is intact
    journal = (tmp_path / "journal.jsonl").read_text()
    assert "sk-5" not in journal and "hf_xyz" not in journal and "pw2" not in journal


def test_run_and_stage_names_lose_url_passwords(tmp_path: Path) -> None:
    tracker = started(
        tmp_path, run_name="sync https://u:pw3@host", stage_name="eval redis://:pw4@cache"
    )
    tracker.close()
    [(_, run)] = [call for call in tracker.calls if call[0] == "init"]
    assert run.run_name == f"sync https://u:{REDACTED}@host"
    assert run.stage_name == f"eval redis://:{REDACTED}@cache"
    journal = (tmp_path / "journal.jsonl").read_text()
    assert "pw3" not in journal and "pw4" not in journal


def test_config_yaml_and_the_journal_hold_the_redacted_config(tmp_path: Path) -> None:
    tracker = started(tmp_path, config={"secrets": {"hf": "hf_abc"}, "api_keys": ["sk-1"]})
    tracker.close()
    expected = {"secrets": {"hf": REDACTED}, "api_keys": [REDACTED]}
    assert user_config(yaml.safe_load((tmp_path / "config.yaml").read_text())) == expected
    [init] = [
        json.loads(line)
        for line in (tmp_path / "journal.jsonl").read_text().splitlines()
        if json.loads(line)["op"] == "init"
    ]
    assert user_config(init["config"]) == expected


def test_plain_numbers_never_reach_the_secret_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """``log()``'s common case stays on its C-speed path: no per-key secret check."""

    def refuse(*args: Any) -> bool:
        raise AssertionError("the secret rules ran for a flat dict of numbers")

    monkeypatch.setattr(values_module, "text_is_secret", refuse, raising=False)
    monkeypatch.setattr(values_module, "redact_text", refuse, raising=False)
    data = {"loss": 0.5, "api_key_count": 3, "max_tokens": 512}
    assert normalise_values(data, lambda key, value: None) == data
