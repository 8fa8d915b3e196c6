"""The Trackio tracker: each run becomes one Trackio run, as if made with ``trackio.init``."""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from noether.core.trackers.plugin import (
    BaseTracker,
    Finite,
    Gt,
    RunInfo,
    RunLocation,
    RunStatus,
    Value,
    safe_relative_path,
    shell_command,
    shown_path,
)
from noether_trackers_trackio import compat, console, convert, hub, storage_dir, summary_store
from noether_trackers_trackio.already_stored import AlreadyStored
from noether_trackers_trackio.errors import TrackioHubUnreachableError

logger = logging.getLogger("noether.trackers.trackio")

#: Environment variables that make ``trackio.init`` log remotely although no space_id is passed.
_REMOTE_ENV = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL")
#: The longest ``_flush`` waits for Trackio's writer (seconds).
FLUSH_TIMEOUT = 30.0


class TrackioTracker(BaseTracker):
    """Logs a run to Trackio (local SQLite store, optionally synced to a Hugging Face Space).

    Options (YAML): ``project`` (required); ``space_id`` (a Hugging Face Space to log to);
    ``name`` (Trackio run name; default the run name, ``run/stage`` for a stage; Trackio
    stores a run's media under a directory named after it, so a name that would lead out of
    the store is passed percent-encoded as one directory instead, see :attr:`run_name`);
    ``group`` (default: the run name when the run has a stage, so stages appear together);
    ``trackio_dir`` (the local store; default where ``trackio show`` looks: ``$TRACKIO_DIR`` or
    ``$HF_HOME/trackio``); ``resume`` (Trackio's: ``never``, ``allow`` or ``must``, by name;
    default ``allow`` for a resumed run, else ``never``);
    ``private`` (for a Space Trackio creates); ``space_timeout`` (seconds the Hub gets to answer
    before the Space counts as unreachable) and ``on_space_unreachable`` (``local``: log
    locally with one warning; ``fail``: refuse to start).
    """

    #: The plugin API version this backend was written for (see ``PLUGIN_API``).
    plugin_api = "1.0"
    backend_library = "trackio"

    def __init__(
        self,
        *,
        project: str,
        space_id: str | None = None,
        name: str | None = None,
        group: str | None = None,
        trackio_dir: str | None = None,
        resume: Literal["never", "allow", "must"] | None = None,
        private: bool | None = None,
        space_timeout: Annotated[float, Gt(0, "a positive number of seconds"), Finite()] = 10.0,
        on_space_unreachable: Literal["local", "fail"] = "local",
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_options(project, space_id, name, group, trackio_dir)
        super().__init__(output_path=output_path)
        self.project = project
        self.space_id = space_id
        self.name = name
        self.group = group
        self.trackio_dir = trackio_dir
        self.resume = resume
        self.private = private
        self.space_timeout = float(space_timeout)
        self.on_space_unreachable = on_space_unreachable
        #: The store this tracker's run went to (set by ``init``).
        self.directory: Path | None = None
        #: The Space the run logs to (set by ``init``; None: the local store only).
        self.space_used: str | None = None
        #: The ``trackio.Run`` while the run is open.
        self.trackio_run: Any = None
        #: The name the Trackio run has (set by ``init``): ``name`` or the run's display name,
        #: unless that would put media outside the store (see :func:`trackio_run_name`).
        self.run_name: str | None = None
        self._holds_directory = False
        self._probe: hub.HubProbe | None = None
        self._summary: dict[str, Any] = {}
        self._summary_key = convert.SUMMARY_KEYS[0]
        self._last_step: int | None = None
        # rows logged since the last _flush (which has nothing to do without them)
        self._unflushed = False
        # for a replacement delivery process: the calls sent again that the store holds
        self._already_stored: AlreadyStored | None = None

    # ---- backend interface -------------------------------------------------------------------

    def _init(self, run: RunInfo) -> None:
        import trackio

        self.directory = storage_dir.resolve_trackio_dir(self.trackio_dir)
        storage_dir.acquire(self.directory)
        self._holds_directory = True
        try:
            self.run_name = trackio_run_name(self.name or run.display_name)
            space_id, fell_back = self._space_to_use()
            self.space_used = space_id
            config = convert.trackio_config(run.config)
            self._summary_key = convert.summary_key(config)
            with console.prints_to_logging(logger), _hidden_env(_REMOTE_ENV if fell_back else ()):
                # A fresh context: trackio.init finishes "the current run" of its context and
                # records the new one there; this keeps that away from the caller's own
                # trackio runs and from other Trackio trackers of the same process.
                options = compat.supported_init_options(
                    trackio.init,
                    {
                        "name": self.run_name,
                        "group": self.group or (run.run_name if run.stage_name else None),
                        "space_id": space_id,
                        "config": config,
                        # a restarted job (same run id, same output path) continues its run
                        "resume": self.resume or ("allow" if run.resumed else "never"),
                        "private": self.private,
                        "embed": False,  # embedding in a notebook starts a dashboard server
                    },
                )
                self.trackio_run = contextvars.Context().run(
                    trackio.init, project=self.project, **options
                )
            if getattr(run, "redelivery", False) and compat.writes_local_sqlite(self.trackio_run):
                rows = compat.stored_rows(self.trackio_run)
                self._already_stored = AlreadyStored(rows) if rows else None
        except BaseException:
            self._release_directory()
            raise

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        # ``wall_time`` is not passed on: Trackio has no way to take it. ``Run.log`` has no
        # timestamp parameter and its queued rows none either; its writer stamps every row
        # with the time it writes it (``SQLiteStorage.bulk_log`` is called without
        # ``timestamps``), in Trackio 0.38 to 0.43. Trackio plots against steps; its "time"
        # of a point is when the row was written.
        if self.trackio_run is None:
            return
        self._last_step = step if self._last_step is None else max(self._last_step, step)
        if self._already_stored is not None and self._already_stored.holds(step, values):
            return
        self.trackio_run.log(convert.to_trackio_metrics(values), step=step)
        self._unflushed = True

    def _flush(self) -> None:
        """Have the rows Trackio queued written to its store before this returns: its writer
        thread writes them only every half second, and a killed process loses what is still
        queued. A local run's rows are written here and now, the writer thread's own way (a
        write costs Trackio about 10 ms: the engine flushes a busy backend at most every half
        second); otherwise this waits for the writer thread. Never more than
        :data:`FLUSH_TIMEOUT` seconds: TimeoutError then (the rows are not known to be kept).
        Nothing to do when nothing was logged since the last flush. The summary needs nothing
        here: it is written at close, and the end-of-run summary covers the whole run."""
        run = self.trackio_run
        if run is None or not self._unflushed:
            return
        if not compat.write_queued_rows(run, FLUSH_TIMEOUT):
            raise TimeoutError(
                f"Trackio did not write the rows of run {run.name!r} within {FLUSH_TIMEOUT:g}s"
            )
        self._unflushed = False

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        self._summary.update({key: convert.summary_value(value) for key, value in values.items()})

    def _close(self, status: RunStatus) -> None:
        run, self.trackio_run = self.trackio_run, None
        try:
            if run is not None:
                with console.prints_to_logging(logger):
                    self._finish(run, status)
        finally:
            if self._probe is not None:
                self._probe.join(self.space_timeout + hub.JOIN_GRACE)
            self._release_directory()

    def run_location(self) -> RunLocation | None:
        """The run's Space page; or its local store and the ``trackio show`` command that
        opens the dashboard on it (with ``TRACKIO_DIR=...`` when the store is not the one
        ``trackio show`` reads by default)."""
        if self.space_used is not None:
            return RunLocation("trackio", f"https://huggingface.co/spaces/{self.space_used}")
        if self.directory is None:
            return None
        return RunLocation(
            "trackio",
            shown_path(self.directory),
            self._trackio_command(["show", "--project", self.project]),
        )

    # ---- helpers -------------------------------------------------------------------------------

    def _trackio_command(self, arguments: list[str]) -> str:
        """A ``trackio`` command on this run's store, as it runs when printed."""
        assert self.directory is not None
        store = self.directory
        default = storage_dir.default_trackio_dir(honour_trackio_dir=False)
        env = {} if store == default else {"TRACKIO_DIR": str(store)}
        return shell_command("trackio", arguments, env)

    def _finish(self, run: Any, status: RunStatus) -> None:
        summary = {**self._summary, "_status": status}
        logged_rows = self._last_step is not None
        # True / False / None: this Trackio does not tell (then both ways are taken).
        local = compat.writes_local_sqlite(run) if logged_rows else False
        rewrite = compat.config_rewriter() if local is not False else None
        in_place = bool(local) and rewrite is not None
        sent = False
        try:
            if not in_place:
                if logged_rows:
                    # the rows first: Trackio keeps the config of the first row of a write, so
                    # the summary's row must not share a write with the run's first row
                    compat.write_queued_rows(run, FLUSH_TIMEOUT)
                sent = summary_store.send_with_run(
                    run, self._summary_key, summary, self._last_step or 0, logged_rows=logged_rows
                )
        finally:
            run.finish()  # joins Trackio's writer thread: everything queued is on disk after it
        if compat.still_writing(run):
            logger.warning("Trackio did not finish writing run %r in time", run.name)
        if local is not False:
            summary_store.record_locally(
                rewrite, run, self._summary_key, summary, sent=sent, known_local=bool(local)
            )

    def _space_to_use(self) -> tuple[str | None, bool]:
        """The Space to pass to Trackio, and whether the run falls back to local storage.

        Whenever ``trackio.init`` would talk to the Hub, the Hub first gets ``space_timeout``
        seconds to answer one request, so that an unreachable Hub costs that long and no more.
        """
        space_id = self.space_id or os.environ.get("TRACKIO_SPACE_ID") or None
        if space_id is None:
            if hub.has_token() and not hub.offline_mode():
                # trackio.init looks up the token's user name even for a local run.
                status = self._check_hub()
                if status.timed_out:
                    raise TrackioHubUnreachableError(_blocking_lookup_message(status))
            return None, False
        if hub.offline_mode():
            status = hub.HubStatus(hub.hub_endpoint(), False, False, "HF_HUB_OFFLINE is set")
        else:
            status = self._check_hub()
        if status.reachable:
            return space_id, False
        where = f"the Hugging Face Hub at {status.endpoint}: {status.reason}"
        if self.on_space_unreachable == "fail":
            raise TrackioHubUnreachableError(
                f"Trackio Space '{space_id}' is unreachable ({where}); the run was not "
                "started. Set `on_space_unreachable: local` to log it locally instead."
            )
        if status.timed_out and hub.has_token():
            raise TrackioHubUnreachableError(_blocking_lookup_message(status))
        logger.warning(
            "Trackio Space '%s' is unreachable (%s); logging run '%s' locally to %s instead. "
            "Upload it later with: %s",
            space_id,
            where,
            self.run_name,
            self.directory,
            self._trackio_command(["sync", "--project", self.project, "--space-id", space_id]),
        )
        return None, True

    def _check_hub(self) -> hub.HubStatus:
        self._probe = hub.HubProbe(hub.hub_endpoint(), self.space_timeout)
        return self._probe.check()

    def _release_directory(self) -> None:
        if self._holds_directory:
            self._holds_directory = False
            storage_dir.release()


def trackio_run_name(name: str) -> str:
    """The name to give Trackio for a run called ``name``: ``name`` itself where possible.

    Trackio saves a run's media under ``<store>/media/<project>/<run name>/<step>/``, joining
    the run name as a path (and its ``rename``/``move`` commands move that directory later).
    A name that is a harmless relative path (``exp``, ``exp/finetune``, any unicode) is kept;
    one that is not (``..`` parts, a leading ``/``, NUL, a backslash, over 200 bytes) is
    percent-encoded into one directory name (``../x`` becomes ``..%2Fx``), the same name on
    every start, so that resuming by name still finds the run.
    """
    safe = safe_relative_path(name)
    if safe != name:
        logger.warning(
            "Trackio run name %r cannot be a path inside the Trackio store (Trackio names the "
            "run's media directory after it); the run is named %r instead",
            name,
            safe,
        )
    return safe


def _blocking_lookup_message(status: hub.HubStatus) -> str:
    return (
        f"the Hugging Face Hub at {status.endpoint} gave {status.reason}; Trackio looks up "
        "the user name of the Hugging Face token (HF_TOKEN or a saved login) when a run "
        "starts, and would block. Set HF_HUB_OFFLINE=1 on machines without Hub access, or "
        "unset the token."
    )


def _check_options(
    project: str,
    space_id: str | None,
    name: str | None,
    group: str | None,
    trackio_dir: str | None,
) -> None:
    if not project.strip():
        raise ValueError("project must not be empty")
    for option, value in (("name", name), ("group", group), ("trackio_dir", trackio_dir)):
        if value is not None and not value.strip():
            raise ValueError(f"{option} must not be empty (leave it out for the default)")
    if space_id is not None and (not space_id.strip() or space_id.count("/") > 1):
        raise ValueError(f"space_id must be 'user/space' or 'space'; got {space_id!r}")


@contextmanager
def _hidden_env(names: tuple[str, ...]) -> Iterator[None]:
    """Unset ``names`` in the block (a local fallback must not pick up a Space from the
    environment), then put them back."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
