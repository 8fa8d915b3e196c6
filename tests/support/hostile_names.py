"""Hostile run names, stage names, run ids and metric keys, and a check that a run's files all
stayed where the configuration said.

The names that try to leave a directory aim at places inside ``root`` (the test's temporary
folder) however deep the directory they start from lies: excess ``..`` stop at ``/``, from
where the path leads back into ``root``. So a file that escapes is found by walking ``root``,
and nothing is ever written outside the test's folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: Names without a path in them: each one a test case of its own.
PLAIN_HOSTILE = {
    "dot": ".",
    "dotdot": "..",
    "nul": "nul\x00byte",
    "newline": "new\nline\r\t",
    "backslashes": "..\\..\\back",
    "long": "x" * 1000,
    "unicode": "模型 ü 🚀 \u202e",
    "percent": "%2e%2e%2Fpercent%",
    "tilde": "~",
    "variable": "$HOME",
    "trailing-slash": "trailing/",
}


def hostile_names(root: Path) -> dict[str, str]:
    """Test-case id to name: :data:`PLAIN_HOSTILE` plus names that are paths out of any
    directory into ``root`` (relative with ``..``, very deep, absolute, dots in the middle)."""
    inside = str(root).lstrip("/")
    return {
        "parent": "../../escaped-parent",
        "deep": "../" * 64 + f"{inside}/escaped-deep",
        "absolute": str(root / "escaped-absolute"),
        "middle": f"a/../../../../../../../../../../../../../../../../{inside}/escaped-middle",
        **PLAIN_HOSTILE,
    }


def files_outside(root: Path, allowed: Iterable[Path]) -> list[Path]:
    """Every file (or symlink, or other non-directory) under ``root`` not under one of
    ``allowed``."""
    places = [Path(place).resolve() for place in allowed]
    found = []
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        resolved = path.parent.resolve() / path.name
        if not any(resolved.is_relative_to(place) for place in places):
            found.append(path)
    return sorted(found)


def directories_outside(root: Path, allowed: Iterable[Path]) -> list[Path]:
    """Every directory under ``root`` that is neither under one of ``allowed`` nor a parent
    of one (an escaped run may leave empty directories only)."""
    places = [Path(place).resolve() for place in allowed]
    found = []
    for path in root.rglob("*"):
        if not path.is_dir() or path.is_symlink():
            continue
        resolved = path.resolve()
        inside = any(resolved.is_relative_to(place) for place in places)
        above = any(place.is_relative_to(resolved) for place in places)
        if not (inside or above):
            found.append(path)
    return sorted(found)
