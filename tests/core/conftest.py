"""Fixtures of the core's tests: a registry with the test and fault-injection plugins, and the
release of backends that hang on purpose."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fault_plugins import HangingInitTracker, HangingTracker, fault_registry


@pytest.fixture
def registry() -> Any:
    """The installed plugins plus the recording and fault-injection plugins."""
    return fault_registry()


@pytest.fixture(autouse=True)
def release_hanging_backends() -> Iterator[None]:
    """Let the delivery threads of backends that hang on purpose finish after each test."""
    HangingTracker.release = threading.Event()
    HangingInitTracker.release = threading.Event()
    yield
    HangingTracker.release.set()
    HangingInitTracker.release.set()
