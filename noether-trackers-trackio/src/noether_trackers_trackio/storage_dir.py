"""Where Trackio keeps its runs, and pointing an already imported trackio somewhere else.

Trackio reads ``TRACKIO_DIR`` once, when it is imported, into module constants
(``trackio.utils.TRACKIO_DIR``, ``MEDIA_DIR``, ``ARTIFACTS_DIR``) that several of its modules
copy with ``from trackio.utils import ...``. Setting the environment variable afterwards has
no effect, so a tracker configured with another directory rebinds those constants in every
loaded trackio module for as long as its run is open, and puts the old values back at close.

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

_CONSTANTS = ("TRACKIO_DIR", "MEDIA_DIR", "ARTIFACTS_DIR")
_lock = threading.Lock()
_active: Path | None = None
_holders = 0
_replaced: dict[str, Path] | None = None


def default_trackio_dir() -> Path:
    """The directory a freshly started ``trackio show`` reads, from the environment now.

    Trackio's rule: ``$TRACKIO_DIR``, else ``$HF_HOME/trackio``, where ``HF_HOME`` defaults
    (as in huggingface_hub) to ``$XDG_CACHE_HOME/huggingface`` or ``~/.cache/huggingface``.
    """
    explicit = os.environ.get("TRACKIO_DIR")
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


def _layout(root: Path) -> dict[str, Path]:
    return {"TRACKIO_DIR": root, "MEDIA_DIR": root / "media", "ARTIFACTS_DIR": root / "artifacts"}


def _rebind(old: dict[str, Path], new: dict[str, Path]) -> None:
    # Only trackio's own modules, and only constants still holding trackio's value: anything
    # else that happens to share a name is left alone.
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "trackio" or name.startswith("trackio.")):
            continue
        namespace = vars(module)
        for constant in _CONSTANTS:
            if namespace.get(constant) == old[constant]:
                setattr(module, constant, new[constant])


def acquire(directory: Path) -> None:
    """Make the imported trackio read and write ``directory`` until :func:`release`.

    Re-entrant for the same directory. Raises RuntimeError if another directory is in use by
    an open run of this process.
    """
    global _active, _holders, _replaced
    import trackio.utils

    with _lock:
        if _holders and _active != directory:
            raise RuntimeError(
                f"another Trackio run of this process is writing to {_active}; Trackio keeps "
                f"one storage directory per process, so a run cannot use {directory} at the "
                "same time (close the other run first, or give both the same trackio_dir)"
            )
        if not _holders:
            current = trackio.utils.TRACKIO_DIR
            if current != directory:
                _replaced = _layout(current)
                _rebind(_replaced, _layout(directory))
            _active = directory
        _holders += 1


def release() -> None:
    """Undo one :func:`acquire`; the last one puts trackio's own directory back."""
    global _active, _holders, _replaced
    with _lock:
        if not _holders:
            return
        _holders -= 1
        if _holders:
            return
        if _replaced is not None and _active is not None:
            _rebind(_layout(_active), _replaced)
        _active = _replaced = None


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
