"""The Sphinx documentation in docs/ builds without a warning, and its reference parts are
generated from the installed code: every option of every first-party tracker kind and every
command of ``noether-trackers`` is on a page, and one that is not described fails the build."""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from docutils.nodes import make_id

from noether.core.trackers.config import CORE_PARAMETERS, ENTRY_OPTIONS
from noether.core.trackers.registry import CORE_DISTRIBUTION, KNOWN_PLUGINS, get_registry
from noether.core.trackers.schema import tracker_options

DOCS = Path(__file__).resolve().parents[1] / "docs"
FIRST_PARTY = {CORE_DISTRIBUTION, *(distribution for _, distribution in KNOWN_PLUGINS.values())}


def sphinx(source: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``sphinx-build -W --keep-going`` (every warning reported, any one fails the build)."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    return subprocess.run(
        [*command, str(source), str(out)], capture_output=True, text=True, env=env, timeout=300
    )


def commands() -> list[str]:
    """The commands of ``noether-trackers``, from its usage line."""
    done = subprocess.run(
        [sys.executable, "-m", "noether.core.trackers.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    usage = done.stdout.split("{", 1)[1].split("}", 1)[0]
    return usage.split(",")


def test_sphinx_builds_the_docs_without_warnings(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    done = sphinx(DOCS, tmp_path, subprocess_env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "api.html").read_text().count("reduce_metrics") > 0
    assert (tmp_path / "plugin-guide.html").exists()
    assert "furo" in (tmp_path / "index.html").read_text()
    pages = "".join(page.read_text() for page in tmp_path.rglob("*.html"))
    kinds = [kind for kind in get_registry().kinds if kind.distribution in FIRST_PARTY]
    assert {kind.distribution for kind in kinds} == FIRST_PARTY, "install every plugin"
    for kind in kinds:
        for option in tracker_options(kind.tracker_class, CORE_PARAMETERS):
            assert f'id="{make_id(f"option-{kind.kind}-{option}")}"' in pages, (kind, option)
    for option in ENTRY_OPTIONS:
        assert f'id="{make_id(f"option-entry-{option}")}"' in pages, option
    cli = html.unescape((tmp_path / "cli.html").read_text())
    for command in commands():
        assert f"usage: noether-trackers {command} [-h]" in cli, command


def test_an_undescribed_option_kind_or_command_fails_the_build(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    source = tmp_path / "docs"
    shutil.copytree(DOCS / "_ext", source / "_ext")
    (source / "conf.py").write_text(
        "import sys, pathlib\n"
        "sys.path.insert(0, str(pathlib.Path(__file__).parent / '_ext'))\n"
        "extensions = ['myst_parser', 'noether_reference']\n"
    )
    (source / "index.md").write_text(
        textwrap.dedent(
            """\
            # Index

            ```{tracker-options} tensorboard
            log_dir: Where the event files go.
            flush_sec: A misspelled option.
            ```

            ```{cli-command} validate
            ```
            """
        )
    )
    done = sphinx(source, tmp_path / "html", subprocess_env)
    assert done.returncode != 0
    assert "options without a description: flush_secs" in done.stderr
    assert "described options that tensorboard does not have: flush_sec" in done.stderr
    assert "tracker kind 'wandb' is not documented" in done.stderr
    assert "command 'noether-trackers list' is not documented" in done.stderr
    assert "command 'noether-trackers validate' is not documented" not in done.stderr
