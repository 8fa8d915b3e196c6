"""The conformance kit's pytest plugin (the ``pytest11`` entry point ``noether_trackers``).

pytest loads it in every session of an environment where noether-trackers-core is installed,
so it imports nothing but pytest (not :mod:`noether.core.trackers.testing`, which pytest must
first be told to rewrite). It does two things:

- it registers :mod:`noether.core.trackers.testing` for assertion rewriting, so that a failing
  kit check shows the values it compared;
- it ends the terminal report with the kit checks that did not run because the backend cannot
  show what they check or the plugin's ``read_back`` does not read it back (a section
  ``noether-trackers conformance: checks not run``), so that no gap passes unnoticed. A kit
  test records such a check in its report's ``user_properties`` under
  :data:`NOT_RUN_PROPERTY`, which also reaches JUnit XML and pytest-xdist's controller.
"""

from __future__ import annotations

import pytest

__all__ = ["NOT_RUN_PLUGIN", "NOT_RUN_PROPERTY", "NOT_RUN_TITLE", "NotRunChecks"]

#: The ``user_properties`` name under which a kit test records a check it did not run.
NOT_RUN_PROPERTY = "noether_trackers_not_run"
#: The title of the terminal summary section listing those checks.
NOT_RUN_TITLE = "noether-trackers conformance: checks not run"
#: The name the session's :class:`NotRunChecks` is registered under.
NOT_RUN_PLUGIN = "noether-trackers-not-run"

pytest.register_assert_rewrite("noether.core.trackers.testing")


class NotRunChecks:
    """Collects the checks the kit's tests did not run, and lists them at the end."""

    def __init__(self) -> None:
        #: ``"TestClass: check (why)"`` lines, in the order first reported, each once.
        self.lines: dict[str, None] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Take what a test phase recorded under :data:`NOT_RUN_PROPERTY`."""
        for name, value in report.user_properties:
            if name == NOT_RUN_PROPERTY:
                self.lines.setdefault(str(value), None)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """A section naming every check that did not run (none: no section)."""
        if not self.lines:
            return
        terminalreporter.section(NOT_RUN_TITLE, sep="=", yellow=True)
        for line in self.lines:
            terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    """Register this session's :class:`NotRunChecks`."""
    config.pluginmanager.register(NotRunChecks(), NOT_RUN_PLUGIN)
