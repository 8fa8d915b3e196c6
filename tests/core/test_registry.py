"""Plugin discovery: entry points, broken plugins, conflicts, class import, namespace packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_distribution import fake_distribution

from noether.core.trackers import TrackerNotInstalledError
from noether.core.trackers.hookspecs import hookimpl
from noether.core.trackers.registry import TrackerRegistry
from recording_plugins import RecordingPlugin, RecordingTracker


def run_list_json(site: Path, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    env = {**env, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "noether.core.trackers.cli", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


GOOD_PLUGIN = """
    from noether.core.trackers.base import BaseTracker
    from noether.core.trackers.hookspecs import hookimpl

    class ThirdPartyTracker(BaseTracker):
        def _log(self, values, step):
            pass

    @hookimpl
    def register_trackers(register):
        register(ThirdPartyTracker, kind="thirdparty")
"""


def test_broken_plugins_are_recorded_and_do_not_break_the_others(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    fake_distribution(tmp_path, "broken-import", "broken = module_that_does_not_exist_xyz", {})
    fake_distribution(
        tmp_path,
        "raises-in-hook",
        "raising = raising_plugin",
        {
            "raising_plugin.py": "from noether.core.trackers.hookspecs import hookimpl\n"
            "@hookimpl\ndef register_trackers(register):\n    raise RuntimeError('boom')\n"
        },
    )
    fake_distribution(
        tmp_path,
        "misspelled-hook",
        "typo = typo_plugin",
        {
            "typo_plugin.py": "from noether.core.trackers.hookspecs import hookimpl\n"
            "@hookimpl\ndef register_tracker(register):\n    pass\n"
        },
    )
    fake_distribution(
        tmp_path, "good-plugin", "thirdparty = good_plugin", {"good_plugin.py": GOOD_PLUGIN}
    )
    report = run_list_json(tmp_path, subprocess_env)
    broken = {item["plugin"]: item for item in report["broken"]}
    assert broken["broken"]["distribution"] == "broken-import"
    assert "ModuleNotFoundError" in broken["broken"]["error"]
    assert "boom" in broken["raising"]["error"]
    assert "register_tracker" in broken["typo"]["error"]
    kinds = {item["kind"]: item for item in report["trackers"]}
    assert kinds["thirdparty"]["distribution"] == "good-plugin"
    assert "noether.core.trackers.ThirdPartyTracker" in kinds["thirdparty"]["aliases"]
    assert "tensorboard" in kinds


def test_two_plugins_registering_one_kind_are_reported_with_both_distributions(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    clash = GOOD_PLUGIN.replace('kind="thirdparty"', 'kind="tensorboard"').replace(
        "ThirdParty", "Clash"
    )
    fake_distribution(
        tmp_path, "clashing-plugin", "clash = clash_plugin", {"clash_plugin.py": clash}
    )
    report = run_list_json(tmp_path, subprocess_env)
    [conflict] = report["conflicts"]
    assert "'tensorboard'" in conflict and "noether-trackers-tensorboard" in conflict
    assert "clashing-plugin" in conflict


def test_class_import_goes_through_the_registry() -> None:
    from noether.core.trackers import TensorboardTracker
    from noether_trackers_tensorboard.tracker import TensorboardTracker as Direct

    assert TensorboardTracker is Direct
    registry = TrackerRegistry()
    registry.add_plugin(RecordingPlugin(), name="test")
    assert registry.find_class("RecordingTracker") is RecordingTracker


def test_missing_plugin_class_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import noether.core.trackers.registry as registry_module

    empty = TrackerRegistry()  # as if only core were installed
    monkeypatch.setattr(registry_module, "get_registry", lambda: empty)
    with pytest.raises(TrackerNotInstalledError, match="pip install noether-trackers-wandb"):
        from noether.core.trackers import WandBTracker  # noqa: F401
    with pytest.raises(TrackerNotInstalledError, match="pip install noether-trackers-trackio"):
        empty.resolve("trackio")


def test_unknown_attribute_is_an_attribute_error() -> None:
    import noether.core.trackers as trackers

    with pytest.raises(AttributeError):
        trackers.NoSuchThing  # noqa: B018
    assert not hasattr(trackers, "lowercase_name")


def test_hook_calls_are_traced_when_asked(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOETHER_TRACKERS_TRACE", "1")
    registry = TrackerRegistry()

    class Plugin:
        @hookimpl
        def register_trackers(self, register):  # type: ignore[no-untyped-def]
            register(RecordingTracker, kind="traced")

    registry.add_plugin(Plugin(), name="traced")
    assert "register_trackers" in capfd.readouterr().err


def test_another_distribution_under_the_noether_namespace_stays_importable(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    other = tmp_path / "noether" / "other"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("VALUE = 42\n")
    (tmp_path / "noether" / "core" / "extra").mkdir(parents=True)
    (tmp_path / "noether" / "core" / "extra" / "__init__.py").write_text("VALUE = 7\n")
    code = (
        "import noether.core.trackers, noether.other, noether.core.extra, noether.core.callbacks;"
        "print(noether.other.VALUE + noether.core.extra.VALUE)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**subprocess_env, "PYTHONPATH": str(tmp_path)},
        timeout=60,
    )
    assert done.stdout.strip() == "49"
