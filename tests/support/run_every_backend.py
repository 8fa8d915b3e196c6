"""One real run with TensorBoard, W&B (offline) and Trackio together, for the tests that look
at what every sink stored (``tests/test_secrets_in_every_sink.py``,
``tests/core/test_config_values.py``). Tests call :func:`run_scenario`, which runs this file as
a script in a process of its own, with HOME, TMPDIR and every backend directory in a sandbox:

    python run_every_backend.py SPEC_JSON

SPEC_JSON names a JSON file: ``{"output": DIR, "scenario": "secrets" | "config-types",
"secrets": {name: text}, "markers": {name: text}}``. The values come from a file, not the
command line, because W&B records the command line of the run. The script prints the close
report (per backend: how many calls it did not take) as JSON on its last stdout line.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from isolation import ISOLATED_DIRS, REMOTE_VARIABLES
from omegaconf import OmegaConf

from noether.core.trackers import BaseTracker, Image, Table, create_tracker

PROJECT = "every-backend"

# ---- the test side: running this file as a script in a sandbox --------------------------------

SCRIPT = Path(__file__).resolve()
SECRET_NAMES = [
    "hf",
    "deep",
    "key_1",
    "key_2",
    "credentials",
    "auth",
    "passwd",
    "private_key",
    "compound",
    "url",
    "tokenizer_token",
    "run_name",
    "stage_name",
    "log_nested",
    "log_flat",
    "log_url",
    "cell",
    "caption",
    "summary",
    "summary_nested",
]
MARKER_NAMES = ["config", "tokenizer", "log", "cell", "summary", "checkpoint", "path"]
#: Where the run's process may write: each variable points into the run's sandbox.
SANDBOX_VARIABLES = {**ISOLATED_DIRS, "XDG_DATA_HOME": "home/.local/share", "TMPDIR": "tmp"}


@dataclass(frozen=True)
class FinishedRun:
    """A run made by ``run_every_backend.py`` and everything it left."""

    sandbox: Path
    output: Path
    secrets: dict[str, str]
    markers: dict[str, str]
    console: str
    lost: dict[str, int]

    def files(self) -> Iterator[Path]:
        """Every file in the sandbox (the output directory is inside it)."""
        return (path for path in sorted(self.sandbox.rglob("*")) if path.is_file())


def run_scenario(sandbox: Path, spec_dir: Path, scenario: str) -> FinishedRun:
    """Run ``scenario`` of ``run_every_backend.py`` with everything it writes in ``sandbox``."""
    env = {k: v for k, v in os.environ.items() if k not in REMOTE_VARIABLES}
    for variable, relative in SANDBOX_VARIABLES.items():
        (sandbox / relative).mkdir(parents=True, exist_ok=True)
        env[variable] = str(sandbox / relative)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HF_HUB_OFFLINE="1")
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    tag = uuid.uuid4().hex[:12]
    secrets = {name: f"SECRET{tag}{name}" for name in SECRET_NAMES}
    markers = {name: f"VISIBLE{tag}{name}" for name in MARKER_NAMES}
    markers["path"] = f"/data/{markers['path']}"
    output = sandbox / "out"
    spec = spec_dir / "spec.json"  # outside the sandbox: it holds the secrets on purpose
    spec.write_text(
        json.dumps(
            {"output": str(output), "scenario": scenario, "secrets": secrets, "markers": markers}
        )
    )
    (sandbox / "cwd").mkdir()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=sandbox / "cwd",
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return FinishedRun(
        sandbox=sandbox,
        output=output,
        secrets=secrets,
        markers=markers,
        console=done.stdout + done.stderr,
        lost=json.loads(done.stdout.strip().splitlines()[-1]),
    )


# ---- the script side -------------------------------------------------------------------------


def trackers() -> list[dict[str, Any]]:
    """The ``tracker:`` section: the three first-party backends, all local."""
    return [
        {"kind": "tensorboard", "flush_secs": 600},
        {"kind": "wandb", "mode": "offline", "project": PROJECT},
        {"kind": "trackio", "project": PROJECT},
    ]


# ---- the "secrets" scenario ------------------------------------------------------------------


@dataclass
class AuthSettings:
    """A dataclass under a secret-looking key."""

    header: str
    retries: int = 3


def log_secrets(tracker: BaseTracker, secret: dict[str, str], marker: dict[str, str]) -> None:
    """Put every secret through every way into a run, next to visible markers."""
    config = {
        "secrets": {"hf": secret["hf"], "nested": {"deep": [secret["deep"]]}},
        "api_keys": [secret["key_1"], secret["key_2"]],
        "credentials": ("bob", secret["credentials"]),
        "auth": AuthSettings(header=secret["auth"]),
        "passwd": secret["passwd"],
        "private_key": secret["private_key"],
        "my_secret_value": secret["compound"],
        "database": f"postgres://bob:{secret['url']}@db.example:5432/runs",
        "tokenizer": {"name": marker["tokenizer"], "hf_token": secret["tokenizer_token"]},
        "max_tokens": 512,
        "marker": marker["config"],
    }
    tracker.init(
        run_name=f"from-https://bob:{secret['run_name']}@host",
        run_id="secret-run",
        stage_name=f"stage-redis://:{secret['stage_name']}@cache",
        config=config,
    )
    tracker.log(
        {
            "loss": 0.5,
            "secrets": {"openai": secret["log_nested"]},
            "api_keys/flat": secret["log_flat"],
            "note": f"reading postgres://u:{secret['log_url']}@db/x",
            "marker": marker["log"],
        },
        step=0,
    )
    tracker.log(
        {
            "loss": 0.25,
            "logins": Table(["user", "api_key"], [[marker["cell"], secret["cell"]]]),
            "sample": Image(np.zeros((4, 4, 3)), caption=f"https://u:{secret['caption']}@h"),
        },
        step=1,
    )
    tracker.set_summary("auth_header", secret["summary"])
    tracker.update_summary(
        {"credentials": {"token": secret["summary_nested"]}, "marker": marker["summary"]}
    )


# ---- the "config-types" scenario -------------------------------------------------------------


class Optimizer(enum.Enum):
    """An enum in a config (stored by its name)."""

    ADAM_W = "adamw"


class Precision(enum.IntEnum):
    """An int enum in a config (stored by its name too)."""

    BF16 = 16


@dataclass
class DataSettings:
    """A dataclass config holding what YAML and JSON cannot store as is."""

    root: Path
    optimizer: Optimizer = Optimizer.ADAM_W
    precision: Precision = Precision.BF16
    splits: tuple[str, ...] = ("train", "val")
    classes: frozenset[str] = frozenset({"dog", "cat"})
    seen: set[int] = field(default_factory=lambda: {3, 1, 2})
    created: datetime.datetime = datetime.datetime(2024, 5, 6, 7, 8, 9)
    day: datetime.date = datetime.date(2024, 5, 6)
    patience: datetime.timedelta = datetime.timedelta(minutes=5)
    salt: bytes = b"visible-bytes"
    raw: bytes = b"\xff\xfe"
    weight_decay: decimal.Decimal = decimal.Decimal("0.01")
    lr: np.float32 = field(default_factory=lambda: np.float32(0.5))
    steps: np.int64 = field(default_factory=lambda: np.int64(7))
    flag: np.bool_ = field(default_factory=lambda: np.bool_(True))
    mean: np.ndarray = field(default_factory=lambda: np.array([[1.0, 2.0], [3.0, 4.0]]))
    scale: np.ndarray = field(default_factory=lambda: np.array(2.5))
    when: np.datetime64 = field(default_factory=lambda: np.datetime64("2024-05-06T07:08:09"))


def typed_config(marker: dict[str, str]) -> dict[str, Any]:
    """A mapping holding a dataclass holding an omegaconf node, and the other way round."""
    model = OmegaConf.create({"width": 8, "checkpoint": marker["checkpoint"]})
    return {
        "data": DataSettings(root=Path(marker["path"])),
        "model": model,
        "pure": PurePosixPath("/pure/path"),
        "nested": OmegaConf.create({"inner": {"depth": 2}}),
        "marker": marker["config"],
    }


def log_typed_config(tracker: BaseTracker, secret: dict[str, str], marker: dict[str, str]) -> None:
    """Start a run whose config holds every kind of value a config may hold."""
    tracker.init(run_name="typed", run_id="typed-run", config=typed_config(marker))
    tracker.log({"loss": 0.5, "marker": marker["log"]}, step=0)


SCENARIOS: dict[str, Callable[[BaseTracker, dict[str, str], dict[str, str]], None]] = {
    "secrets": log_secrets,
    "config-types": log_typed_config,
}


def main() -> None:
    """Run the scenario the spec names and print the close report."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    tracker = create_tracker(trackers(), spec["output"])
    SCENARIOS[spec["scenario"]](tracker, spec["secrets"], spec["markers"])
    report = tracker.close()
    assert report is not None
    print(json.dumps({backend.backend: backend.lost for backend in report.backends}))


if __name__ == "__main__":
    main()
