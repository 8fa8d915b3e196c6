"""Helper of scripts/test-backend-versions (standard library only, any Python 3.10+).

backend_versions.py lowest LIB           the lowest LIB version its plugin declares (LIB>=X)
backend_versions.py newest LIB PYTHON    the newest LIB release on the package index, asked
                                         with PYTHON's pip (so it suits that interpreter)
backend_versions.py requirements LIB     what a venv testing LIB installs besides LIB, one
                                         a line: core and the plugin (editable), and the
                                         test dependencies of the workspace's dev group
backend_versions.py stamp LIB VERSION    a hash of everything such a venv is built from
backend_versions.py same VERSION VERSION exit status 0 when both name one release (0.31 is
                                         0.31.0)
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Dev-group entries a test venv does not need (name prefixes): linters, type checking, the
#: docs build, packaging checks. A new test dependency needs nothing here: it is installed.
NOT_FOR_TESTS = ("ruff", "mypy", "types-", "sphinx", "myst-", "furo", "build", "twine")


def _string_array(path: Path, name: str) -> list[str]:
    """The strings of the TOML array ``name = [...]`` in ``path`` (comments skipped).

    Enough for the flat arrays of strings these pyproject files use; tomllib is not in
    Python 3.10, which the workspace supports.
    """
    text = path.read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(name)}\s*=\s*\[(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    if found is None:
        raise SystemExit(f"{path}: no array {name!r}")
    body = "\n".join(line.split("#", 1)[0] for line in found.group(1).splitlines())
    return re.findall(r'"([^"]*)"', body)


def lowest(lib: str) -> str:
    """The version in ``LIB>=X`` of the plugin's dependencies."""
    pyproject = ROOT / f"noether-trackers-{lib}" / "pyproject.toml"
    for requirement in _string_array(pyproject, "dependencies"):
        match = re.fullmatch(rf"{re.escape(lib)}\s*>=\s*([0-9][^,;\s]*)\s*(,.*)?", requirement)
        if match:
            return match.group(1)
    raise SystemExit(f"{pyproject}: no '{lib}>=VERSION' among the dependencies")


def newest(lib: str, python: str) -> str:
    """The newest release of ``lib`` that ``python``'s pip can install."""
    answer = subprocess.run(
        [python, "-m", "pip", "index", "versions", lib],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(rf"^{re.escape(lib)} \(([^)]+)\)", answer.stdout, re.MULTILINE)
    if answer.returncode != 0 or match is None:
        raise SystemExit(f"cannot ask the package index for {lib}:\n{answer.stderr.strip()}")
    return match.group(1)


def requirements(lib: str) -> list[str]:
    """Core (with its testing extra) and the plugin, editable; the dev group's test deps."""
    members = {path.name for path in ROOT.glob("noether-trackers-*") if path.is_dir()}
    result = ["-e", f"{ROOT / 'noether-trackers-core'}[testing]"]
    result += ["-e", str(ROOT / f"noether-trackers-{lib}")]
    for requirement in _string_array(ROOT / "pyproject.toml", "dev"):
        name = re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]
        if name in members or name.startswith(NOT_FOR_TESTS):
            continue
        result.append(requirement)
    return result


def stamp(lib: str, version: str) -> str:
    """Changes whenever a venv built for ``lib==version`` would be built differently."""
    digest = hashlib.sha256()
    digest.update(f"{lib}=={version}\n{sys.version}\n{platform.machine()}\n".encode())
    sources = [
        Path(__file__),
        ROOT / "scripts" / "test-backend-versions",
        ROOT / "pyproject.toml",
        ROOT / "noether-trackers-core" / "pyproject.toml",
        ROOT / f"noether-trackers-{lib}" / "pyproject.toml",
    ]
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def same(first: str, second: str) -> bool:
    """Whether two plain release numbers name the same release (trailing zeros do not count)."""

    def release(version: str) -> tuple[int | str, ...]:
        parts: list[int | str] = [int(p) if p.isdigit() else p for p in version.split(".")]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    return release(first) == release(second)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "lowest" and len(args) == 1:
        print(lowest(args[0]))
    elif command == "newest" and len(args) == 2:
        print(newest(args[0], args[1]))
    elif command == "requirements" and len(args) == 1:
        print("\n".join(requirements(args[0])))
    elif command == "stamp" and len(args) == 2:
        print(stamp(args[0], args[1]))
    elif command == "same" and len(args) == 2:
        raise SystemExit(0 if same(args[0], args[1]) else 1)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
