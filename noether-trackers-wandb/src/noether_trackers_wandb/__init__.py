"""Weights & Biases backend of noether-trackers: ``kind: wandb``.

Importing this package does not import wandb (which takes seconds and patches stdout); the
tracker does that in ``_init``, and not at all for ``mode: disabled``.
"""

from noether_trackers_wandb.tracker import WandBConnectionError, WandBTracker

__all__ = ["WandBConnectionError", "WandBTracker"]
