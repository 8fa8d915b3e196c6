"""Every YAML and Python snippet of the docs works as the page says.

Each fenced ``yaml`` block of ``docs/**/*.md`` is checked by ``noether-trackers validate``
(as a file on its own: a full config or a config-group file). To keep this quick, one
interpreter runs the command's entry point (``noether.core.trackers.cli:main``, what the
console script calls) once per snippet; one test runs the console script itself. Each fenced
``python`` block runs in a fresh interpreter, in a temporary working directory, with HOME and
every backend directory pointed at temporary folders and no way online (see ``conftest.py``).

A snippet is marked by an HTML comment on the line before its fence (invisible on the page):

- ``<!-- snippet: setup=NAME -->``: run one of the :data:`SETUPS` below first; they define what
  the page's prose says the snippet starts from (``cfg``, ``hyperparameters``, a started
  ``tracker``, a ``config.yaml``, a finished run in ``outputs/run1``);
- ``<!-- snippet: skip REASON -->``: not checked, for a block that is deliberately not a whole
  config or program (few are allowed; a test lists them with their reasons).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from isolation import ISOLATED_DIRS, REMOTE_VARIABLES

DOCS = Path(__file__).resolve().parents[1] / "docs"
LANGUAGES = {"yaml": "yaml", "yml": "yaml", "python": "python", "py": "python"}
#: Few on purpose: a snippet that cannot be checked should usually be rewritten so it can.
MAX_SKIPPED = 5

#: What a ``setup=NAME`` snippet starts from, run before it in the same interpreter.
SETUPS = {
    # the parsed experiment config and the run's hyperparameters
    "cfg": """
        from omegaconf import OmegaConf

        cfg = OmegaConf.create({"tracker": {"kind": "tensorboard"}, "optimizer": {"lr": 0.001}})
        hyperparameters = {"optimizer": {"lr": 0.001}, "batch_size": 32}
    """,
    # a started run, as the trainer hands it to callbacks
    "tracker": """
        from noether.core.trackers import create_tracker

        tracker = create_tracker({"kind": "tensorboard"}, output_path="outputs/run1")
        tracker.init(run_name="demo", run_id="abc123")
    """,
    # the config.yaml of the getting-started page
    "config-file": """
        from pathlib import Path

        Path("config.yaml").write_text("tracker:\\n  kind: tensorboard\\n")
    """,
    # a finished run in outputs/run1
    "run1": """
        from noether.core.trackers import create_tracker

        with create_tracker({"kind": "tensorboard"}, output_path="outputs/run1") as _run:
            _run.init(run_name="demo", run_id="abc123")
            _run.log({"loss": 0.5})
    """,
}

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<what>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a docs page, and how its marker says to check it."""

    page: str
    line: int
    language: str
    code: str
    setup: str | None = None
    skip: str | None = None

    @property
    def name(self) -> str:
        """``page.md:LINE`` (the fence's line), the test id."""
        return f"{self.page}:{self.line}"


def read_snippets(path: Path, root: Path = DOCS) -> list[Snippet]:
    """The ``yaml`` and ``python`` blocks of one Markdown page, with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(root).as_posix()
    snippets = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        words = opening["info"].split()
        end = index + 1
        while end < len(lines) and not re.match(
            rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]
        ):
            end += 1
        language = LANGUAGES.get(words[0]) if words else None
        if language is not None:
            body = [
                line[indent:] if line[:indent].isspace() else line
                for line in lines[index + 1 : end]
            ]
            setup, skip = _marker(lines, index, page)
            snippets.append(Snippet(page, index + 1, language, "\n".join(body) + "\n", setup, skip))
        index = end + 1
    return snippets


def _marker(lines: list[str], fence: int, page: str) -> tuple[str | None, str | None]:
    """``(setup, skip reason)`` from the ``<!-- snippet: ... -->`` line before a fence."""
    before = fence - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = _MARKER.match(lines[before]) if before >= 0 else None
    if found is None:
        return None, None
    what = found["what"]
    if what.startswith("setup="):
        return what.removeprefix("setup="), None
    if what.startswith("skip ") and what.removeprefix("skip ").strip():
        return None, what.removeprefix("skip ").strip()
    raise ValueError(f"{page}:{fence + 1}: unknown snippet marker {what!r}")


def all_snippets() -> list[Snippet]:
    """Every snippet of every page, in page order."""
    return [snippet for page in sorted(DOCS.rglob("*.md")) for snippet in read_snippets(page)]


SNIPPETS = [snippet for snippet in all_snippets() if "_build" not in snippet.page]
YAML = [snippet for snippet in SNIPPETS if snippet.language == "yaml"]
PYTHON = [snippet for snippet in SNIPPETS if snippet.language == "python"]


def checked(snippets: list[Snippet]) -> list[object]:
    """Parameters for ``snippets``: those marked as not a whole config or program are not
    test cases at all (``test_the_docs_have_snippets_and_few_skips`` lists and caps them)."""
    return [pytest.param(snippet, id=snippet.name) for snippet in snippets if not snippet.skip]


def validate_command() -> list[str]:
    """The installed ``noether-trackers`` console script, beside this interpreter."""
    script = Path(sys.executable).parent / "noether-trackers"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "noether.core.trackers.cli"]


def isolated_env(root: Path) -> dict[str, str]:
    """This environment with HOME and every backend directory under ``root``, offline, and
    nothing that could send a backend online, as ``conftest.py`` sets up for every test (a
    module-scoped fixture runs outside that per-test set-up)."""
    env = {k: v for k, v in os.environ.items() if k not in REMOTE_VARIABLES}
    for variable, relative in ISOLATED_DIRS.items():
        (root / relative).mkdir(parents=True, exist_ok=True)
        env[variable] = str(root / relative)
    env.update(WANDB_MODE="offline", HF_HUB_OFFLINE="1", WANDB_SILENT="true")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for variable in ("WANDB_API_KEY", "NOETHER_TRACKERS_TRACE", "RANK", "WORLD_SIZE"):
        env.pop(variable, None)
    return env


@pytest.fixture
def snippet_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The test's isolated environment (``conftest.py``), with nothing that could send a
    backend online."""
    env = {k: v for k, v in subprocess_env.items() if k not in REMOTE_VARIABLES}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


#: Runs ``validate`` on every file of its command line; prints each one's exit status and output.
VALIDATE_EACH = """
import contextlib, io, json, sys
from noether.core.trackers.cli import main
results = {}
for path in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["validate", path])
        except SystemExit as exit:
            status = exit.code
    results[path] = [status, out.getvalue(), err.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """``validate``'s exit status and output for every YAML snippet, by snippet name."""
    root = tmp_path_factory.mktemp("yaml-snippets")
    files = {}
    for index, snippet in enumerate(YAML):
        files[snippet.name] = root / f"snippet{index}.yaml"
        files[snippet.name].write_text(snippet.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", VALIDATE_EACH, *map(str, files.values())],
        capture_output=True,
        text=True,
        env=isolated_env(root / "env"),
        cwd=root,
        timeout=120,
        check=True,
    )
    results = json.loads(done.stdout)
    return {
        name: (results[str(path)][0], results[str(path)][1] + results[str(path)][2])
        for name, path in files.items()
    }


@pytest.mark.parametrize("snippet", checked(YAML))
def test_yaml_snippet_is_a_valid_config(
    snippet: Snippet, validated: dict[str, tuple[int, str]]
) -> None:
    status, output = validated[snippet.name]
    assert status == 0, f"{snippet.name}:\n{snippet.code}\n{output}"
    assert ": OK (trackers: " in output


@pytest.mark.parametrize("snippet", checked(PYTHON))
def test_python_snippet_runs(snippet: Snippet, tmp_path: Path, snippet_env: dict[str, str]) -> None:
    setup = textwrap.dedent(SETUPS[snippet.setup]) if snippet.setup else ""
    program = tmp_path / "snippet.py"
    program.write_text(f"{setup}\n# ---- {snippet.name}\n{snippet.code}", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program)],
        capture_output=True,
        text=True,
        env=snippet_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, f"{snippet.name}:\n{snippet.code}\n{done.stderr}"
    # a snippet that makes the library warn teaches something the library warns about
    assert not done.stderr.strip(), f"{snippet.name} wrote to stderr:\n{done.stderr}"


def test_the_docs_have_snippets_and_few_skips() -> None:
    """The extraction finds the blocks, every marker is known, and skips stay few."""
    fences = sum(
        len(re.findall(r"^ *```(?:yaml|python)\b", page.read_text(), re.MULTILINE))
        for page in DOCS.rglob("*.md")
    )
    assert len(YAML) + len(PYTHON) == fences
    assert len(YAML) >= 20 and len(PYTHON) >= 10, (len(YAML), len(PYTHON))
    for snippet in SNIPPETS:
        assert snippet.setup is None or snippet.setup in SETUPS, snippet.name
    skipped = [snippet for snippet in SNIPPETS if snippet.skip]
    assert len(skipped) <= MAX_SKIPPED, [f"{s.name}: {s.skip}" for s in skipped]


def test_a_broken_snippet_fails(tmp_path: Path, snippet_env: dict[str, str]) -> None:
    """The checks catch what they are for: blocks are found (indented ones too), markers
    read, and a misspelled option fails validation."""
    page = tmp_path / "page.md"
    page.write_text(
        "```yaml\ntracker:\n  kind: tensorboard\n  flush_sec: 5\n```\n\n"
        "<!-- snippet: skip an example of an error -->\n```yaml\nflush_secs: -5\n```\n\n"
        "- item\n\n  ```python\n  print('indented')\n  ```\n",
        encoding="utf-8",
    )
    found = read_snippets(page, root=tmp_path)
    assert [(s.line, s.language, s.skip) for s in found] == [
        (1, "yaml", None),
        (8, "yaml", "an example of an error"),
        (14, "python", None),
    ]
    assert found[2].code == "print('indented')\n"
    config = tmp_path / "typo.yaml"
    config.write_text(found[0].code, encoding="utf-8")
    done = subprocess.run(
        [*validate_command(), "validate", str(config)],
        capture_output=True,
        text=True,
        env=snippet_env,
        timeout=60,
    )
    assert done.returncode == 1
    assert "tracker.flush_sec: unknown option; did you mean 'flush_secs'?" in done.stderr
