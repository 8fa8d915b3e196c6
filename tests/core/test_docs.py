"""Every hook is documented in the plugin author's guide (as datasette tests its hooks)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy

from noether.core.trackers import hookspecs

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugin-guide.md"


def declared_hooks() -> dict[str, inspect.Signature]:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return {
        name: inspect.signature(getattr(hookspecs, name))
        for name in vars(manager.hook)
        if not name.startswith("_")
    }


def test_every_hook_has_a_full_docstring() -> None:
    for name in declared_hooks():
        assert len(inspect.getdoc(getattr(hookspecs, name)) or "") > 200, name


def test_every_hook_is_documented_in_the_plugin_guide_with_its_signature_and_an_example() -> None:
    guide = GUIDE.read_text()
    hooks = declared_hooks()
    assert hooks, "no hooks found"
    for name, signature in hooks.items():
        parameters = ", ".join(signature.parameters)
        heading = f"### `{name}({parameters})`"
        assert heading in guide, (
            f"hook {name} is not documented in {GUIDE.name} (expected '{heading}')"
        )
        section = guide.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        assert re.search(rf"@hookimpl\s+def {name}\(", section), f"no example for hook {name}"
