"""wandb's process-wide state around one tracker run: what the tracker starts, it stops.

wandb keeps one "singleton" per process: settings read once from the environment, an asyncio
thread, and the ``wandb-core`` service process (which itself starts ``wandb-symon`` for system
metrics). Starting the service also replaces ``sys.exit`` and ``sys.excepthook``. When the
tracker's run is what brought these up, closing the run takes them down again: the service and
its threads stop, the hooks are restored, and the next run in the process reads the
environment afresh. What belonged to someone else (a service that was already running, runs
the user started) is left alone.

wandb is reached through ``importlib`` as an untyped module: several of the names used here
are wandb internals, each guarded so that a wandb without them degrades to wandb's own
behaviour instead of failing.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from noether_trackers_wandb.names import table_artifact_prefix

logger = logging.getLogger("noether.trackers.wandb")

#: wandb stages artifact files (the copy of every logged Table) under ``$WANDB_DATA_DIR``.
DATA_DIR_VARIABLE = "WANDB_DATA_DIR"
#: Read by wandb when it starts its service: "false" keeps the service from sending reports
#: about its own errors to W&B.
ERROR_REPORTING_VARIABLE = "WANDB_ERROR_REPORTING"

# wandb.init and wandb.teardown are not meant to race: trackers (each on its own delivery
# thread) start and release their runs one at a time.
_lock = threading.RLock()
# True while the running wandb service was started by a tracker's run: the last tracker run to
# end stops it, whichever run started it.
_service_is_ours = False


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold while starting a run: no other tracker starts or releases one meanwhile."""
    with _lock:
        yield


class WandbSession:
    """wandb, imported, plus what is needed to leave the process as the tracker found it."""

    def __init__(self) -> None:
        global _service_is_ours
        self.wandb: Any = importlib.import_module("wandb")
        self._setup: Any = importlib.import_module("wandb.sdk.wandb_setup")
        singleton = self._singleton()
        #: True when no wandb service was running: this tracker's run starts it, and the last
        #: tracker run to end stops it.
        self.owns_service = singleton is None or (
            getattr(singleton, "_connection", None) is None and not _active_runs(singleton)
        )
        with _lock:
            _service_is_ours = _service_is_ours or self.owns_service
        self._exit = sys.exit
        self._excepthook = sys.excepthook
        self._environ: dict[str, str] = {}
        self._artifact_caches = _artifact_caches()
        self._cached_before = [set(cache) for cache in self._artifact_caches]
        if self.owns_service:
            # Like the usage telemetry below: wandb's reports about itself carry none of the
            # user's data and would reach for the network from an offline run. Set before
            # wandb reads its environment, so that it sees one consistent environment.
            self._set_environ(ERROR_REPORTING_VARIABLE, "false")
        _disable_usage_telemetry()

    @property
    def reinit(self) -> str | None:
        """``wandb.init``'s ``reinit``: "create_new" while other runs are active, so that wandb
        never hands back, or finishes, a run someone else started."""
        return "create_new" if _active_runs(self._singleton()) else None

    def settings(self, overrides: Mapping[str, Any]) -> Any:
        """``wandb.Settings`` with ``overrides``; ValueError for a field or value wandb refuses."""
        try:
            return self.wandb.Settings(**overrides)
        except Exception as error:
            detail = str(error).strip().splitlines()
            raise ValueError(f"settings: {' '.join(detail[:3])}") from error

    def effective_settings(self, init_settings: Any) -> Any:
        """The settings a run started with ``init_settings`` would get.

        wandb layers them over its process-wide settings (environment variables, settings
        files); the online checks need the result, e.g. the server URL.
        """
        try:
            settings = self._setup.singleton().settings.model_copy()
            settings.update_from_settings(init_settings)
        except Exception:  # a wandb without this API: the run's own settings are the best guess
            return init_settings
        return settings

    def stage_artifacts_in(self, directory: Path) -> None:
        """Have wandb stage artifact files under ``directory`` for the rest of the run.

        wandb otherwise writes them to the user's data directory, outside the run: a run
        logged offline on one machine then could not be synced from its directory alone.
        An explicit ``$WANDB_DATA_DIR`` is respected.
        """
        self._set_environ(DATA_DIR_VARIABLE, str(directory))

    def release(self, run_id: str | None = None) -> None:
        """Undo what this session started; call once the run ``run_id`` (if any) is finished."""
        with _lock:
            try:
                if run_id is not None:
                    self._forget_artifacts(run_id)
                self._stop_service()
            finally:
                for name, value in self._environ.items():
                    if os.environ.get(name) == value:
                        del os.environ[name]
                self._environ.clear()

    def _stop_service(self) -> None:
        global _service_is_ours
        singleton = self._singleton()
        if singleton is None:
            _service_is_ours = False
        if not _service_is_ours or singleton is None or _active_runs(singleton):
            return
        _service_is_ours = False
        try:
            # The run already reported its exit code; 0 here only closes the service.
            self.wandb.teardown()
        except SystemExit as error:  # wandb exits the process when its service failed
            logger.warning("the wandb service ended with exit code %s", error.code)
        for name, original in (("exit", self._exit), ("excepthook", self._excepthook)):
            current = getattr(sys, name)
            if current is not original and _installed_by_wandb(current):
                setattr(sys, name, original)

    def _forget_artifacts(self, run_id: str) -> None:
        """Drop the artifacts wandb cached for the run's tables, with their temporary copies.

        wandb logs every Table also as an artifact named ``run-<id>-<key>``, whose file it
        writes to a temporary directory of the system temp dir and keeps, through a
        process-wide cache, until the process exits. By now the file is staged in the run's
        directory (or uploaded), so the temporary copy only stands in the way of "nothing
        written outside the run". Other artifacts (the user's own) are not touched.
        """
        prefix = table_artifact_prefix(run_id)
        for cache, before in zip(self._artifact_caches, self._cached_before, strict=True):
            for key in set(cache) - before:
                if not str(getattr(cache[key], "name", "")).startswith(prefix):
                    continue
                temporary = getattr(cache.pop(key), "_tmp_dir", None)
                if temporary is not None:
                    with contextlib.suppress(OSError):
                        temporary.cleanup()

    def _set_environ(self, name: str, value: str) -> None:
        """Set ``name`` for the session unless the user has set it; release restores it."""
        if name not in os.environ:
            self._environ[name] = value
            os.environ[name] = value

    def _singleton(self) -> Any:
        singleton = getattr(self._setup, "_singleton", None)
        if singleton is None or getattr(singleton, "_pid", None) != os.getpid():
            return None  # none yet, or one inherited through fork that wandb will replace
        return singleton


def is_offline(settings: Any) -> bool:
    """True when ``settings`` describe a run that stays on this machine (offline or dryrun)."""
    return str(getattr(settings, "mode", "online")) in ("offline", "dryrun")


def _active_runs(singleton: Any) -> list[Any]:
    return list(getattr(singleton, "_active_runs", ())) if singleton is not None else []


def _artifact_caches() -> list[Any]:
    try:
        module = importlib.import_module("wandb.sdk.artifacts.artifact_instance_cache")
    except ImportError:
        return []
    names = ("artifact_instance_cache", "artifact_instance_cache_by_client_id")
    return [getattr(module, name) for name in names if hasattr(module, name)]


def _installed_by_wandb(hook: Any) -> bool:
    owner = getattr(hook, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("wandb.")


def _disable_usage_telemetry() -> None:
    # wandb sends usage metrics about itself (not the user's data) to the W&B server. It
    # configures them from the process-wide settings rather than the run's, so even an
    # offline run starts two exporter threads that outlive the run and contact the server at
    # exit. A tracker leaves no threads behind and stays off the network offline; the user
    # sees nothing of this telemetry.
    with contextlib.suppress(ImportError, AttributeError):
        importlib.import_module("wandb.analytics.opentelemetry.opentelemetry_proxy").disable()
