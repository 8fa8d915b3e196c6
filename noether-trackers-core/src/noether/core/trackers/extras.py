"""The core's optional extras: the message for an integration whose framework is missing."""

from __future__ import annotations


def missing_extra(extra: str, error: ImportError) -> ImportError:
    """An ImportError that says which extra of ``noether-trackers-core`` installs what the
    integration module ``noether.core.trackers.<extra>`` needs (``error``: the failed import)."""
    missing = (error.name or str(error)).split(".")[0]
    return ImportError(
        f"noether.core.trackers.{extra} needs {missing!r}, which is not installed: "
        f"pip install 'noether-trackers-core[{extra}]'",
        name=error.name,
    )
