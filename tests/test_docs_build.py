"""The Sphinx documentation in docs/ builds without a warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_sphinx_builds_the_docs_without_warnings(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "api.html").read_text().count("reduce_metrics") > 0
    assert (tmp_path / "plugin-guide.html").exists()
