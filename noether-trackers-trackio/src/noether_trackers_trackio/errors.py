"""Exceptions raised by the Trackio tracker."""

from __future__ import annotations


class TrackioHubUnreachableError(ConnectionError):
    """The Hugging Face Hub did not answer in time, and the run cannot go on without it.

    Raised by ``init`` when ``space_id`` is set with ``on_space_unreachable: fail``, or when
    Trackio would block on the Hub even for a local run (see the message for what to set).
    """
