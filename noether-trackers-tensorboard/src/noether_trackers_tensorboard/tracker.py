"""The TensorBoard tracker: event files TensorBoard reads, written without torch."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

from noether.core.trackers.plugin import (
    BaseTracker,
    Gt,
    RunInfo,
    RunLocation,
    RunStatus,
    Value,
    dump_yaml,
    safe_component,
    shell_command,
    shown_path,
)


class TensorboardTracker(BaseTracker):
    """Writes every value to TensorBoard event files under ``output_path / log_dir``.

    Options (YAML): ``log_dir`` (default ``tensorboard_logs``; a relative path is taken inside
    the run's output path, an absolute one or one with ``..`` is used as written: it is the
    user's configuration) and ``flush_secs`` (default 60: how often buffered events are handed
    to the OS at the latest; ``_flush``, whenever the backend's calls run dry, hands them over
    at once, and ``close()`` flushes and syncs). A run with a stage writes into
    ``log_dir/<stage_name>`` so that stages show up as separate TensorBoard runs; the stage
    name is data, so it always becomes one directory right under ``log_dir``
    (:func:`~noether.core.trackers.safe_names.safe_component`: ``train`` stays ``train``,
    ``a/b`` becomes ``a%2Fb``, ``..`` becomes ``%2E%2E``). A resumed run
    appends a new event file to the same directory; with a ``resume_step`` the points logged
    before at steps from it on are purged by TensorBoard's readers.
    """

    #: The plugin API version this backend was written for (see ``PLUGIN_API``).
    plugin_api = "1.0"
    backend_library = "tensorboard"

    def __init__(
        self,
        *,
        log_dir: str = "tensorboard_logs",
        flush_secs: Annotated[int, Gt(0)] = 60,
        output_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(output_path=output_path)
        base = Path(output_path) if output_path is not None else Path.cwd()
        self.log_dir = base / log_dir
        self.flush_secs = flush_secs
        #: The directory this run's event files go to (a TensorBoard run); set by ``init``.
        self.run_dir: Path | None = None
        self._writer: Any = None
        self._events: ModuleType | None = None
        self._summary: dict[str, Value] = {}

    def _init(self, run: RunInfo) -> None:
        # tensorboard's protos load here, not at import: `noether-trackers list` stays cheap
        from noether_trackers_tensorboard import events
        from noether_trackers_tensorboard.event_file import EventFile

        self._events = events
        self.run_dir = _run_directory(self.log_dir, run.stage_name)
        self._writer = EventFile(self.run_dir, flush_secs=self.flush_secs)
        if run.resumed and run.resume_step is not None:
            # TensorBoard's own restart marker: its readers drop the points of earlier event
            # files at steps from here on, which the resumed training logs again.
            self._writer.write(events.restart_event(run.resume_step, time.time()))
        header = f"run `{run.display_name}` (id `{run.run_id}`)\n\n"
        self._write({"config": header + events.markdown_code(dump_yaml(run.config))}, step=0)

    def _log(self, values: Mapping[str, Value], step: int, *, wall_time: float) -> None:
        # the event's wall_time is when the user logged the values (TensorBoard's "relative"
        # and "wall" x-axes), also for calls caught up from the journal or replayed
        self._write(values, step, wall_time)

    def _update_summary(self, values: Mapping[str, Value]) -> None:
        assert self._events is not None
        self._summary.update(values)
        self._write({"summary": self._events.markdown_key_values(self._summary)}, step=0)

    def _flush(self) -> None:
        """Hand the event file's buffer to the OS, so that a killed process loses no event
        (nothing to do, not even a system call, when no event was written since)."""
        if self._writer is not None and self._writer.dirty:
            self._writer.flush()

    def _close(self, status: RunStatus) -> None:
        """Record how the run ended in its summary (``_status``, as the other backends do), then
        close the event file."""
        if self._writer is not None:
            self._update_summary({"_status": status})
            self._writer.close()
            self._writer = None

    def run_location(self) -> RunLocation | None:
        """The run's event-file directory, and the ``tensorboard`` command that shows it
        (with every other run under ``log_dir``, e.g. the other stages)."""
        if self.run_dir is None:
            return None
        command = shell_command("tensorboard", ["--logdir", shown_path(self.log_dir)])
        return RunLocation("tensorboard", shown_path(self.run_dir), command)

    def _write(
        self, values: Mapping[str, Value], step: int, wall_time: float | None = None
    ) -> None:
        """Write one event of ``values`` at ``step``, stamped ``wall_time`` (None: now)."""
        assert self._events is not None
        when = time.time() if wall_time is None else wall_time
        self._writer.write(self._events.event_of(values, step, when))


def _run_directory(log_dir: Path, stage_name: str | None) -> Path:
    """``log_dir``, or for a stage the one directory right below it that stands for the stage
    name: a name is data, and no name may put event files anywhere else."""
    return log_dir / safe_component(stage_name) if stage_name else log_dir
