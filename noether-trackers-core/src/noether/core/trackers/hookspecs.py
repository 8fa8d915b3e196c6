"""The hooks a tracker plugin implements (pluggy project ``noether.trackers``).

A plugin is a module named by an entry point in the ``noether.trackers`` group; the entry
point's name is the plugin's main kind. The module marks its hook functions with
:data:`hookimpl`::

    from noether.core.trackers.hookspecs import hookimpl
    from my_plugin.tracker import CsvTracker

    @hookimpl
    def register_trackers(register):
        register(CsvTracker, kind="csv")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from noether.core.trackers.base import BaseTracker

PROJECT_NAME = "noether.trackers"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterTracker(Protocol):
    """The ``register`` callable that :func:`register_trackers` receives."""

    def __call__(
        self, tracker_class: type[BaseTracker], *, kind: str, aliases: Sequence[str] = ()
    ) -> None:
        """Make ``tracker_class`` selectable as ``kind:`` (and each alias) in YAML."""


@hookspec
def register_trackers(register: RegisterTracker) -> None:
    """Register the tracker kinds this plugin provides.

    Call ``register(tracker_class, kind="short-name", aliases=(...))`` once per tracker class.
    ``tracker_class`` subclasses :class:`~noether.core.trackers.base.BaseTracker`; ``kind`` is
    the short name users write in YAML (``kind: csv``). Besides ``kind`` and ``aliases``, every
    class is also selectable as ``noether.core.trackers.<ClassName>`` and importable as
    ``from noether.core.trackers import <ClassName>``.

    Keep this hook cheap: it runs when the registry is first used (including by
    ``noether-trackers list``), so it must not import the backend library. Import that inside
    the tracker's ``_init``.
    """
