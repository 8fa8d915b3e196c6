"""Where Trackio keeps its runs, and pointing an already imported trackio somewhere else.

Trackio's public way to choose its store is ``$TRACKIO_DIR``, which it reads once, when it is
imported, into module constants (``trackio.utils.TRACKIO_DIR`` and the directories inside it,
``MEDIA_DIR``, ``ARTIFACTS_DIR``) that several of its modules copy with
``from trackio.utils import ...``. Setting the environment variable afterwards has no effect,
so a tracker configured with another directory rebinds those constants in every loaded trackio
module for as long as its run is open, and puts the old values back at close. That is a
Trackio internal: :func:`noether_trackers_trackio.compat.store_constants` finds the constants,
and a Trackio without them gets ``$TRACKIO_DIR`` set for the run instead, with one warning.

That state is process-wide: two runs may share a directory, but a run asking for another
directory while one is open gets a clear error instead of writing into the wrong store.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from noether_trackers_trackio import compat

_lock = threading.Lock()
_active: Path | None = None
_holders = 0
#: Trackio's constants before the first acquire, and what they were rebound to (None: none).
_replaced: dict[str, Path] | None = None
_rebound: dict[str, Path] | None = None
#: ``$TRACKIO_DIR`` before a Trackio without the constants had it set for a run.
_saved_env: str | None = None
_env_set = False


def default_trackio_dir(*, honour_trackio_dir: bool = True) -> Path:
    """The directory a freshly started ``trackio show`` reads, from the environment now
    (with ``honour_trackio_dir=False``: where it reads when ``TRACKIO_DIR`` is not set).

    Trackio's rule: ``$TRACKIO_DIR``, else ``$HF_HOME/trackio``, where ``HF_HOME`` defaults
    (as in huggingface_hub) to ``$XDG_CACHE_HOME/huggingface`` or ``~/.cache/huggingface``.
    """
    explicit = os.environ.get("TRACKIO_DIR") if honour_trackio_dir else None
    if explicit:
        return _absolute(explicit)
    hf_home = os.environ.get("HF_HOME")
    if not hf_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        hf_home = os.path.join(cache, "huggingface")
    return _absolute(os.path.join(hf_home, "trackio"))


def resolve_trackio_dir(configured: str | None) -> Path:
    """The configured directory (``~`` and ``$VARS`` expanded, relative to the working
    directory), or :func:`default_trackio_dir` when none is configured."""
    return default_trackio_dir() if configured is None else _absolute(configured)


def _absolute(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path))).absolute()


def _moved(constants: dict[str, Path], root: Path) -> dict[str, Path]:
    """``constants`` (a store and directories inside it) moved to the store ``root``."""
    old_root = constants["TRACKIO_DIR"]
    return {name: root / path.relative_to(old_root) for name, path in constants.items()}


def _rebind(old: dict[str, Path], new: dict[str, Path]) -> None:
    # Only trackio's own modules, and only constants still holding trackio's value: anything
    # else that happens to share a name is left alone.
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "trackio" or name.startswith("trackio.")):
            continue
        namespace = vars(module)
        for constant, value in old.items():
            if namespace.get(constant) == value:
                setattr(module, constant, new[constant])


def acquire(directory: Path) -> None:
    """Make the imported trackio read and write ``directory`` until :func:`release`.

    Re-entrant for the same directory. Raises RuntimeError if another directory is in use by
    an open run of this process.
    """
    global _active, _holders, _replaced, _rebound, _saved_env, _env_set
    with _lock:
        if _holders and _active != directory:
            raise RuntimeError(
                f"another Trackio run of this process is writing to {_active}; Trackio keeps "
                f"one storage directory per process, so a run cannot use {directory} at the "
                "same time (close the other run first, or give both the same trackio_dir)"
            )
        if not _holders:
            constants = compat.store_constants()
            if constants is None:
                # No constants to rebind: Trackio's public switch, for a Trackio that reads it
                # when the run starts (or is imported during the run).
                _saved_env, _env_set = os.environ.get("TRACKIO_DIR"), True
                os.environ["TRACKIO_DIR"] = str(directory)
            elif constants["TRACKIO_DIR"] != directory:
                _replaced, _rebound = constants, _moved(constants, directory)
                _rebind(_replaced, _rebound)
            _active = directory
        _holders += 1


def release() -> None:
    """Undo one :func:`acquire`; the last one puts trackio's own directory back."""
    global _active, _holders, _replaced, _rebound, _saved_env, _env_set
    with _lock:
        if not _holders:
            return
        _holders -= 1
        if _holders:
            return
        if _replaced is not None and _rebound is not None:
            _rebind(_rebound, _replaced)
        if _env_set:
            if _saved_env is None:
                os.environ.pop("TRACKIO_DIR", None)
            else:
                os.environ["TRACKIO_DIR"] = _saved_env
        _active = _replaced = _rebound = _saved_env = None
        _env_set = False


@contextmanager
def use_trackio_dir(directory: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Point the imported trackio at ``directory`` (default: :func:`default_trackio_dir`)
    inside the block, e.g. to read runs back with ``trackio.SQLiteStorage``::

        with use_trackio_dir("runs/trackio"):
            logs = SQLiteStorage.get_logs("my-project", "my-run")
    """
    path = resolve_trackio_dir(None if directory is None else os.fspath(directory))
    acquire(path)
    try:
        yield path
    finally:
        release()
