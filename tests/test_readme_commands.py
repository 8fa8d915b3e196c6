"""Every command the README prints runs as printed from the repository root on a fresh machine:
without an activated virtual environment, so no bare console script can hide behind ``PATH``.

``scripts/setup`` and ``scripts/test`` are what CI runs (``.ci/run``); the example's own run
and everything it prints are tested in ``test_example.py``. Every other command runs here, or
its ``--help`` when running it would do real work (train, benchmark, build the docs).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from isolation import as_on_a_fresh_machine

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Commands CI runs itself; the README's first two.
RUN_BY_CI = ("scripts/setup", "scripts/test")


def readme_commands() -> list[str]:
    """The commands of the README's ``bash`` blocks (comments dropped, one per line, ``&&``
    chains split) and every inline code span that starts a command with ``.venv/bin/``."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            commands += [part.strip() for part in command.split("&&") if part.strip()]
    commands += re.findall(r"`(\.venv/bin/[^`]+)`", text)
    return list(dict.fromkeys(commands))


COMMANDS = readme_commands()


def test_the_readme_starts_with_the_two_commands_ci_runs() -> None:
    assert COMMANDS[:3] == ["scripts/setup", ".venv/bin/python examples/train.py", "scripts/test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec scripts/test")
    assert len(COMMANDS) >= 8, COMMANDS


def test_no_readme_command_relies_on_an_activated_environment() -> None:
    for command in COMMANDS:
        program = command.split()[0]
        assert program.startswith((".venv/bin/", "scripts/")) or "=" in program, command


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if not c.startswith(RUN_BY_CI)], ids=lambda c: c[:60]
)
def test_every_readme_command_runs_as_printed(command: str, subprocess_env: dict[str, str]) -> None:
    read_only = (" list", " validate ", " --help")
    runs_as_is = any(part in f"{command} " for part in read_only)
    done = subprocess.run(
        command if runs_as_is else f"{command} --help",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=as_on_a_fresh_machine(subprocess_env),
        timeout=120,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
