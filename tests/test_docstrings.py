"""Every public module, class, function and method of the shipped packages has a docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType

import pytest

PACKAGES = [
    "noether.core.trackers",
    "noether.core.callbacks",
    "noether_trackers_tensorboard",
    "noether_trackers_wandb",
    "noether_trackers_trackio",
]


def modules() -> Iterator[ModuleType]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package
        for info in pkgutil.iter_modules(package.__path__):
            yield importlib.import_module(f"{name}.{info.name}")


def undocumented(module: ModuleType) -> Iterator[str]:
    if not module.__doc__:
        yield module.__name__
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue
        if not value.__doc__:
            yield f"{module.__name__}.{name}"
        if inspect.isclass(value):
            for member_name, member in vars(value).items():
                function = member.fget if isinstance(member, property) else member
                if member_name.startswith("_") or not inspect.isfunction(function):
                    continue
                if not function.__doc__:
                    yield f"{module.__name__}.{name}.{member_name}"


@pytest.mark.parametrize("module", list(modules()), ids=lambda module: module.__name__)
def test_public_names_have_docstrings(module: ModuleType) -> None:
    assert list(undocumented(module)) == []
