"""The environment a run ran in, recorded with its config under :data:`RUN_ENVIRONMENT_KEY`.

``init`` adds it (on the main process) to the config that ``config.yaml``, the journal and every
backend receive: the host, Python and platform, the versions of noether-trackers and of each
backend's plugin and library, torch with its CUDA version and GPUs, the world size and node
count of a distributed job, the launcher's job ids and the git commit of the working directory.

Collecting it is cheap (about 10 ms added to ``init``, most of it the git probes, see
``benchmarks/bench_init.py``) and leaves alone what the program has not started itself:

- torch is never imported: its version, CUDA version and GPU names are recorded when the
  program has imported torch already (every torch training program has by ``init``). The
  GPU count is always recorded with torch; the GPU names only once the program has
  initialised CUDA (asking earlier would initialise it here: seconds, and a changed process);
- the git probes are two short ``git`` processes run side by side while the rest is
  collected, started only when a ``.git`` is found above the working directory, with
  ``GIT_OPTIONAL_LOCKS=0`` (no lock taken on the user's index) and a timeout of
  :data:`GIT_TIMEOUT` seconds;
- nothing here raises or prints: a probe that fails (no git, not a checkout, a timeout,
  metadata missing) leaves its field out.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from noether.core.trackers import distributed
from noether.core.trackers.entry_points import plugin_entry_points

if TYPE_CHECKING:
    import subprocess

#: The config key the environment is recorded under; a user's config may not use it.
RUN_ENVIRONMENT_KEY = "run_environment"
#: Seconds the git probes may take together before they are left out.
GIT_TIMEOUT = 1.0
_CORE_DISTRIBUTION = "noether-trackers-core"
#: Launcher variables recorded under ``job`` (their lower-cased names), when set.
_JOB_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "TORCHELASTIC_RUN_ID",
)
#: SLURM's node count of the job step, or else of the job.
_SLURM_NODE_VARIABLES = ("SLURM_NNODES", "SLURM_JOB_NUM_NODES")

_T = TypeVar("_T")


#: What a probe that raised gives: its field is left out.
_FAILED: Any = object()


def _probe(function: Callable[[], _T]) -> _T | Any:
    """``function()``, or :data:`_FAILED` when it raises an Exception."""
    try:
        return function()
    except Exception:
        return _FAILED


def collect_run_environment(tracker_classes: Iterable[type]) -> dict[str, Any]:
    """The environment of this process, as plain (YAML- and JSON-safe) data.

    ``tracker_classes`` are the run's backends: the versions of the distribution that
    provides each (found through the ``noether.trackers`` entry points) and of its
    ``backend_library`` are recorded. A key whose probe fails or does not apply is left out
    (``cuda`` is null for a CPU build of torch)::

        host: gpu-node-17
        python: 3.11.7
        platform: Linux-5.15.0-x86_64
        versions: {noether-trackers-core: 0.1.0, noether-trackers-tensorboard: 0.1.0,
                   tensorboard: 2.17.0, torch: 2.4.1}
        cuda: '12.1'                       # torch's CUDA (null on a CPU build); torch imported
        gpus: [NVIDIA H100 80GB HBM3, ...] # the GPUs this process sees; torch imported
        world_size: 16
        nodes: 2
        job: {slurm_job_id: '4242', torchelastic_run_id: ...}
        git: {commit: 3f2c..., branch: main, dirty: false}
    """
    git = _probe(_start_git)  # runs while the rest is collected
    try:
        environment: dict[str, Any] = {
            "host": _probe(socket.gethostname),
            "python": _probe(_python_version),
            "platform": _probe(_platform),
            "versions": _probe(lambda: _versions(list(tracker_classes))),
        }
        torch = sys.modules.get("torch")
        if torch is not None:
            environment["cuda"] = _probe(lambda: _cuda_version(torch))
            environment["gpus"] = _probe(lambda: _gpu_names(torch))
            environment["gpu_count"] = _probe(lambda: _gpu_count(torch))
        environment["world_size"] = world_size = _probe(distributed.world_size)
        environment["nodes"] = _probe(lambda: _node_count(world_size))
        environment["job"] = _probe(_job_ids)
        environment["git"] = _probe(lambda: _git_state(git))
    finally:
        if isinstance(git, _GitProbes):
            git.stop()  # only when interrupted: the probes are done otherwise
    return {
        key: value
        for key, value in environment.items()
        if value is not _FAILED and (value is not None or key == "cuda")
    }


def _python_version() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def _platform() -> str:
    """``system-release-machine`` (``Linux-6.8.0-x86_64``); ``platform.platform()`` reads
    the Python executable to find the C library, milliseconds this does not spend."""
    if hasattr(os, "uname"):
        system, _, release, _, machine = os.uname()
        return f"{system}-{release}-{machine}"
    import platform

    return f"{platform.system()}-{platform.release()}-{platform.machine()}"


def _versions(tracker_classes: list[type]) -> dict[str, str]:
    """Installed versions of noether-trackers-core, each backend's plugin distribution and
    backend library, and torch when it is imported."""
    names = [_CORE_DISTRIBUTION]
    for tracker_class in tracker_classes:
        names.append(_plugin_distribution(tracker_class) or "")
        names.append(getattr(tracker_class, "backend_library", None) or "")
    versions = {}
    for name in dict.fromkeys(names):
        if name:
            with contextlib.suppress(Exception):
                versions[name] = importlib.metadata.version(name)
    torch_version = getattr(sys.modules.get("torch"), "__version__", None)
    if torch_version is not None:
        versions["torch"] = str(torch_version)
    return versions


def _plugin_distribution(tracker_class: type) -> str | None:
    """The distribution of the plugin that provides ``tracker_class`` (or the class it
    derives from); None when no installed plugin does."""
    for cls in tracker_class.__mro__:
        module = cls.__module__
        if module.startswith("noether.core."):
            return _CORE_DISTRIBUTION
        known = _registered_distribution(cls)
        if known is not None:
            return known
        for package, distribution in _plugin_packages():
            if module == package or module.startswith(package + "."):
                return distribution
    return None


def _registered_distribution(tracker_class: type) -> str | None:
    """The distribution that registered ``tracker_class``, when the process-wide registry
    is loaded already (``create_tracker`` loads it): no entry-point scan needed."""
    registry = sys.modules.get("noether.core.trackers.registry")
    if registry is None or not registry.get_registry.cache_info().currsize:
        return None
    for kind in registry.get_registry().kinds:
        if kind.tracker_class is tracker_class:
            return kind.distribution  # type: ignore[no-any-return]
    return None


@functools.cache
def _plugin_packages() -> list[tuple[str, str]]:
    """(package, distribution) of every ``noether.trackers`` entry point, longest first.

    The package is the entry point's module's parent (``noether_trackers_tensorboard`` for
    ``noether_trackers_tensorboard.plugin``), or the module itself when it has none. Read
    once per process: scanning entry points costs milliseconds.
    """
    packages = []
    for entry_point in plugin_entry_points():
        distribution = entry_point.dist.metadata["Name"] if entry_point.dist else None
        if distribution:
            module = entry_point.module
            packages.append((module.rpartition(".")[0] or module, str(distribution)))
    return sorted(packages, key=lambda item: -len(item[0]))


def _cuda_version(torch: Any) -> str | None:
    """The CUDA version torch was built with (None for a CPU build)."""
    version = torch.version.cuda
    return str(version) if version is not None else None


def _gpu_names(torch: Any) -> list[str] | None:
    """Names of the GPUs this process sees (empty without CUDA); None (left out) while the
    program has not initialised CUDA: asking would initialise it here, which takes seconds
    and changes the process (e.g. for workers it forks later)."""
    cuda = torch.cuda
    if not cuda.is_available():
        return []
    if not cuda.is_initialized():
        return None
    return [str(cuda.get_device_name(index)) for index in range(cuda.device_count())]


def _gpu_count(torch: Any) -> int:
    """How many GPUs this process sees (0 without CUDA); asking does not initialise CUDA."""
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _node_count(world_size: int | None) -> int | None:
    """How many hosts the job spans: 1 for a single process; else torchrun's worker groups,
    its world over local world size, or SLURM's node count (None when nothing says)."""
    if world_size is None:
        return None
    if world_size <= 1:
        return 1
    group, local = os.environ.get("GROUP_WORLD_SIZE", ""), os.environ.get("LOCAL_WORLD_SIZE", "")
    if group.isdigit() and int(group) > 0:
        return int(group)
    if local.isdigit() and int(local) > 0:
        return -(-world_size // int(local))
    for name in _SLURM_NODE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _job_ids() -> dict[str, str] | None:
    """The launcher's job ids that are set (None when none is)."""
    ids = {}
    for name in _JOB_VARIABLES:
        value = os.environ.get(name, "")
        if value and value != "none":  # torchrun's TORCHELASTIC_RUN_ID outside rendezvous
            ids[name.lower()] = value
    return ids or None


# ---- git -------------------------------------------------------------------------------------


class _GitProbes:
    """The two git processes, running: ``rev-parse`` (commit and branch) and ``status``
    (dirty)."""

    def __init__(self, head: subprocess.Popen[str], status: subprocess.Popen[str]) -> None:
        self.head = head
        self.status = status
        self.deadline = time.monotonic() + GIT_TIMEOUT

    def state(self) -> dict[str, Any] | None:
        """``commit``, ``branch`` (not when detached) and ``dirty`` (tracked files changed),
        each left out when its probe fails or outlives :data:`GIT_TIMEOUT`."""
        state: dict[str, Any] = {}
        head = _output(self.head, self.deadline)
        if head is not None:
            lines = head.split()
            if len(lines) == 2:
                state["commit"] = lines[0]
                if lines[1] != "HEAD":
                    state["branch"] = lines[1]
        status = _output(self.status, self.deadline)
        if status is not None:
            state["dirty"] = bool(status.strip())
        return state or None

    def stop(self) -> None:
        """End both processes if they still run."""
        _stop(self.head)
        _stop(self.status)


def _start_git() -> _GitProbes | None:
    """Start the git probes when the working directory is in a git checkout."""
    if "GIT_DIR" not in os.environ and not _in_git_checkout(Path.cwd()):
        return None
    import subprocess

    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}

    def start(*arguments: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["git", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
            text=True,
        )

    head = start("rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    try:
        status = start("status", "--porcelain", "--untracked-files=no")
    except BaseException:
        _stop(head)
        raise
    return _GitProbes(head, status)


def _git_state(probes: _GitProbes | None) -> dict[str, Any] | None:
    return probes.state() if isinstance(probes, _GitProbes) else None


def _in_git_checkout(directory: Path) -> bool:
    """True when ``directory`` or one above it has a ``.git`` (a directory, or a file in a
    worktree or submodule)."""
    return any((candidate / ".git").exists() for candidate in (directory, *directory.parents))


def _output(process: subprocess.Popen[str], deadline: float) -> str | None:
    """What ``process`` printed, if it succeeded before ``deadline``; it is ended otherwise."""
    try:
        output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 0.0))
    except Exception:  # a timeout
        _stop(process)
        return None
    except BaseException:  # KeyboardInterrupt goes on
        _stop(process)
        raise
    return output if process.returncode == 0 else None


def _stop(process: subprocess.Popen[str]) -> None:
    if process.returncode is None:
        with contextlib.suppress(Exception):
            process.kill()
        with contextlib.suppress(Exception):
            process.communicate()
