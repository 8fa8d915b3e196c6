"""Names to file names: one component that stands for the name, or a harmless relative path."""

from __future__ import annotations

import itertools
import os
import urllib.parse
from pathlib import Path

import pytest

from noether.core.trackers.safe_names import (
    MAX_COMPONENT_BYTES,
    is_safe_relative_path,
    safe_component,
    safe_relative_path,
)

HOSTILE = [
    "",
    ".",
    "..",
    "...",
    "../x",
    "/etc/passwd",
    "a\\..\\b",
    "nul\x00",
    "line\nbreak",
    "tab\t",
    "\x7f\x85",
    "50%",
    "%2F",
    "%",
    "模型/🚀",
    "\ud800",
    "x" * 1000,
    "模" * 300,
    "a/b/",
    "//",
]


@pytest.mark.parametrize("name", ["train", "finetune-2", "v1.0", "with space", "模型", "~", "..."])
def test_a_plain_name_is_its_own_component(name: str) -> None:
    assert safe_component(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_any_name_becomes_one_component_that_can_be_created(name: str, tmp_path: Path) -> None:
    component = safe_component(name)
    assert "/" not in component and "\0" not in component and "\\" not in component
    assert component not in ("", ".", "..")
    assert len(component.encode()) <= MAX_COMPONENT_BYTES
    (tmp_path / component).mkdir()
    assert [path.name for path in tmp_path.iterdir()] == [component]
    if 0 < len(name) < 60:  # the empty name is "%": no name encodes to it
        assert urllib.parse.unquote(component, errors="surrogatepass") == name


def test_distinct_names_give_distinct_components() -> None:
    names = [*HOSTILE, "a/b", "a%2Fb", "a_b", "x" * 1001, "x" * 999 + "y", "%2E", "%2E%2E"]
    assert len({safe_component(name) for name in names}) == len(set(names))


def test_a_long_name_keeps_its_start_and_a_hash() -> None:
    component = safe_component("模" * 300, max_bytes=40)
    assert component.startswith("模" * 7) and component[7] == "~"
    assert len(component.encode()) <= 40


@pytest.mark.parametrize("name", ["run/stage", "模型/🚀", "a//b", "a/", "line\nbreak", "..."])
def test_a_harmless_relative_path_is_kept(name: str) -> None:
    assert is_safe_relative_path(name) and safe_relative_path(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_relative_path_never_leads_out(name: str, tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    path = safe_relative_path(name)
    target = Path(os.path.normpath(inside / path))
    assert target.is_relative_to(inside) and target != inside
    target.mkdir(parents=True)


def test_every_pair_of_dots_and_slashes_stays_inside(tmp_path: Path) -> None:
    for length in range(1, 6):
        for parts in itertools.product(["", ".", "..", "/", "a"], repeat=length):
            name = "".join(parts)
            path = Path(os.path.normpath(tmp_path / safe_relative_path(name)))
            assert path.is_relative_to(tmp_path) and path != tmp_path, name
