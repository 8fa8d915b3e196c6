"""A noether-trackers plugin: the tracker kind ``csv``."""

from noether_trackers_csv.tracker import CsvTracker

__all__ = ["CsvTracker"]
