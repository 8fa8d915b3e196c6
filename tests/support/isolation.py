"""Where a test's processes may write, and what would send a backend online: shared by the
suite's autouse fixture (``tests/conftest.py``) and the scripts that run a real backend in a
sandbox of their own."""

from __future__ import annotations

#: Environment variables pointed at a temporary folder (relative paths inside it).
ISOLATED_DIRS = {
    "HOME": "home",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_CONFIG_HOME": "home/.config",
    "WANDB_DIR": "wandb",
    "WANDB_CACHE_DIR": "wandb-cache",
    "WANDB_CONFIG_DIR": "wandb-config",
    "WANDB_DATA_DIR": "wandb-data",
    "TRACKIO_DIR": "trackio",
    "HF_HOME": "hf",
}

#: Environment variables that would send W&B or Trackio to a server, a Space or the Hub.
REMOTE_VARIABLES = (
    "WANDB_API_KEY",
    "WANDB_BASE_URL",
    "HF_TOKEN",
    "TRACKIO_SPACE_ID",
    "TRACKIO_SERVER_URL",
    "TRACKIO_WRITE_TOKEN",
    "TRACKIO_BUCKET_ID",
    "TRACKIO_DATASET_ID",
    "SPACE_REPO_NAME",
    "SYSTEM",
    "GRADIO_SHARE",
    "TRACKIO_STORAGE_MODE",
    # A proxy would answer for the local Hub addresses the Trackio tests use.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def as_on_a_fresh_machine(env: dict[str, str]) -> dict[str, str]:
    """``env`` without an activated virtual environment: the running Python's ``bin``
    directory is not on ``PATH`` (as after ``scripts/setup`` on a fresh machine), so a
    command printed for the user runs here only if it runs as printed."""
    import os
    import sys

    scripts = os.path.dirname(sys.executable)
    path = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry != scripts]
    fresh = {key: value for key, value in env.items() if key != "VIRTUAL_ENV"}
    fresh["PATH"] = os.pathsep.join(path)
    return fresh
