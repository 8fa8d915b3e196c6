"""An example noether-trackers plugin: ``kind: csv`` writes one CSV file per run."""

from noether_trackers_csv.tracker import CsvTracker

__all__ = ["CsvTracker"]
