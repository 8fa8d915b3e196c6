"""Checking a tracker's YAML options against the tracker class's constructor.

A tracker's schema *is* its ``__init__``: every keyword-only parameter with a type annotation
is an option, a parameter without a default is required. Only the types that YAML can express
are supported: ``str``, ``int``, ``float``, ``bool``, ``None``, ``Literal[...]``, unions,
``list[...]``, ``dict[str, ...]`` and ``Any`` (plus ``os.PathLike``/``Path``, given as text).

A value that has the right type but makes no sense (a negative interval, a zero timeout) is
declared in the annotation with a :class:`Constraint`, e.g. ``flush_secs: Annotated[int,
Gt(0)]``, so that it is refused with its YAML path before any tracker is built.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import math
import numbers
import operator
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

_MISSING = inspect.Parameter.empty


class Constraint:
    """What a value of the right type must also satisfy; put in an ``Annotated[...]`` hint.

    Subclasses implement :meth:`holds` and :meth:`describe`. The check runs only on values that
    already have the option's type and that :meth:`applies` to: by default numbers, so that
    the ``None`` of an optional number is left alone; a constraint on other values overrides it.
    """

    #: What the value must be, in words, when that says more than :meth:`describe` (for
    #: example ``"a positive number of seconds"``).
    says: str | None = None

    def holds(self, value: Any) -> bool:
        """True when ``value`` satisfies the constraint."""
        raise NotImplementedError

    def describe(self) -> str:
        """The constraint in a few symbols, e.g. ``> 0``."""
        raise NotImplementedError

    def applies(self, value: Any) -> bool:
        """True when the constraint is about ``value`` (by default: a number, not a bool)."""
        # bool is an int to Python, never a number to a YAML author
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    def problem(self, value: Any) -> str | None:
        """None when ``value`` satisfies the constraint; otherwise what is wrong with it."""
        if not self.applies(value) or self.holds(value):
            return None
        return f"must be {self.says or self.describe()}; got {value!r}"


@dataclass(frozen=True)
class _Bound(Constraint):
    """The value must compare with ``bound`` as :attr:`symbol` says (NaN never does)."""

    bound: float
    says: str | None = None
    symbol: ClassVar[str]
    compare: ClassVar[Callable[[Any, Any], bool]]

    def holds(self, value: Any) -> bool:
        """True when ``value`` compares with the bound as :attr:`symbol` says."""
        return bool(type(self).compare(value, self.bound))

    def describe(self) -> str:
        """The symbol and the bound, e.g. ``> 0``."""
        return f"{self.symbol} {self.bound:g}"


@dataclass(frozen=True)
class Gt(_Bound):
    """The value must be greater than ``bound`` (NaN never is)."""

    symbol: ClassVar[str] = ">"
    compare: ClassVar[Callable[[Any, Any], bool]] = operator.gt


@dataclass(frozen=True)
class Ge(_Bound):
    """The value must be at least ``bound`` (NaN never is)."""

    symbol: ClassVar[str] = ">="
    compare: ClassVar[Callable[[Any, Any], bool]] = operator.ge


@dataclass(frozen=True)
class Finite(Constraint):
    """The value must be a finite number: YAML's ``.inf`` and ``.nan`` are floats too."""

    says: str | None = None

    def holds(self, value: Any) -> bool:
        """True unless ``value`` is infinite or NaN."""
        return math.isfinite(value)

    def describe(self) -> str:
        """``a finite number``."""
        return "a finite number"


@dataclass(frozen=True)
class Option:
    """One option of a tracker kind, as read from its constructor."""

    name: str
    annotation: Any
    default: Any
    #: What a value must satisfy besides its type (from ``Annotated[...]``).
    constraints: tuple[Constraint, ...] = ()

    @property
    def required(self) -> bool:
        """True when the YAML must give this option."""
        return self.default is _MISSING

    def describe(self) -> str:
        """A short human description, e.g. ``flush_secs: int (> 0) = 60``."""
        text = f"{self.name}: {type_name(self.annotation)}"
        if self.constraints:
            text += f" ({', '.join(constraint.describe() for constraint in self.constraints)})"
        return text if self.required else f"{text} = {self.default!r}"

    def problem(self, value: Any) -> str | None:
        """None when ``value`` fits the option; otherwise what is wrong (the first problem)."""
        mismatch = type_mismatch(value, self.annotation)
        if mismatch is not None:
            return mismatch
        for constraint in self.constraints:
            broken = constraint.problem(value)
            if broken is not None:
                return broken
        return None


def tracker_options(tracker_class: type, skip: frozenset[str]) -> dict[str, Option]:
    """The options of ``tracker_class``: its constructor's keyword-only parameters.

    Parameters named in ``skip`` (those the core passes itself, such as ``output_path``) and
    ``**kwargs`` are not options.
    """
    init = tracker_class.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init)
    annotated = typing.get_type_hints(init, include_extras=True)
    options: dict[str, Option] = {}
    for parameter in inspect.signature(init).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or parameter.name in skip:
            continue
        options[parameter.name] = Option(
            parameter.name,
            hints.get(parameter.name, Any),
            parameter.default,
            constraints_of(annotated.get(parameter.name, Any)),
        )
    return options


def constraints_of(annotation: Any) -> tuple[Constraint, ...]:
    """The :class:`Constraint` markers of an ``Annotated[...]`` hint, also inside a union
    (``Annotated[float, Gt(0)] | None``)."""
    if typing.get_origin(annotation) is typing.Annotated:
        markers = annotation.__metadata__
        return tuple(marker for marker in markers if isinstance(marker, Constraint))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(
            marker for arm in typing.get_args(annotation) for marker in constraints_of(arm)
        )
    return ()


def check_options(path: str, given: Mapping[str, Any], options: Mapping[str, Option]) -> list[str]:
    """Problems with ``given`` against ``options``, each naming its YAML path (``path.key``)."""
    problems = []
    for key, value in given.items():
        option = options.get(key)
        if option is None:
            problems.append(f"{path}.{key}: unknown option{_did_you_mean(key, options)}")
            continue
        problem = option.problem(value)
        if problem is not None:
            problems.append(f"{path}.{key}: {problem}")
    for option in options.values():
        if option.required and option.name not in given:
            problems.append(f"{path}.{option.name}: missing required option ({option.describe()})")
    return problems


def _did_you_mean(key: str, options: Mapping[str, Option]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    known = ", ".join(sorted(options)) or "none"
    return f" (known options: {known})"


def type_name(annotation: Any) -> str:
    """Readable name of an annotation: ``int``, ``str | None``, ``'online' | 'offline'``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(choice) for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if origin is not None:
        args = ", ".join(type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', origin)}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def type_mismatch(value: Any, annotation: Any) -> str | None:
    """None when ``value`` fits ``annotation``; otherwise what was expected and what came."""
    if _fits(value, annotation):
        return None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"expected {type_name(annotation)}, got {type(value).__name__} {shown}"


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in args)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin in (list, tuple, collections.abc.Sequence):
        item = args[0] if args else Any
        return isinstance(value, list | tuple) and all(_fits(v, item) for v in value)
    if origin in (dict, collections.abc.Mapping):
        item = args[1] if len(args) == 2 else Any
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and _fits(v, item) for k, v in value.items()
        )
    if annotation is type(None) or annotation is None:
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation in (Path, os.PathLike) or annotation == os.PathLike[str]:
        return isinstance(value, str | os.PathLike)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True
