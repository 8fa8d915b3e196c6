"""The W&B tracker: one W&B run per noether run, that keeps working without a network."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from noether.core.trackers.plugin import (
    BaseTracker,
    Direction,
    Finite,
    Gt,
    Image,
    RunInfo,
    RunLocation,
    RunStatus,
    SummaryDirections,
    Table,
    Value,
    first_line,
    shell_command,
    shown_path,
)
from noether_trackers_wandb.connectivity import server_problem
from noether_trackers_wandb.convert import to_wandb
from noether_trackers_wandb.credentials import credentials_problem
from noether_trackers_wandb.names import media_key, wandb_run_id
from noether_trackers_wandb.session import WandbSession, exclusive, is_offline
from noether_trackers_wandb.unsaved import UnsavedRows, file_name, lost_rows

logger = logging.getLogger("noether.trackers.wandb")

WandbMode: TypeAlias = Literal["online", "offline", "disabled"]
#: Characters that make a ``define_metric`` name a pattern: such a metric keeps W&B's summary.
_GLOB_CHARACTERS = frozenset("*?[")
WandbResume: TypeAlias = Literal["allow", "never", "must", "auto"]
#: The key of a W&B history row that holds its wall time (seconds since the epoch).
_TIMESTAMP_KEY = "_timestamp"

#: The W&B exit code for each way a run ends. W&B marks a run successful only with 0;
#: ``interrupted`` uses the code wandb itself reports for Ctrl-C, ``terminated`` the shell's
#: 128 + SIGTERM.
EXIT_CODES: dict[RunStatus, int] = {
    "finished": 0,
    "failed": 1,
    "interrupted": 255,
    "terminated": 143,
}

#: ``wandb.Settings`` fields that are tracker options: the option is the one place to set them.
_SETTINGS_WITH_OPTIONS = {
    "mode": "mode",
    "project": "project",
    "entity": "entity",
    "run_name": "name",
    "run_group": "group",
    "run_job_type": "job_type",
    "run_tags": "tags",
    "run_notes": "notes",
    "root_dir": "dir",
    "resume": "resume",
    "init_timeout": "init_timeout",
}
#: W&B's limit on the length of a tag.
_MAX_TAG_LENGTH = 64


class WandBConnectionError(RuntimeError):
    """An online W&B run could not start (no key, server unreachable) and fallback is off."""


class WandBTracker(BaseTracker):
    """Logs to a Weights & Biases run: online, offline (synced later) or disabled.

    The W&B run takes the run id as its id (re-running with the same id resumes it; an id that
    W&B refuses or that cannot name W&B's files is mapped to a stable one, see
    :attr:`wandb_run_id`), the run name (``run/stage`` for a stage) as its name, the stage as
    its job type and the hyperparameters as its config. Every value is logged with a step
    metric (``global_step``) as its x-axis, so values logged at a repeated or earlier step are
    kept, not dropped.

    Options (YAML): ``project``, ``entity``, ``mode`` (``online``, ``offline``, ``disabled``;
    unset: W&B's own choice, i.e. ``WANDB_MODE`` or online), ``name``, ``group``,
    ``job_type``, ``tags``, ``notes``, ``dir`` (where W&B's ``wandb/`` directory goes;
    default the run's output path, a relative path is taken inside it), ``resume`` (default
    ``allow``), ``init_timeout`` (seconds an online start may take, default 30),
    ``offline_fallback`` (default true: log offline when the server cannot be used; false:
    fail), ``step_metric`` and ``settings`` (further ``wandb.Settings`` fields).

    An offline run keeps the rows W&B has not written to disk yet (it writes its ``.wandb``
    file in 32 KiB blocks, and nothing more once the process is killed) in
    ``wandb/noether-unsaved-<id>.rows``, from ``_flush`` on: a resumed run logs those that the
    killed process's ``.wandb`` file lacks again, and a finished run deletes the file.
    """

    #: The plugin API version this backend was written for (see ``PLUGIN_API``).
    plugin_api = "1.0"
    backend_library = "wandb"

    def __init__(
        self,
        *,
        project: str | None = None,
        entity: str | None = None,
        mode: WandbMode | None = None,
        name: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
        dir: str | None = None,
        resume: WandbResume | None = "allow",
        init_timeout: Annotated[float, Gt(0, "a positive number of seconds"), Finite()] = 30.0,
        offline_fallback: bool = True,
        step_metric: str = "global_step",
        settings: dict[str, Any] | None = None,
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not step_metric:
            raise ValueError("step_metric must not be empty")
        for tag in tags or ():
            if not tag or len(tag) > _MAX_TAG_LENGTH:
                raise ValueError(
                    f"tags: W&B tags have 1 to {_MAX_TAG_LENGTH} characters; got {tag!r}"
                )
        for key in settings or {}:
            if key in _SETTINGS_WITH_OPTIONS:
                raise ValueError(
                    f"settings.{key}: set it with the option `{_SETTINGS_WITH_OPTIONS[key]}` "
                    "instead"
                )
            if key == "run_id":
                raise ValueError("settings.run_id: the W&B run id is the run id given to init()")
        super().__init__(output_path=output_path)
        self.project = project
        self.entity = entity
        self.mode = mode
        self.name = name
        self.group = group
        self.job_type = job_type
        self.tags = list(tags) if tags is not None else None
        self.notes = notes
        self.resume = resume
        self.init_timeout = float(init_timeout)
        self.offline_fallback = offline_fallback
        self.step_metric = step_metric
        self.settings = dict(settings or {})
        #: Where W&B puts its ``wandb/`` directory; None leaves it to W&B (``$WANDB_DIR`` or
        #: the working directory).
        self.directory = _w_and_b_directory(dir, output_path)
        #: The W&B run's directory, the one ``wandb sync`` uploads; set by ``init``.
        self.run_dir: Path | None = None
        #: The W&B run's id (set by ``init``): the run id, or for a run id that W&B refuses or
        #: that cannot name W&B's files, a stable stand-in made of its readable characters and
        #: a hash (:func:`~noether_trackers_wandb.names.wandb_run_id`).
        self.wandb_run_id: str | None = None
        #: Why an online run is logging offline instead, if it is.
        self.offline_reason: str | None = None
        #: The online run's page on the W&B server (None offline); set by ``init``.
        self.url: str | None = None
        self._session: WandbSession | None = None
        self._wandb_run: Any = None
        self._directions = SummaryDirections()
        # metrics whose W&B summary is defined already
        self._summarised: set[str] = set()
        # an offline run's rows that may not be in its .wandb file yet (see unsaved.py)
        self._unsaved: UnsavedRows | None = None

    @property
    def wandb_run(self) -> Any:
        """The live ``wandb.Run`` (for W&B features beyond this interface), or None."""
        return self._wandb_run

    # ---- the backend methods -----------------------------------------------------------------

    def _init(self, run: RunInfo) -> None:
        if self.mode == "disabled" or (
            self.mode is None and os.environ.get("WANDB_MODE") == "disabled"
        ):
            # Not even importing wandb: disabled costs nothing and touches no file.
            logger.info("W&B is disabled (mode: disabled); this run is not recorded in W&B")
            return
        self.wandb_run_id = _run_id_for_wandb(run.run_id)
        self._directions = run.summary_directions
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        with exclusive():
            self._session = WandbSession()
            try:
                self._wandb_run = self._start(run)
                if self._wandb_run is not None:
                    self._prepare(self._wandb_run)
                    self._keep_unsaved_rows(run)
            except BaseException:
                with contextlib.suppress(Exception):  # the error that stopped the start matters
                    self._end(EXIT_CODES["failed"])
                raise
            if self._wandb_run is None:
                self._end(EXIT_CODES["finished"])

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        if self._wandb_run is None or self._session is None:
            return
        unsaved = self._unsaved
        if unsaved is not None and unsaved.skip:
            unsaved.skip -= 1  # given again, and already in the killed process's .wandb file
            return
        self._send(values, step, wall_time)
        if unsaved is not None:
            unsaved.add(values, step)

    def _flush(self) -> None:
        """Offline: write the rows logged since the last flush to the file of unsaved rows
        (one write, handed to the OS), so that a SIGKILL loses none of them: ``wandb-core``
        writes the ``.wandb`` file only in 32 KiB blocks and, when its parent dies, quits
        without writing the last one (see :mod:`~noether_trackers_wandb.unsaved`). Nothing to
        do, not even a system call, when nothing was logged since. Online: nothing (the
        server has what ``wandb-core`` uploaded)."""
        if self._unsaved is not None:
            self._unsaved.flush()

    def _send(self, values: Mapping[str, Value], step: int, wall_time: float | None = None) -> None:
        """Log one row: ``values`` at ``step``, against the step metric, stamped
        ``wall_time`` (when the user logged it; None: W&B stamps it now)."""
        assert self._session is not None
        data = to_wandb(self._with_media_keys(values), self._session.wandb)
        if self.step_metric in data:
            self.warn_once(
                f"step metric {self.step_metric}",
                f"'{self.step_metric}' is the W&B step metric; the logged value is replaced by "
                "the step (choose another step_metric to log it)",
            )
        data[self.step_metric] = step
        if wall_time is not None:
            if _TIMESTAMP_KEY in data:
                self.warn_once(
                    _TIMESTAMP_KEY,
                    f"'{_TIMESTAMP_KEY}' is W&B's time of a row; the logged value is replaced "
                    "by the time of the log() call",
                )
            # wandb keeps a row's `_timestamp` when the data has one (its own TensorBoard
            # import relies on it) instead of stamping the row when run.log is called: the
            # row shows when the user logged it, also when delivered late or replayed
            data[_TIMESTAMP_KEY] = wall_time
        self._define_summaries(values)
        self._wandb_run.log(data)

    def _define_summaries(self, values: Mapping[str, Value]) -> None:
        """Tell W&B, once per metric, to summarise a best-when-low (high) metric by its
        minimum (maximum), by the run's summary directions; others keep W&B's last value."""
        for key, value in values.items():
            if key in self._summarised or not isinstance(value, int | float):
                continue
            self._summarised.add(key)
            direction = self._directions.direction(key)
            if direction is not Direction.NEUTRAL and not set(key) & _GLOB_CHARACTERS:
                self._wandb_run.define_metric(
                    key, step_metric=self.step_metric, summary=f"{direction.value},last"
                )

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        if self._wandb_run is None or self._session is None:
            return
        self._wandb_run.summary.update(to_wandb(self._with_media_keys(values), self._session.wandb))

    def _with_media_keys(self, values: Mapping[str, Value]) -> Mapping[str, Value]:
        """``values`` with every image and table under a key W&B can name files after.

        W&B makes file and artifact names of these keys, and refuses (or, for an image,
        leaves its temporary file behind) when a key has ``..`` parts, a leading ``/``, NUL
        or too many characters; such a key is logged as
        :func:`~noether_trackers_wandb.names.media_key` maps it, with one warning.
        """
        if not any(isinstance(value, Image | Table) for value in values.values()):
            return values  # the common case: nothing is copied
        assert self.wandb_run_id is not None
        renamed: dict[str, Value] = {}
        for key, value in values.items():
            if isinstance(value, Image | Table):
                safe = media_key(key, self.wandb_run_id)
                if safe != key:
                    self.warn_once(
                        f"media key {key}",
                        f"W&B names files after the key of an image or table and cannot use "
                        f"{key!r}; logging it to W&B as {safe!r}",
                    )
                key = safe
            renamed[key] = value
        return renamed

    def _close(self, status: RunStatus) -> None:
        self._end(EXIT_CODES[status])

    def run_location(self) -> RunLocation | None:
        """The online run's page; or the offline run's directory and the ``wandb sync``
        command that uploads it. None when W&B is disabled."""
        if self.url is not None:
            return RunLocation("wandb", self.url)
        if self.run_dir is None:
            return None
        return RunLocation(
            "wandb", shown_path(self.run_dir), _sync_command(self.run_dir), "upload it"
        )

    def _end(self, exit_code: int) -> None:
        """Finish the W&B run (if one started) with ``exit_code`` and release wandb."""
        wandb_run, session, unsaved = self._wandb_run, self._session, self._unsaved
        self._wandb_run = self._session = self._unsaved = None
        finished = False
        try:
            if wandb_run is not None:
                wandb_run.finish(exit_code=exit_code)
                finished = True
        finally:
            try:
                if unsaved is not None:
                    # a finished run's .wandb file holds every row; else a resumed run may
                    # need them
                    if not finished:
                        unsaved.flush()
                    unsaved.close(finished=finished)
            finally:
                if session is not None:
                    session.release(self.wandb_run_id)

    def _keep_unsaved_rows(self, run: RunInfo) -> None:
        """Offline: start the file of rows not yet in the ``.wandb`` file; a resumed run first
        logs again the rows its killed predecessor logged that its ``.wandb`` file lacks."""
        wandb_run = self._wandb_run
        if not wandb_run.offline or self.run_dir is None or self.wandb_run_id is None:
            return
        path = self.run_dir.parent / file_name(self.wandb_run_id)
        lost, skip = lost_rows(path) if run.resumed else ([], 0)
        # a new delivery process gives again the calls taken since the last _flush: those
        # whose rows wandb-core wrote anyway (a full block) are skipped. A restarted job is
        # given nothing again.
        if not getattr(run, "redelivery", False):
            skip = 0
        wandb_file = getattr(wandb_run.settings, "sync_file", None)
        if not wandb_file:
            wandb_file = self.run_dir / f"run-{self.wandb_run_id}.wandb"
        # the lost rows are in the new file before they are logged: a kill in between
        # loses none of them
        self._unsaved = UnsavedRows(path, Path(wandb_file), lost, skip)
        if lost:
            logger.info(
                "W&B: logging again %d rows that the killed process before logged to run %s "
                "and W&B had not written to disk",
                len(lost),
                self.wandb_run_id,
            )
        for values, step in lost:
            try:
                self._send(values, step)
            except Exception as error:  # logged once already: not a reason to fail the start
                logger.warning("W&B: could not log again the row of step %d: %s", step, error)

    # ---- starting the run --------------------------------------------------------------------

    def _start(self, run: RunInfo) -> Any:
        """The started W&B run, or None when W&B's own settings say disabled."""
        assert self._session is not None
        init_settings = self._session.settings(self.settings)
        effective = self._session.effective_settings(init_settings)
        mode = self.mode or _mode_of(effective)
        if mode == "disabled":
            logger.info("W&B is disabled by its settings; this run is not recorded in W&B")
            return None
        if mode == "offline":
            return self._init_run(run, "offline", self._offline_settings())
        deadline = time.monotonic() + self.init_timeout
        base_url = str(getattr(effective, "base_url", ""))
        problem = credentials_problem(effective) or server_problem(
            base_url, self.init_timeout, _proxies(effective)
        )
        if problem is None:
            remaining = max(deadline - time.monotonic(), 1.0)
            try:
                online = self._session.settings({**self.settings, "init_timeout": remaining})
                return self._init_run(run, "online", online)
            except Exception as error:
                problem = f"the online W&B run could not start ({first_line(error)})"
                # wandb's service keeps the failed run's id taken: go offline on a fresh one.
                self._session.release(self.wandb_run_id)
                self._session = WandbSession()
        if not self.offline_fallback:
            raise WandBConnectionError(
                f"W&B: {problem}. The run was not started because offline_fallback is false; "
                "use `mode: offline` to log without a server"
            )
        wandb_run = self._init_run(run, "offline", self._offline_settings())
        self.offline_reason = problem
        logger.warning(
            "W&B: %s; logging this run offline instead. Upload it later with: %s",
            problem,
            _sync_command(_sync_dir(wandb_run)),
        )
        return wandb_run

    def _offline_settings(self) -> Any:
        """The user's settings for an offline run, silent unless they say otherwise: W&B's
        own footer prints a bare ``wandb sync`` that fails unless the environment is
        activated; this plugin says where the run went with a command that runs as printed
        (:meth:`run_location`)."""
        assert self._session is not None
        return self._session.settings({"silent": True, **self.settings})

    def _init_run(self, run: RunInfo, mode: WandbMode, settings: Any) -> Any:
        assert self._session is not None
        return self._session.wandb.init(
            project=self.project,
            entity=self.entity,
            dir=str(self.directory) if self.directory is not None else None,
            id=self.wandb_run_id,
            name=self.name or run.display_name,
            group=self.group,
            job_type=self.job_type or run.stage_name,
            tags=self.tags,
            notes=self.notes,
            config=run.config,
            mode=mode,
            resume=self.resume,
            reinit=self._session.reinit,
            settings=settings,
        )

    def _prepare(self, wandb_run: Any) -> None:
        # W&B drops a value whose step is below the run's current step. Giving every metric
        # our step as its x-axis, and leaving W&B's own step to count log calls, keeps
        # evaluations logged at an earlier step and the points of a resumed run.
        wandb_run.define_metric(self.step_metric)
        wandb_run.define_metric("*", step_metric=self.step_metric)
        run_dir = _sync_dir(wandb_run)
        self.run_dir = Path(run_dir) if run_dir else None
        if self.run_dir is not None and self._session is not None:
            self._session.stage_artifacts_in(self.run_dir / "data")
        if not wandb_run.offline:
            self.url = wandb_run.url
        elif self.run_dir is not None and self.offline_reason is None:
            logger.info("W&B run is offline; upload it later with: %s", _sync_command(self.run_dir))


def _sync_command(run_dir: str | os.PathLike[str]) -> str:
    """The ``wandb sync`` command that uploads the offline run in ``run_dir``, as printed."""
    return shell_command("wandb", ["sync", shown_path(run_dir)])


def _run_id_for_wandb(run_id: str) -> str:
    """The W&B id for ``run_id``, with one warning when it is not ``run_id`` itself."""
    mapped = wandb_run_id(run_id)
    if mapped != run_id:
        logger.warning(
            "W&B: run id %r is not a valid W&B run id (W&B refuses some characters, and the id "
            "names W&B's files); the W&B run id is %r, the same each time this run id is used",
            run_id,
            mapped,
        )
    return mapped


def _w_and_b_directory(
    option: str | None, output_path: str | os.PathLike[str] | None
) -> Path | None:
    base = Path(output_path) if output_path is not None else None
    if option is None:
        return base
    directory = Path(option).expanduser()
    return directory if directory.is_absolute() or base is None else base / directory


def _mode_of(settings: Any) -> WandbMode:
    if str(getattr(settings, "mode", "online")) == "disabled":
        return "disabled"
    return "offline" if is_offline(settings) else "online"


def _proxies(settings: Any) -> dict[str, str] | None:
    proxies = {
        scheme: str(url)
        for scheme, url in (
            ("http", getattr(settings, "http_proxy", None)),
            ("https", getattr(settings, "https_proxy", None)),
        )
        if url
    }
    return proxies or None


def _sync_dir(wandb_run: Any) -> str:
    return str(getattr(wandb_run.settings, "sync_dir", "") or "")
