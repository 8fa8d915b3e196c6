"""What the docs must say: every hook in the plugin author's guide (as datasette tests its
hooks), and every snippet of the seed page on the experiment-tracking page."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import yaml

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


#: The snippets of the Noether framework's "Experiment Tracking" page (the seed of this
#: project): its YAML configs, as data, and its code lines.
SEED_CONFIGS = [
    {
        "kind": "noether.core.trackers.WandBTracker",
        "project": "my-project",
        "entity": "my-team",
        "mode": "online",
    },
    {
        "kind": "noether.core.trackers.TrackioTracker",
        "project": "my-project",
        "space_id": "my-hf-space-id",
    },
    {
        "kind": "noether.core.trackers.TensorboardTracker",
        "log_dir": "tensorboard_logs",
        "flush_secs": 60,
    },
]
SEED_CODE = ['tracker.log({"loss": 0.5, "accuracy": 0.9})', "tensorboard --logdir ./outputs"]
EXPERIMENT_TRACKING = GUIDE.parent / "experiment-tracking.md"


def test_the_experiment_tracking_page_has_every_snippet_of_the_seed_page() -> None:
    page = EXPERIMENT_TRACKING.read_text()
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    configs = [yaml.safe_load(code) for language, code in blocks if language == "yaml"]
    for config in [*SEED_CONFIGS, None]:  # None: `tracker: null`, as a config-group file
        assert config in configs or {"tracker": config} in configs, config
    code = "\n".join(code for language, code in blocks if language in ("python", "bash"))
    for line in SEED_CODE:
        assert line in code, line
    for statement in ("noether.core.trackers.base.BaseTracker", "`self.tracker`", "tracker=wandb"):
        assert statement in page, statement
