"""Benchmark processes that start fresh and leave nothing behind (shared by the benchmarks that
time whole processes: ``bench_loop.py``, ``bench_frameworks.py``).

:func:`run_fresh` runs a benchmark script's ``--child SPEC`` in a fresh process with a temporary
directory of its own (its ``TMPDIR``; the child points ``HOME`` and the backends there), removes
the directory afterwards, and, through :class:`Cleanup`, adopts the processes it leaves behind
(Linux ``PR_SET_CHILD_SUBREAPER``): those still running :data:`LEFTOVER_GRACE` seconds after it
ended are killed, and :meth:`Cleanup.describe` says what outlived its process.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: How long a benchmark process may run before it is killed.
CHILD_TIMEOUT = 3600.0
#: How long what a benchmark process left running may take to end on its own.
LEFTOVER_GRACE = 5.0


@dataclass
class Cleanup:
    """What the benchmark processes left behind, over the whole run."""

    adopting: bool = False  # this process adopts orphans (PR_SET_CHILD_SUBREAPER)
    processes: int = 0
    outlived: Counter[str] = field(default_factory=Counter)  # ended on their own, late
    killed: Counter[str] = field(default_factory=Counter)
    directories: list[str] = field(default_factory=list)  # could not be removed

    def adopt_orphans(self) -> None:
        """Become the parent of whatever the benchmark processes leave running (Linux)."""
        try:
            self.adopting = ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            self.adopting = False

    def describe(self) -> str:
        lines = []
        if self.outlived:
            lines.append(
                "ended on their own after their benchmark process had: " + named(self.outlived)
            )
        if self.killed:
            lines.append(
                f"still running {LEFTOVER_GRACE:.0f} s later, killed: {named(self.killed)}"
            )
        if self.directories:
            lines.append("temporary directories not removed: " + ", ".join(self.directories))
        if not lines:
            adopted = "no process outlived it" if self.adopting else "processes not checked"
            return (
                f"clean-up: {self.processes} benchmark processes, each temporary directory "
                f"removed, {adopted}"
            )
        return "clean-up: LEFT BEHIND by the benchmark processes:\n  " + "\n  ".join(lines)


def named(counts: Counter[str]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(counts.items()))


def adopted_children() -> dict[int, str]:
    """This process's children (after ``subprocess.run``, only adopted orphans): pid to name."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(") ")
        if int(rest.split()[1]) == os.getpid():
            children[int(entry)] = name
    return children


def reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def reap_leftovers(cleanup: Cleanup, mode: str) -> None:
    """Wait for, then kill, what the last benchmark process (of ``mode``) left running; reap
    all of it."""
    if not cleanup.adopting:
        return
    deadline = time.monotonic() + LEFTOVER_GRACE
    seen: dict[int, str] = {}
    while True:
        running = {}
        for pid, name in adopted_children().items():
            seen.setdefault(pid, name)
            if not reaped(pid):
                running[pid] = name
        if not running:
            break
        if time.monotonic() > deadline:
            for pid, name in running.items():
                cleanup.killed[f"{name} ({mode})"] += 1
                seen.pop(pid, None)
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
            deadline = time.monotonic() + LEFTOVER_GRACE  # and whatever those had started
        time.sleep(0.05)
    cleanup.outlived.update(f"{name} ({mode})" for name in seen.values())


def run_fresh(
    script: str, spec: dict[str, Any], cleanup: Cleanup, label: str, pythonpath: str | None = None
) -> dict[str, Any]:
    """Run ``script --child SPEC`` (``spec`` with ``root``, a temporary directory of its own,
    added) in a fresh process, ``pythonpath`` first on its path; what it printed last, as
    JSON. ``label`` names the process in what :class:`Cleanup` reports."""
    root = Path(tempfile.mkdtemp(prefix="noether-bench-"))
    (root / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(root / "tmp"))
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH")]))
    cleanup.processes += 1
    try:
        done = subprocess.run(
            [sys.executable, script, "--child", json.dumps({**spec, "root": str(root)})],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=CHILD_TIMEOUT,
        )
    finally:
        reap_leftovers(cleanup, label)
        shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            cleanup.directories.append(str(root))
    if done.returncode != 0:
        raise RuntimeError(f"benchmark process failed ({spec}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
