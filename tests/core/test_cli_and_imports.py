"""The command line, and what importing the package costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from noether.core.trackers.cli import main

BACKEND_LIBRARIES = ("tensorboard", "wandb", "trackio", "torch", "tensorflow", "gradio")


def imported_after(code: str, env: dict[str, str]) -> set[str]:
    """Top-level module names imported by running ``code`` in a fresh interpreter."""
    report = "import sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"{code}\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_core_imports_no_backend_and_no_heavy_dependency(
    subprocess_env: dict[str, str],
) -> None:
    modules = imported_after("import noether.core.trackers, noether.core.callbacks", subprocess_env)
    assert not modules & {*BACKEND_LIBRARIES, "omegaconf", "yaml", "numpy", "pluggy"}


def test_importing_a_plugin_package_imports_no_backend(subprocess_env: dict[str, str]) -> None:
    modules = imported_after("import noether_trackers_tensorboard", subprocess_env)
    assert not modules & set(BACKEND_LIBRARIES)


def test_list_imports_no_backend_library(subprocess_env: dict[str, str]) -> None:
    modules = imported_after(
        "from noether.core.trackers.cli import main\nimport contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['list'])",
        subprocess_env,
    )
    assert "noether_trackers_tensorboard" in modules  # the plugin was loaded ...
    assert not modules & set(BACKEND_LIBRARIES)  # ... but not the library it drives
    assert not modules & {"numpy", "PIL", "omegaconf", "huggingface_hub", "requests"}  # fast


def test_list_shows_kinds_distributions_and_backend_versions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.metadata

    assert main(["list", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    [tensorboard] = [t for t in report["trackers"] if t["kind"] == "tensorboard"]
    assert tensorboard["distribution"] == "noether-trackers-tensorboard"
    assert tensorboard["version"] == importlib.metadata.version("noether-trackers-tensorboard")
    assert tensorboard["backend_version"] == importlib.metadata.version("tensorboard")
    assert "noether.core.trackers.TensorboardTracker" in tensorboard["aliases"]
    assert report["broken"] == [] and report["conflicts"] == []

    assert main(["list"]) == 0
    table = capsys.readouterr().out
    assert "tensorboard" in table and "noether-trackers-tensorboard" in table


def test_validate_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("tracker:\n  kind: tensorboard\n  flush_secs: 5\n")
    assert main(["validate", str(good)]) == 0
    assert "OK (trackers: tensorboard)" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker:\n  - kind: tensorboard\n    flush_sec: 5\n")
    assert main(["validate", str(bad)]) == 1
    assert (
        "tracker[0].flush_sec: unknown option; did you mean 'flush_secs'?"
        in capsys.readouterr().err
    )

    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1


def test_the_installed_command_runs(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    command = Path(sys.executable).parent / "noether-trackers"
    config = tmp_path / "c.yaml"
    config.write_text("tracker: null\n")
    done = subprocess.run(
        [str(command), "validate", str(config)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


#: The training frameworks the core integrates with; only their integration modules import them.
FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "accelerate", "hydra", "torch")
INTEGRATIONS = ("lightning", "accelerate", "transformers")


def test_importing_every_other_core_module_imports_no_training_framework(
    subprocess_env: dict[str, str],
) -> None:
    code = (
        "import pkgutil, importlib, noether.core.trackers as package\n"
        f"skip = {{'noether.core.trackers.' + name for name in {INTEGRATIONS!r}}}\n"
        "prefix = package.__name__ + '.'\n"
        "names = [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]\n"
        "assert len(names) > 30, names\n"
        "for name in names:\n"
        "    if name not in skip:\n"
        "        importlib.import_module(name)\n"
        "package.create_tracker(None).close()"
    )
    assert not imported_after(code, subprocess_env) & set(FRAMEWORKS)


@pytest.mark.parametrize("integration", INTEGRATIONS)
def test_an_integration_without_its_framework_names_the_extra_to_install(
    integration: str, subprocess_env: dict[str, str]
) -> None:
    code = (
        f"import sys; sys.modules[{integration!r}] = None  # as if it were not installed\n"
        f"import noether.core.trackers.{integration}"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env
    )
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"ImportError: noether.core.trackers.{integration} needs '{integration}', which is not "
        f"installed: pip install 'noether-trackers-core[{integration}]'"
    )
