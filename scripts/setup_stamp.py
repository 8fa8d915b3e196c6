"""The install stamp of ``scripts/setup``: is .venv up to date with what setup installs from?

``setup`` installs from the pyproject.toml files (the workspace members are editable, so their
sources do not matter, but their dependencies and entry points do) and from the example CSV
plugin's sources (installed as a user would, not editable). After a successful install it
records a digest of those files and of the setup scripts; when the digest still matches and
the key modules are importable, there is nothing to install.

Usage (with the venv's Python, from anywhere)::

    setup_stamp.py digest [--root DIR]        print the digest of the install inputs
    setup_stamp.py check STAMP [--root DIR]   exit 0 if STAMP is current, else 1 with why
    setup_stamp.py write STAMP [--root DIR]   record the current digest in STAMP
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The plugin installed non-editable: a change to any of its files needs a reinstall.
CSV_EXAMPLE = Path("examples/noether-trackers-csv")
#: Directories that building or testing the example creates, and its tests (not installed).
NOT_INSTALLED = {"__pycache__", "build", "dist", "tests", ".pytest_cache"}
#: Imported to check the install: the workspace and the example plugin (cheap modules).
KEY_IMPORTS = (
    "noether.core.trackers",
    "noether_trackers_tensorboard",
    "noether_trackers_trackio",
    "noether_trackers_wandb",
    "noether_trackers_csv",
)
#: Only looked up, not imported: importing torch alone takes seconds.
KEY_MODULES = (
    "torch", "pytest", "mypy", "ruff", "sphinx", "lightning", "accelerate", "transformers", "hydra",
)  # fmt: skip


def install_inputs(root: Path) -> list[Path]:
    """The files whose content decides what ``setup`` installs, relative to ``root``."""
    files = [Path("pyproject.toml"), Path("scripts/setup"), Path("scripts/setup_stamp.py")]
    # the same glob as setup's loop over workspace members
    files += [path.relative_to(root) for path in root.glob("noether-trackers-*/pyproject.toml")]
    files += [path.relative_to(root) for path in _example_files(root / CSV_EXAMPLE)]
    return sorted(files, key=lambda path: path.as_posix())


def _example_files(directory: Path) -> Iterator[Path]:
    """Every file of the example plugin that goes into its wheel (or may)."""
    for parent, subdirectories, names in os.walk(directory):
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in NOT_INSTALLED and not name.endswith(".egg-info")
        )
        for name in names:
            if not name.endswith(".pyc"):
                yield Path(parent) / name


def digest(root: Path) -> str:
    """A SHA-256 over the paths and contents of :func:`install_inputs` (a missing file
    counts as a distinct state, so deleting one changes the digest too)."""
    hasher = hashlib.sha256()
    for relative in install_inputs(root):
        path = root / relative
        hasher.update(relative.as_posix().encode() + b"\0")
        content = path.read_bytes() if path.is_file() else b"<missing>"
        hasher.update(str(len(content)).encode() + b"\0" + content)
    return hasher.hexdigest()


def missing_modules() -> list[str]:
    """The key modules this Python cannot import or find (empty when all are there)."""
    missing = [name for name in KEY_MODULES if importlib.util.find_spec(name) is None]
    for name in KEY_IMPORTS:
        try:
            importlib.import_module(name)
        except Exception:  # any failure to import means: install again
            missing.append(name)
    return missing


def stale_reason(stamp: Path, root: Path) -> str | None:
    """Why the install is not current, or None when nothing is left to install."""
    if not stamp.is_file():
        return "no record of a finished install"
    if stamp.read_text().strip() != digest(root):
        return "pyproject.toml, the CSV example or setup changed since the last install"
    missing = missing_modules()
    if missing:
        return f"cannot import {', '.join(missing)}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("digest", "check", "write"))
    parser.add_argument("stamp", nargs="?", type=Path, help="the stamp file (check, write)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    if args.command == "digest":
        print(digest(args.root))
        return 0
    if args.stamp is None:
        parser.error(f"{args.command} needs the stamp file")
    if args.command == "write":
        args.stamp.write_text(digest(args.root) + "\n")
        return 0
    reason = stale_reason(args.stamp, args.root)
    if reason is not None:
        print(reason)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
