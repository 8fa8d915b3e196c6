"""Entry point of the ``wandb`` kind (group ``noether.trackers``)."""

from __future__ import annotations

from noether.core.trackers.plugin import RegisterTracker, hookimpl
from noether_trackers_wandb.tracker import WandBTracker


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Register :class:`WandBTracker` as kind ``wandb``."""
    register(WandBTracker, kind="wandb")
