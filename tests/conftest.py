"""Fixtures shared by the whole suite.

Every test runs with HOME and the backends' directories pointed at a fresh temporary folder,
so nothing touches the real home directory or the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from isolation import ISOLATED_DIRS


@pytest.fixture(autouse=True)
def isolated_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point HOME and every backend directory at a temporary folder; forbid online modes."""
    root = tmp_path_factory.mktemp("env")
    for variable, relative in ISOLATED_DIRS.items():
        path = root / relative
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("WANDB_SILENT", "true")
    launcher = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID")
    for variable in ("WANDB_API_KEY", "NOETHER_TRACKERS_TRACE", "TORCHELASTIC_RUN_ID", *launcher):
        monkeypatch.delenv(variable, raising=False)
    return root


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The (already isolated) environment to hand to a subprocess a test starts."""
    return dict(os.environ)


@pytest.fixture(autouse=True)
def no_run_left_open() -> Iterator[None]:
    """Close the runs a test left open (an assertion failed before its ``close()``): their
    delivery processes would live on and disturb the tests after it."""
    yield
    from noether.core.trackers._engine import lifecycle

    lifecycle.close_all(status="failed", timeout=5.0)


@pytest.fixture
def thread_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs that choose no delivery use threads of this process (``NOETHER_TRACKERS_DELIVERY``),
    for the tests that look at or patch a backend library inside the training process (its
    threads, its process-wide state, faults injected with monkeypatch)."""
    monkeypatch.setenv("NOETHER_TRACKERS_DELIVERY", "thread")
