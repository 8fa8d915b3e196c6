"""Finding tracker plugins and resolving a YAML ``kind`` to a tracker class.

Plugins are discovered once per process from the ``noether.trackers`` entry-point group. A
kind resolves only through what plugins registered: a YAML file can never make the program
import a module path. A plugin that fails to load is recorded with its error, never raised.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from noether.core.trackers import hookspecs
from noether.core.trackers.entry_points import plugin_entry_points
from noether.core.trackers.errors import TrackerNotInstalledError
from noether.core.trackers.plugin_api import UNSTATED_PLUGIN_API, plugin_api_problem
from noether.core.trackers.tracing import tracing

if TYPE_CHECKING:
    from noether.core.trackers.base import BaseTracker

CORE_DISTRIBUTION = "noether-trackers-core"

#: First-party kinds, so that asking for one that is not installed names the pip install.
KNOWN_PLUGINS = {
    "wandb": ("WandBTracker", "noether-trackers-wandb"),
    "trackio": ("TrackioTracker", "noether-trackers-trackio"),
    "tensorboard": ("TensorboardTracker", "noether-trackers-tensorboard"),
}
DOTTED_PREFIX = "noether.core.trackers."


@dataclass(frozen=True)
class TrackerKind:
    """A registered tracker kind and where it came from."""

    kind: str
    tracker_class: type[BaseTracker]
    aliases: tuple[str, ...]
    plugin: str
    distribution: str | None
    version: str | None

    @property
    def class_name(self) -> str:
        """The name under which ``from noether.core.trackers import ...`` finds the class."""
        return self.tracker_class.__name__

    @property
    def backend_library(self) -> str | None:
        """Distribution name of the backend library the tracker drives, if it declares one."""
        return self.tracker_class.backend_library

    @property
    def plugin_api(self) -> str:
        """The plugin API version the tracker class was written for (its ``plugin_api``;
        ``"1.0"`` when it does not say)."""
        declared = getattr(self.tracker_class, "plugin_api", None)
        return str(declared) if declared is not None else UNSTATED_PLUGIN_API

    @property
    def plugin_api_problem(self) -> str | None:
        """Why this core cannot serve the tracker class's plugin API version, or None."""
        return plugin_api_problem(self.plugin_api)

    def describe_plugin(self) -> str:
        """``kind 'csv' (noether-trackers-csv 0.1.0)``: the kind and where it comes from."""
        source = self.distribution or self.plugin
        if self.distribution is not None and self.version is not None:
            source = f"{self.distribution} {self.version}"
        return f"kind '{self.kind}' ({source})"

    @property
    def backend_version(self) -> str | None:
        """Installed version of :attr:`backend_library` (read from metadata, never imported)."""
        if self.backend_library is None:
            return None
        try:
            return importlib.metadata.version(self.backend_library)
        except importlib.metadata.PackageNotFoundError:
            return None


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    plugin: str
    distribution: str | None
    error: str
    traceback: str = field(repr=False, default="")


class TrackerRegistry:
    """The installed tracker kinds. Use :func:`get_registry` for the process-wide one."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        if tracing():
            self.plugin_manager.trace.root.setwriter(sys.stderr.write)
            self.plugin_manager.enable_tracing()
        self._by_name: dict[str, TrackerKind] = {}
        self.kinds: list[TrackerKind] = []
        self.broken: list[BrokenPlugin] = []
        #: Messages about two plugins registering the same name; the first one keeps it.
        self.conflicts: list[str] = []

    def load_entry_points(self) -> None:
        """Load every plugin of the ``noether.trackers`` entry-point group."""
        for entry_point in plugin_entry_points():
            dist = entry_point.dist
            distribution = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            try:
                module = entry_point.load()
            except Exception as error:
                self._record_broken(entry_point.name, distribution, error)
                continue
            self.add_plugin(
                module, name=entry_point.name, distribution=distribution, version=version
            )

    def add_plugin(
        self,
        plugin: object,
        *,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        """Register one plugin object (module or instance with hook implementations)."""
        try:
            self.plugin_manager.register(plugin, name=name)
            self.plugin_manager.check_pending()
        except Exception as error:
            if self.plugin_manager.is_registered(plugin):
                self.plugin_manager.unregister(plugin)
            self._record_broken(name, distribution, error)
            return

        def register(
            tracker_class: type[BaseTracker], *, kind: str, aliases: Sequence[str] = ()
        ) -> None:
            self._add_kind(
                TrackerKind(kind, tracker_class, tuple(aliases), name, distribution, version)
            )

        caller = self.plugin_manager.subset_hook_caller(
            "register_trackers",
            remove_plugins=[p for p in self.plugin_manager.get_plugins() if p is not plugin],
        )
        try:
            caller(register=register)
        except Exception as error:
            self._record_broken(name, distribution, error)

    def _record_broken(self, name: str, distribution: str | None, error: BaseException) -> None:
        self.broken.append(
            BrokenPlugin(
                name,
                distribution,
                f"{type(error).__name__}: {error}",
                "".join(traceback.format_exception(error)),
            )
        )

    def _add_kind(self, entry: TrackerKind) -> None:
        from noether.core.trackers.base import BaseTracker

        if not (
            isinstance(entry.tracker_class, type) and issubclass(entry.tracker_class, BaseTracker)
        ):
            raise TypeError(f"{entry.tracker_class!r} is not a BaseTracker subclass")
        names = (entry.kind, *entry.aliases, DOTTED_PREFIX + entry.class_name)
        taken = [name for name in names if name in self._by_name]
        for name in taken:
            other = self._by_name[name]
            self.conflicts.append(
                f"'{name}' is registered by both {other.distribution or other.plugin} and "
                f"{entry.distribution or entry.plugin}; using {other.distribution or other.plugin}"
            )
        if entry.kind in taken:
            return
        self.kinds.append(entry)
        for name in names:
            self._by_name.setdefault(name, entry)

    def resolve(self, kind: str) -> TrackerKind:
        """The registered tracker for ``kind`` (short kind, alias or dotted class name).

        Raises :class:`TrackerNotInstalledError` naming the pip install for a known
        first-party kind, and :class:`KeyError` with the installed kinds otherwise.
        """
        entry = self._by_name.get(kind)
        if entry is not None:
            return entry
        missing = self.missing_plugin(kind)
        if missing is not None:
            raise TrackerNotInstalledError(missing)
        raise KeyError(self.unknown_kind_message(kind))

    def find_class(self, class_name: str) -> type[BaseTracker] | None:
        """The registered tracker class called ``class_name``, if any."""
        entry = self._by_name.get(DOTTED_PREFIX + class_name)
        return entry.tracker_class if entry is not None else None

    def missing_plugin(self, name: str) -> str | None:
        """If ``name`` is a first-party kind or class that is not installed, say what to install."""
        short = name.removeprefix(DOTTED_PREFIX)
        for kind, (class_name, distribution) in KNOWN_PLUGINS.items():
            if short in (kind, class_name):
                return (
                    f"tracker kind '{name}' is provided by {distribution}, which is not "
                    f"installed: pip install {distribution}"
                )
        return None

    def unknown_kind_message(self, kind: str) -> str:
        """Explain that ``kind`` is not registered: the installed kinds, and either the
        installed kind it looks like a typo of, or how to install more backends."""
        import difflib

        installed = ", ".join(sorted(entry.kind for entry in self.kinds)) or "none"
        close = difflib.get_close_matches(kind, list(self._by_name), n=1, cutoff=0.6)
        if close:  # a typo of an installed kind: installing anything would not help
            return (
                f"unknown tracker kind '{kind}'; did you mean '{close[0]}'? "
                f"(installed kinds: {installed})"
            )
        message = f"unknown tracker kind '{kind}'; installed kinds: {installed}"
        if "." in kind and not kind.startswith(DOTTED_PREFIX):
            message += (
                " (a kind names a registered tracker plugin; module paths are never imported)"
            )
        return f"{message}; {self._install_hint()}"

    def _install_hint(self) -> str:
        """How to get another backend: the first-party plugins that are not installed."""
        installed = {entry.distribution for entry in self.kinds}
        missing = [dist for _, dist in KNOWN_PLUGINS.values() if dist not in installed]
        if not missing:
            return "pip install the plugin distribution that provides it"
        return "backends are installed as plugins, e.g. " + ", ".join(
            f"pip install {dist}" for dist in missing
        )


@functools.cache
def get_registry() -> TrackerRegistry:
    """The process-wide registry, loaded from entry points on first use."""
    registry = TrackerRegistry()
    from noether.core.trackers import builtin_plugin

    registry.add_plugin(
        builtin_plugin,
        name="noop",
        distribution=CORE_DISTRIBUTION,
        version=_version(CORE_DISTRIBUTION),
    )
    registry.load_entry_points()
    return registry


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def resolve_tracker_class(name: str) -> Any:
    """Module ``__getattr__`` support: the tracker class ``name``, or a clear ImportError."""
    registry = get_registry()
    tracker_class = registry.find_class(name)
    if tracker_class is not None:
        return tracker_class
    missing = registry.missing_plugin(name)
    if missing is not None:
        raise TrackerNotInstalledError(missing, name=name)
    raise AttributeError(f"module 'noether.core.trackers' has no attribute '{name}'")
