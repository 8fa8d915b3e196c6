"""Trackio backend of noether-trackers: ``kind: trackio``.

Importing this package does not import trackio; the tracker does that in ``_init``.
"""

from noether_trackers_trackio.errors import TrackioHubUnreachableError
from noether_trackers_trackio.storage_dir import default_trackio_dir, use_trackio_dir
from noether_trackers_trackio.tracker import TrackioTracker

__all__ = [
    "TrackioHubUnreachableError",
    "TrackioTracker",
    "default_trackio_dir",
    "use_trackio_dir",
]
