"""The Trackio internals this plugin cannot do without, each behind a guard.

A run goes through Trackio's public API: ``trackio.init`` (with the parameters it documents),
``Run.log``, ``Run.config``, ``Run.finish``, ``trackio.Markdown``/``Image``/``Histogram``/
``Table``, the store chosen by ``$TRACKIO_DIR`` when trackio is imported, and ``trackio.Api``
to read a stored config back. Trackio has no public way to do three things the plugin needs:

- point an already imported trackio at another store (the ``trackio_dir`` option, and a
  ``$TRACKIO_DIR`` set after import): :func:`store_constants`;
- change a run's config after its first row, which is where the run summary goes:
  :func:`writes_local_sqlite`, :func:`config_rewriter`, :func:`reattach_config`;
- tell whether ``Run.finish()`` wrote everything before it returned: :func:`still_writing`;
- make the rows a run has queued for its writer thread survive the death of the process
  before ``finish()``: :func:`write_queued_rows`;
- read back the rows a run already holds, so that a replacement delivery process does not
  write them twice: :func:`stored_rows`.

Each function checks that the internal it uses is there with the expected shape. When it is
not (a Trackio newer than the plugin), the feature degrades as the function says,
:func:`degraded` logs one warning per process naming the Trackio version and what is lost, and
the run goes on: nothing here raises because Trackio changed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger("noether.trackers.trackio")

#: Rewrites the stored config of a finished local run: ``(run, config) -> found a row``.
ConfigRewriter = Callable[[Any, Mapping[str, Any]], bool]

_warned: set[str] = set()
_warned_lock = threading.Lock()
_MISSING = object()


def trackio_version() -> str:
    """The installed Trackio's version ("unknown" when it cannot be told)."""
    try:
        return metadata.version("trackio")
    except metadata.PackageNotFoundError:
        return str(getattr(sys.modules.get("trackio"), "__version__", "unknown"))


def _plugin_version() -> str:
    try:
        return metadata.version("noether-trackers-trackio")
    except metadata.PackageNotFoundError:
        return "(unknown version)"


def _module(name: str) -> Any:
    """The module ``name`` of trackio, or None when this Trackio has no such module."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def degraded(internal: str, consequence: str) -> None:
    """Warn, once per process for each ``internal``, that this Trackio lacks it and what that
    costs (``consequence``)."""
    with _warned_lock:
        if internal in _warned:
            return
        _warned.add(internal)
    logger.warning(
        "Trackio %s has changed %s, which noether-trackers-trackio %s relies on: %s. "
        "Logging goes on; a newer noether-trackers-trackio may restore this.",
        trackio_version(),
        internal,
        _plugin_version(),
        consequence,
    )


# ---- the store ---------------------------------------------------------------------------------


def store_constants() -> dict[str, Path] | None:
    """Trackio's store and the directories it keeps inside it, by their constant's name.

    Trackio reads ``$TRACKIO_DIR`` once, at import, into ``trackio.utils.TRACKIO_DIR`` and
    derives further upper-case ``Path`` constants from it (``MEDIA_DIR``, ``ARTIFACTS_DIR``,
    ...); all of them are returned, ``TRACKIO_DIR`` included. None, after a warning, when
    ``trackio.utils`` has no ``TRACKIO_DIR`` path: the store cannot be moved then.
    """
    utils = _module("trackio.utils")
    root = getattr(utils, "TRACKIO_DIR", None)
    if not isinstance(root, Path):
        degraded(
            "trackio.utils.TRACKIO_DIR (the store directory, a Path)",
            "an already imported Trackio cannot be pointed at a run's store; $TRACKIO_DIR is "
            "set for the run instead, which Trackio may read only when it is first imported, "
            "so runs may be stored where Trackio was imported to look (`trackio_dir` and a "
            "$TRACKIO_DIR set after import may have no effect)",
        )
        return None
    constants = {"TRACKIO_DIR": root}
    for name, value in vars(utils).items():
        if name.isupper() and isinstance(value, Path) and value.is_relative_to(root):
            constants[name] = value
    return constants


# ---- the config after the first row (the run summary) ------------------------------------------


def writes_local_sqlite(run: Any) -> bool | None:
    """True when ``run`` (a ``trackio.Run``) writes straight into the local SQLite store.

    None, after a warning, when this Trackio's run does not tell (``_is_local``,
    ``_storage_mode``): the summary then travels with the run (:func:`reattach_config`) and is
    checked in the local store afterwards.
    """
    is_local = getattr(run, "_is_local", None)
    mode = getattr(run, "_storage_mode", None)
    if not isinstance(is_local, bool) or not isinstance(mode, str):
        degraded(
            "trackio.Run._is_local and _storage_mode (where a run writes)",
            "the run summary travels with one extra row of no metrics at the run's last step",
        )
        return None
    return is_local and mode == "sqlite"


def config_rewriter() -> ConfigRewriter | None:
    """A function that rewrites the stored config of a finished local run, or None, after a
    warning, when this Trackio lacks what it needs (``SQLiteStorage``'s project path,
    process lock and connection, ``utils.serialize_values``/``to_json_safe``)."""
    utils = _module("trackio.utils")
    storage = getattr(_module("trackio.sqlite_storage"), "SQLiteStorage", None)
    needed: dict[str, Any] = {
        "SQLiteStorage.get_project_db_path": getattr(storage, "get_project_db_path", None),
        "SQLiteStorage._get_process_lock": getattr(storage, "_get_process_lock", None),
        "SQLiteStorage._get_connection": getattr(storage, "_get_connection", None),
        "utils.serialize_values": getattr(utils, "serialize_values", None),
        "utils.to_json_safe": getattr(utils, "to_json_safe", None),
    }
    missing = [name for name, found in needed.items() if not callable(found)]
    if missing:
        degraded(
            f"trackio.sqlite_storage ({', '.join(missing)})",
            "the run summary of a local run is sent with one extra row of no metrics at the "
            "run's last step instead of being written in place",
        )
        return None
    db_path, process_lock, connect, serialize, json_safe = needed.values()

    def rewrite(run: Any, config: Mapping[str, Any]) -> bool:
        path = Path(db_path(run.project))
        if not path.exists():
            return False
        # The encoding Trackio's bulk_log gives the config column.
        payload = json.dumps(serialize(json_safe(dict(config))), separators=(",", ":"))
        with process_lock(run.project), connect(path) as connection:
            cursor = connection.execute(
                "UPDATE configs SET config = ? WHERE run_id = ?", (payload.encode(), run.id)
            )
            return bool(cursor.rowcount > 0)

    return rewrite


def rewrite_stored_config(rewrite: ConfigRewriter, run: Any, config: Mapping[str, Any]) -> bool:
    """Run ``rewrite``; False when no config row was found. A store whose layout changed
    (an SQLite error) warns as :func:`degraded` and counts as not rewritten."""
    try:
        return rewrite(run, config)
    except sqlite3.Error as error:
        degraded(
            f"the configs table of its SQLite store ({error})",
            "the run summary is not recorded for local runs that logged rows",
        )
        return False


def reattach_config(run: Any) -> bool:
    """Make ``run`` send its config again with its next row (Trackio attaches it to the first
    row only); False, after a warning, when this Trackio's run has no ``_config_logged``."""
    if not isinstance(getattr(run, "_config_logged", None), bool):
        degraded(
            "trackio.Run._config_logged (whether the config was sent)",
            "the run summary is not recorded for runs on a Space, a server or a JSONL store "
            "that logged rows",
        )
        return False
    run._config_logged = False
    return True


def stored_config(project: str, run_id: str) -> dict[str, Any] | None:
    """The config stored for run ``run_id``, read through the public ``trackio.Api``; None when
    there is none or it cannot be read."""
    try:
        import trackio

        for found in trackio.Api().runs(project):
            if found.id == run_id:
                config = found.config
                return dict(config) if isinstance(config, Mapping) else None
    except Exception:  # a read-back that fails says nothing about the run itself
        logger.debug("cannot read back the config of Trackio run %s", run_id, exc_info=True)
    return None


# ---- finishing ---------------------------------------------------------------------------------


def still_writing(run: Any) -> bool:
    """True when the run's local writer thread is still running after ``finish()``.

    False, after a warning, when this Trackio's run has no ``_local_sender_thread``.
    """
    sender = getattr(run, "_local_sender_thread", _MISSING)
    if sender is _MISSING:
        degraded(
            "trackio.Run._local_sender_thread (its writer thread)",
            "a run whose rows are still being written after finish() is not reported",
        )
        return False
    return isinstance(sender, threading.Thread) and sender.is_alive()


# ---- the rows queued for the writer thread ---------------------------------------------------

#: How often :func:`write_queued_rows` looks whether the writer thread has written the rows.
_POLL_INTERVAL = 0.01


def write_queued_rows(run: Any, timeout: float) -> bool:
    """Have the rows ``run`` queued for its writer thread written before this returns, so
    that they survive a SIGKILL of this process; False when that did not happen within
    ``timeout`` seconds.

    Trackio's ``Run.log`` queues a row; its writer thread writes the queue every half second
    (``BATCH_SEND_INTERVAL``), holding ``Run._client_lock`` while it writes. A local run's
    queue is written here and now, on the calling thread, the way the writer thread does it
    (``Run._flush_queues_inline`` under that lock). Otherwise (a run on a Space or server, or
    a Trackio without that method) this waits until the writer thread has taken and sent
    the queue: the lock is free and ``Run._queued_logs`` (and 0.43's ``_sending_batch``) are
    empty. True, after a warning, when this Trackio's run has no such lock or queue: nothing
    can be done then.
    """
    lock: Any = getattr(run, "_client_lock", None)
    queued: Any = getattr(run, "_queued_logs", None)
    if not callable(getattr(lock, "acquire", None)) or not isinstance(queued, list):
        degraded(
            "trackio.Run._client_lock and _queued_logs (its writer thread's lock and queue)",
            "rows logged up to half a second before the process is killed may be lost",
        )
        return True
    write_now = getattr(run, "_flush_queues_inline", None)
    if getattr(run, "_is_local", None) is True and callable(write_now):
        if not lock.acquire(timeout=timeout):
            return False
        try:
            write_now()
        finally:
            lock.release()
        return True
    deadline = time.monotonic() + timeout
    while True:
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                written = not run._queued_logs and not getattr(run, "_sending_batch", None)
            finally:
                lock.release()
            if written:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)


# ---- the rows a run already holds ---------------------------------------------------------------


def stored_rows(run: Any) -> list[tuple[int, frozenset[str]]] | None:
    """The step and metric names of every row the local store holds for ``run`` (a
    ``trackio.Run``), in the order written; None, after a warning, when this Trackio's
    ``SQLiteStorage.get_logs`` is missing or cannot read the store."""
    storage = getattr(_module("trackio.sqlite_storage"), "SQLiteStorage", None)
    get_logs = getattr(storage, "get_logs", None)
    consequence = (
        "a delivery process that replaces a killed one may write again the rows Trackio's "
        "writer thread wrote after the last flush"
    )
    if not callable(get_logs):
        degraded("trackio.sqlite_storage.SQLiteStorage.get_logs (a run's stored rows)", consequence)
        return None
    try:
        logs = get_logs(run.project, run.name)
        return [
            (int(row["step"]), frozenset(key for key in row if key not in ("step", "timestamp")))
            for row in logs
        ]
    except (sqlite3.Error, KeyError, TypeError, ValueError) as error:
        degraded(f"the metrics table of its SQLite store ({error!r})", consequence)
        return None


# ---- public API checks -------------------------------------------------------------------------

#: What a run loses without each optional ``trackio.init`` parameter the plugin passes.
_INIT_OPTIONS = {
    "name": "Trackio names the run itself",
    "group": "the run is in no group",
    "space_id": "the run is logged locally",
    "config": "the run has no config and no summary",
    "resume": "a restarted run starts a new Trackio run",
    "private": "a Space Trackio creates has its default visibility",
    "embed": "in a notebook Trackio may start a dashboard",
}


def supported_init_options(init: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` less the ones ``init`` (``trackio.init``) no longer takes, each warned about
    once (``project`` is always passed)."""
    try:
        parameters = inspect.signature(init).parameters
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    kept = {}
    for name, value in options.items():
        if name in parameters or name not in _INIT_OPTIONS:
            kept[name] = value
        else:
            degraded(f"trackio.init (no parameter '{name}')", _INIT_OPTIONS[name])
    return kept
