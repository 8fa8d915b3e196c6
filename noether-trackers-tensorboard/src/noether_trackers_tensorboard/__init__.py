"""TensorBoard backend of noether-trackers: ``kind: tensorboard``.

Importing this package does not import tensorboard; the tracker does that in ``_init``.
"""

from noether_trackers_tensorboard.tracker import TensorboardTracker

__all__ = ["TensorboardTracker"]
