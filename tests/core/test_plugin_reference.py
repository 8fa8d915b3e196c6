"""docs/plugin-reference.md keeps up with the plugin API: every public name of it, read from
the code, is on the page as code (in backticks), and every method a plugin implements or calls
with the exact signature the code has.

Nothing here is a list kept by hand: the names come from the hookspecs, ``BaseTracker``, the
value and run dataclasses, ``noether.core.trackers.plugin.__all__`` and the conformance kit.
A name added to any of them without a line on the page fails here, on purpose.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from noether.core.trackers import hookspecs, plugin
from noether.core.trackers.base import BaseTracker
from noether.core.trackers.media import Histogram, Image, Table
from noether.core.trackers.plugin_api import PLUGIN_API
from noether.core.trackers.run_info import RUN_STATUSES, RunInfo
from noether.core.trackers.run_location import RunLocation
from noether.core.trackers.testing import StoredRun, TrackerConformanceTests
from noether.core.trackers.values import VALUE_KINDS

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "plugin-reference.md"

#: BaseTracker's underscore methods that are the engine's, not a plugin's (the page says to
#: leave them alone; they need no signature there).
ENGINE_METHODS = frozenset(
    {"_receive_start", "_receive_log", "_receive_summary", "_supported_subset", "_run_alone"}
)

_FENCED = re.compile(r"^ *(`{3,}|~{3,}).*?^ *\1\s*$", re.MULTILINE | re.DOTALL)
_COMMENT = re.compile(r"^%.*$", re.MULTILINE)  # a MyST comment line: not on the page
_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_HEAD = re.compile(r"^\s*@?([A-Za-z_][\w.]*)")
_HEADING = re.compile(r"^(#{1,6}) (.*)$", re.MULTILINE)


def prose(text: str) -> str:
    """The page without its fenced code blocks and comments: what it says in its text."""
    return _COMMENT.sub("", _FENCED.sub("", text))


def code_spans(text: str) -> list[str]:
    """The inline code spans of ``text`` (outside fenced blocks), whitespace collapsed."""
    return [" ".join(span.split()) for span in _SPAN.findall(prose(text))]


def names_as_code(text: str) -> set[str]:
    """The names a code span of ``text`` starts with: ``_log(self, ...)`` names ``_log``,
    ``Image.from_png(...)`` names ``from_png``, ``@hookimpl`` names ``hookimpl``."""
    names = set()
    for span in code_spans(text):
        found = _HEAD.match(span)
        if found:
            names.add(found[1].rsplit(".", 1)[-1])
    return names


def section(text: str, title: str) -> str:
    """The section whose heading holds ``title`` (e.g. ``"`Image`"``), up to the next heading
    of the same or a higher level."""
    headings = list(_HEADING.finditer(text))
    for index, heading in enumerate(headings):
        if title in heading[2]:
            level = len(heading[1])
            end = next((h.start() for h in headings[index + 1 :] if len(h[1]) <= level), len(text))
            return text[heading.start() : end]
    raise AssertionError(f"{PAGE.name} has no heading with {title}")


def missing(names: Iterable[str], text: str) -> list[str]:
    """Those of ``names`` that no code span of ``text`` starts with."""
    documented = names_as_code(text)
    return sorted(name for name in set(names) if name not in documented)


class _Written:
    """An annotation shown as written in the code (``from __future__ import annotations``
    keeps it as a str, which a signature would show quoted)."""

    def __init__(self, text: Any) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text if isinstance(self.text, str) else inspect.formatannotation(self.text)


def signature(function: Callable[..., Any], name: str, drop_first: bool = False) -> str:
    """``name(parameters) -> result`` as the code declares it: annotations as written,
    defaults as their ``repr`` (``status: RunStatus = 'finished'``)."""
    sig = inspect.signature(function)
    parameters = [
        parameter
        if parameter.annotation is inspect.Parameter.empty
        else parameter.replace(annotation=_Written(parameter.annotation))
        for parameter in sig.parameters.values()
    ]
    returned = sig.return_annotation
    sig = sig.replace(
        parameters=parameters[1:] if drop_first else parameters,
        return_annotation=returned if returned is inspect.Signature.empty else _Written(returned),
    )
    return name + str(sig)


def signatures_missing(signatures: Iterable[str], text: str) -> list[str]:
    """Those of ``signatures`` that are not the whole of, or the start of, a code span."""
    spans = code_spans(text)
    return [s for s in signatures if not any(span.startswith(s) for span in spans)]


def public_members(cls: type) -> set[str]:
    """Dataclass fields, properties and methods of ``cls`` that do not start with ``_``."""
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name, value in vars(cls).items():
        if not name.startswith("_") and isinstance(
            value, property | classmethod | staticmethod | Callable
        ):
            names.add(name)
    return names


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


# ---- the checker itself ---------------------------------------------------------------------


def test_names_count_only_as_code_outside_code_blocks() -> None:
    text = (
        "# T\n\nrun_once in prose, `make_tracker(self)`, `Image.from_png(png)`, `@hookimpl`\n\n"
        "```python\nkeep_going = 1  # `in_a_block`\n```\n\n% `in_a_comment`\n\n## `X`\n\n`a`\n"
    )
    assert missing(["run_once", "make_tracker", "from_png", "hookimpl"], text) == ["run_once"]
    assert missing(["keep_going", "in_a_block", "in_a_comment"], text) == [
        "in_a_block",
        "in_a_comment",
        "keep_going",
    ]
    assert section(text, "`X`") == "## `X`\n\n`a`\n"
    assert signatures_missing(["make_tracker(self)", "make_tracker(self, x)"], text) == [
        "make_tracker(self, x)"
    ]


# ---- the page -------------------------------------------------------------------------------


def test_the_page_is_in_the_docs_toctree_and_the_guide_links_to_it() -> None:
    assert re.search(r"^plugin-reference$", (DOCS / "index.md").read_text(), re.MULTILINE)
    assert "(plugin-reference.md" in (DOCS / "plugin-guide.md").read_text()


def test_every_hook_is_on_the_page_with_its_signature(page: str) -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    hooks = [name for name in vars(manager.hook) if not name.startswith("_")]
    assert hooks, "no hooks found"
    assert missing(hooks, page) == []
    expected = [signature(getattr(hookspecs, name), name) for name in hooks]
    expected.append(signature(hookspecs.RegisterTracker.__call__, "register", drop_first=True))
    assert signatures_missing(expected, page) == []


def plugin_methods() -> list[str]:
    """BaseTracker's methods that a plugin implements or calls: the underscore methods it
    defines (not the engine's, nor dunders), ``run_location`` and ``warn_once``."""
    return [
        name
        for name, value in vars(BaseTracker).items()
        if inspect.isfunction(value)
        and name.startswith("_")
        and not name.startswith("__")
        and name not in ENGINE_METHODS
    ] + ["run_location", "warn_once"]


def test_every_backend_method_is_on_the_page_with_its_exact_signature(page: str) -> None:
    methods = plugin_methods()
    assert {"_init", "_log", "_update_summary", "_close", "_flush"} <= set(methods)
    assert missing(methods, page) == []
    expected = [signature(getattr(BaseTracker, name), name) for name in methods]
    expected.append(signature(BaseTracker.__init__, "__init__"))
    assert signatures_missing(expected, page) == []


def test_every_public_name_of_the_backend_class_is_on_the_page(page: str) -> None:
    public = {name for name in vars(BaseTracker) if not name.startswith("_")}
    attributes = {name for name in vars(BaseTracker()) if not name.startswith("_")}
    assert {"supported_values", "output_path", "run"} <= public | attributes
    assert missing(public | attributes, section(page, "`BaseTracker`") + page) == []


def test_every_class_attribute_is_on_the_page_with_its_annotation(page: str) -> None:
    class_vars = {
        name: annotation
        for name, annotation in BaseTracker.__annotations__.items()
        if str(annotation).startswith("ClassVar")
    }
    assert {"supported_values", "backend_library", "stores_nothing"} <= set(class_vars)
    expected = [f"{name}: {annotation}" for name, annotation in class_vars.items()]
    assert signatures_missing(expected, section(page, "`BaseTracker`")) == []


@pytest.mark.parametrize(
    ("cls", "title"),
    [
        (Image, "`Image`"),
        (Histogram, "`Histogram`"),
        (Table, "`Table`"),
        (RunInfo, "`RunInfo`"),
        (RunLocation, "`RunLocation`"),
        (StoredRun, "`StoredRun`"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_every_field_and_property_is_in_its_section(page: str, cls: type, title: str) -> None:
    names = public_members(cls)
    assert names, cls
    assert missing(names, section(page, title)) == [], f"in the section {title}"


def test_every_name_of_the_plugin_module_is_on_the_page(page: str) -> None:
    assert missing(plugin.__all__, page) == []


def test_the_version_statuses_and_value_kinds_are_on_the_page(page: str) -> None:
    spans = set(code_spans(page))
    assert f'"{PLUGIN_API}"' in spans, f"PLUGIN_API is {PLUGIN_API!r}"
    status = section(page, "`RunStatus`")
    assert missing(RUN_STATUSES, status) == [], "every RunStatus value in its section"
    assert [kind for kind in sorted(VALUE_KINDS) if f'"{kind}"' not in spans] == []


def test_the_option_error_is_on_the_page_with_its_attributes(page: str) -> None:
    attributes = [
        name for name in vars(plugin.OptionError("project", "x")) if not name.startswith("_")
    ]
    assert {"option", "message"} <= set(attributes)
    assert missing(attributes, section(page, "`OptionError`")) == []


def kit_members() -> dict[str, Any]:
    """What a subclass of the conformance kit provides or uses: its public names that are
    not kit tests (annotated ones such as ``kind`` included)."""
    names = {
        **dict.fromkeys(TrackerConformanceTests.__annotations__),
        **vars(TrackerConformanceTests),
    }
    return {
        name: value
        for name, value in names.items()
        if not name.startswith("_") and not name.startswith("test_")
    }


def test_every_conformance_kit_member_is_on_the_page(page: str) -> None:
    members = kit_members()
    assert {"kind", "backend_module", "options", "read_back"} <= set(members)
    kit = section(page, "`TrackerConformanceTests`")
    assert missing(members, kit) == []
    expected = [
        signature(value, name) for name, value in members.items() if inspect.isfunction(value)
    ]
    assert signatures_missing(expected, kit) == []


def test_every_conformance_kit_test_is_on_the_page(page: str) -> None:
    tests = [name for name in vars(TrackerConformanceTests) if name.startswith("test_")]
    assert tests
    assert missing(tests, page) == []
