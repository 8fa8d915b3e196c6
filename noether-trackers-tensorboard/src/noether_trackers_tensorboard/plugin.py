"""Entry point of the ``tensorboard`` kind (group ``noether.trackers``)."""

from __future__ import annotations

from noether.core.trackers.plugin import RegisterTracker, hookimpl
from noether_trackers_tensorboard.tracker import TensorboardTracker


@hookimpl
def register_trackers(register: RegisterTracker) -> None:
    """Register :class:`TensorboardTracker` as kind ``tensorboard``."""
    register(TensorboardTracker, kind="tensorboard")
