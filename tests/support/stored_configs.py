"""Reading back the config a run stored: in each real backend, and without the run environment
that ``init`` adds to it (``noether.core.trackers.run_environment``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from noether.core.trackers.run_environment import RUN_ENVIRONMENT_KEY


def user_config(stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` (a config as a run stored it) without the run environment, which must be
    there."""
    assert isinstance(stored.get(RUN_ENVIRONMENT_KEY), dict), "no run environment recorded"
    return {key: value for key, value in stored.items() if key != RUN_ENVIRONMENT_KEY}


def tensorboard_config(log_dir: Path) -> Any:
    """The config the TensorBoard backend wrote (the YAML in its ``config`` text)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    [event] = events.Tensors("config")
    text = tensor_util.make_ndarray(event.tensor_proto).item().decode()
    return yaml.safe_load(textwrap.dedent(text.split("\n\n", 1)[1]))


def wandb_config(directory: Path) -> Any:
    """The config of the one offline W&B run under ``directory``, read from its .wandb file."""
    from wandb_file import WandbRunFile

    [path] = directory.glob("offline-run-*/run-*.wandb")
    return WandbRunFile.read(path).config()


def trackio_config(store: Path, project: str, run: str) -> Any:
    """The config Trackio stored for ``run`` of ``project`` in the Trackio store ``store``."""
    from trackio.sqlite_storage import SQLiteStorage

    from noether_trackers_trackio import use_trackio_dir

    with use_trackio_dir(store):
        config = SQLiteStorage.get_run_config(project, run)
    assert config is not None
    return config
