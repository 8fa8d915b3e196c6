"""Check the metadata that PyPI shows for built distributions (used by ``scripts/check-wheels``).

    python check_wheel_metadata.py DIST_DIR --python 3.11 NAME [NAME ...]

Reads the ``METADATA`` of every wheel in DIST_DIR and, for each NAME, requires one wheel and
one sdist whose metadata has: a summary; a Markdown readme that renders as PyPI renders it,
with no relative link (dead on PyPI); a license (``License-Expression``); ``Requires-Python``;
``Programming Language :: Python :: 3.X`` classifiers for a contiguous range of versions that
starts at the ``Requires-Python`` lower bound, that ``Requires-Python`` allows and that includes
the Python the wheels were tested with (``--python``); and ``Project-URL`` entries with https
addresses. Version, license, ``Requires-Python`` and the Python classifiers must agree across
the distributions. Prints one line; on problems, prints each and exits 1.

Every classifier must be one PyPI knows (``trove-classifiers``). Runs in the tool environment
of ``scripts/check-wheels``: it needs ``packaging``, ``readme_renderer`` with its Markdown
renderer (``readme-renderer[md]``) and ``trove-classifiers``.
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from readme_renderer.markdown import render
from trove_classifiers import classifiers as KNOWN_CLASSIFIERS

PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: 3\.(\d+)$")
#: href/src values in the rendered readme; PyPI serves the page without the repository's files.
LINK = re.compile(r"""\b(?:href|src)="([^"]*)\"""")
ABSOLUTE = re.compile(r"(?:https?:|mailto:|#)")


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        return HeaderParser().parsestr(archive.read(name).decode())


def python_minors(metadata: Message) -> list[int]:
    return sorted(
        int(match[1])
        for classifier in metadata.get_all("Classifier") or []
        if (match := PYTHON_CLASSIFIER.match(classifier))
    )


def problems_of(metadata: Message, tested_python: str) -> list[str]:
    """What PyPI would show wrong or not at all for one distribution."""
    problems = []
    if not (metadata.get("Summary") or "").strip():
        problems.append("no Summary")
    readme = metadata.get_payload()
    assert isinstance(readme, str)
    content_type = metadata.get("Description-Content-Type") or ""
    if not readme.strip():
        problems.append("no readme (long description)")
    elif not content_type.startswith("text/markdown"):
        problems.append(f"readme content type {content_type!r}, not text/markdown")
    else:
        html = render(readme, variant="GFM")
        if html is None:
            problems.append("the readme does not render")
        else:
            relative = sorted({url for url in LINK.findall(html) if not ABSOLUTE.match(url)})
            if relative:
                problems.append(f"readme links that are dead on PyPI (relative): {relative}")
    if not (metadata.get("License-Expression") or metadata.get("License")):
        problems.append("no license (License-Expression)")
    unknown = sorted(set(metadata.get_all("Classifier") or []) - KNOWN_CLASSIFIERS)
    if unknown:
        problems.append(f"classifiers PyPI does not know: {unknown}")
    requires_python = metadata.get("Requires-Python")
    minors = python_minors(metadata)
    if not requires_python:
        problems.append("no Requires-Python")
    elif not minors:
        problems.append("no 'Programming Language :: Python :: 3.X' classifier")
    else:
        allowed = SpecifierSet(requires_python)
        lowest = next((m for m in range(100) if Version(f"3.{m}") in allowed), None)
        if lowest is None:
            problems.append(f"Requires-Python {requires_python} allows no Python 3")
        elif minors[0] != lowest:
            problems.append(f"Requires-Python {requires_python} but no classifier for 3.{lowest}")
        if minors != list(range(minors[0], minors[-1] + 1)):
            problems.append(f"Python classifiers skip a version: {minors}")
        if any(Version(f"3.{m}") not in allowed for m in minors):
            problems.append(f"a Python classifier outside Requires-Python {requires_python}")
        if int(tested_python.split(".")[1]) not in minors:
            problems.append(f"tested with Python {tested_python}, which no classifier names")
    urls = metadata.get_all("Project-URL") or []
    if not urls:
        problems.append("no Project-URL")
    for entry in urls:
        label, _, url = entry.partition(",")
        if not (label.strip() and url.strip().startswith("https://")):
            problems.append(f"Project-URL {entry!r} is not 'Label, https://...'")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path)
    parser.add_argument("--python", required=True, help="the Python version tested, e.g. 3.11")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args()
    if render("*Markdown*") is None:  # twine check passes Markdown unrendered in that case
        print(
            "metadata: FAILED: readme_renderer cannot render Markdown: install readme-renderer[md]"
        )
        return 1

    problems: list[str] = []
    found: dict[str, Message] = {}
    for wheel in sorted(args.dist.glob("*.whl")):
        metadata = wheel_metadata(wheel)
        name = canonicalize_name(metadata["Name"])
        if name in found:
            problems.append(f"{name}: more than one wheel in {args.dist}")
        found[name] = metadata
        for problem in problems_of(metadata, args.python):
            problems.append(f"{wheel.name}: {problem}")
    expected = {canonicalize_name(name) for name in args.names}
    for name in sorted(expected - found.keys()):
        problems.append(f"{name}: no wheel")
    for name in sorted(found.keys() - expected):
        problems.append(f"{name}: a wheel nobody asked for")
    for name in sorted(expected):
        if not list(args.dist.glob(f"{name.replace('-', '_')}-*.tar.gz")):
            problems.append(f"{name}: no sdist")
    shared = {
        "Version": lambda m: m["Version"],
        "License-Expression": lambda m: m.get("License-Expression") or m.get("License"),
        "Requires-Python": lambda m: m.get("Requires-Python"),
        "Python classifiers": python_minors,
    }
    for field, value_of in shared.items():
        values = {name: str(value_of(metadata)) for name, metadata in found.items()}
        if len(set(values.values())) > 1:
            problems.append(f"{field} differs between the distributions: {values}")

    if problems:
        print("metadata: FAILED")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    some = next(iter(found.values()))
    minors = python_minors(some)
    labels = sorted(
        {
            url.partition(",")[0].strip()
            for m in found.values()
            for url in m.get_all("Project-URL") or []
        }
    )
    print(
        f"metadata: {len(found)} wheels: readme (Markdown, renders, absolute links),"
        f" License-Expression {some.get('License-Expression') or some.get('License')},"
        f" Requires-Python {some['Requires-Python']},"
        f" classifiers Python 3.{minors[0]}-3.{minors[-1]},"
        f" Project-URLs {', '.join(labels)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
