"""The end-of-run summary: best and last value of every logged metric.

A metric's *direction* says which of its values is the best: ``min`` (loss-like, the summary
gets ``key/min``), ``max`` (accuracy-like, ``key/max``) or ``last`` (learning rate, epoch,
timings: only ``key/last``, which every metric gets). It is decided, first match wins, by

1. the user's rules (:class:`SummaryDirections`: glob patterns per direction, from the YAML
   tracker section's ``summary:`` and from ``init(summary_directions=...)``), in order;
2. neutral words in the name (``lr``, ``learning``, ``epoch``, ``step``, ``time``, ...; the name
   is split into words at every character that is not a letter or digit): ``last``;
3. ``loss`` or ``error`` anywhere in the name, as the Noether original matches them
   (``trainloss``, ``val/LossCE``), or a loss-like word (``mse``, ``nll``, ``perplexity``,
   ...): ``min``;
4. ``accuracy`` anywhere in the name, or an accuracy-like word (``acc``, ``f1``, ``auc``,
   ``bleu``, ...): ``max``;
5. anything else: ``last``.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from noether.core.trackers.values import Scalar

#: Matched anywhere in a lower-cased name (as the Noether original does).
_LOWER_IS_BETTER_PARTS = ("loss", "error")
_HIGHER_IS_BETTER_PARTS = ("accuracy",)
_LOWER_IS_BETTER = frozenset(
    [
        "loss",
        "losses",
        "error",
        "err",
        "mse",
        "mae",
        "rmse",
        "nll",
        "perplexity",
        "ppl",
        "cer",
        "wer",
        "fid",
        "regret",
        "distance",
    ]
)
_HIGHER_IS_BETTER = frozenset(
    [
        "acc",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "auc",
        "auroc",
        "score",
        "iou",
        "miou",
        "dice",
        "map",
        "bleu",
        "rouge",
        "reward",
        "return",
        "psnr",
        "ssim",
        "top1",
        "top5",
        "correct",
    ]
)
_NEUTRAL = frozenset(
    [
        "lr",
        "learning",
        "epoch",
        "step",
        "steps",
        "time",
        "seconds",
        "sec",
        "secs",
        "duration",
        "throughput",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")


class Direction(Enum):
    """Which end of a metric's range is better."""

    LOWER = "min"
    HIGHER = "max"
    NEUTRAL = "last"


def metric_direction(key: str) -> Direction:
    """The default direction of ``key`` (e.g. ``train/loss``, ``val_accuracy``, ``optim/lr``),
    by rules 2-5 of the module doc: without any rule of the user's.

    Neutral words win over the others so that ``loss_time`` or ``lr/score_scale`` are not
    mistaken for quality metrics.
    """
    name = key.lower()
    words = set(_WORD.findall(name))
    if words & _NEUTRAL:
        return Direction.NEUTRAL
    if words & _LOWER_IS_BETTER or any(part in name for part in _LOWER_IS_BETTER_PARTS):
        return Direction.LOWER
    if words & _HIGHER_IS_BETTER or any(part in name for part in _HIGHER_IS_BETTER_PARTS):
        return Direction.HIGHER
    return Direction.NEUTRAL


@dataclass(frozen=True)
class SummaryDirections:
    """The user's rules for metric directions, before the defaults: ``(pattern, direction)``
    pairs tried in order, the first whose glob pattern matches the metric's name wins.

    Patterns are ``fnmatch`` globs matched against the whole name, ignoring case: ``val/*``,
    ``*perplexity*``, ``grad_norm``. Build them from the YAML form with :meth:`from_mapping`.
    """

    rules: tuple[tuple[str, Direction], ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, str | Sequence[str]] | None) -> SummaryDirections:
        """Rules from ``{"min": [...], "max": [...], "last": [...]}`` (a single pattern may be
        given as a str); ValueError naming the first problem (see :func:`directions_problem`)."""
        if data is None:
            return cls()
        problem = directions_problem(data)
        if problem is not None:
            raise ValueError(f"summary_directions: {problem}")
        return cls(
            tuple(
                (pattern, Direction(direction))
                for direction, patterns in data.items()
                for pattern in ([patterns] if isinstance(patterns, str) else patterns)
            )
        )

    def then(self, other: SummaryDirections) -> SummaryDirections:
        """These rules, then ``other``'s (which apply where none of these matches)."""
        return SummaryDirections(self.rules + other.rules)

    def to_pairs(self) -> list[list[str]]:
        """The rules as ``[pattern, direction]`` pairs in order (as the journal stores them)."""
        return [[pattern, direction.value] for pattern, direction in self.rules]

    @classmethod
    def from_pairs(cls, pairs: Any) -> SummaryDirections:
        """Rules from :meth:`to_pairs`; ValueError when ``pairs`` is not such a list."""
        if not isinstance(pairs, list):
            raise ValueError(f"expected a list of [pattern, direction] pairs; got {pairs!r}")
        rules = []
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ValueError(f"expected a [pattern, direction] pair; got {pair!r}")
            rules.append((pair[0], Direction(pair[1])))
        return cls(tuple(rules))

    def direction(self, key: str) -> Direction:
        """The direction of metric ``key``: the first matching rule's, else the default."""
        name = key.lower()
        for pattern, direction in self.rules:
            if fnmatch.fnmatchcase(name, pattern.lower()):
                return direction
        return metric_direction(key)


def directions_problem(data: Any) -> str | None:
    """None when ``data`` is a valid YAML form of :class:`SummaryDirections`; otherwise what
    is wrong with it, naming the direction it is about."""
    if not isinstance(data, Mapping):
        return f"expected a mapping of min/max/last to glob patterns; got {type(data).__name__}"
    names = [direction.value for direction in Direction]
    for direction, patterns in data.items():
        if direction not in names:
            close = difflib.get_close_matches(str(direction), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return f"{direction!r} is not a direction (use min, max or last){hint}"
        listed = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(listed, Sequence) or not all(isinstance(p, str) for p in listed):
            return f"the patterns of {direction!r} must be a list of str (globs)"
        if not all(pattern.strip() for pattern in listed):
            return f"a pattern of {direction!r} is empty"
    return None


class MetricSummary:
    """Accumulates, per scalar key, its last value and its best value by direction.

    NaN never becomes the best value unless a metric has only ever been NaN.
    """

    def __init__(self, directions: SummaryDirections | None = None) -> None:
        #: The user's rules (the defaults apply where none matches).
        self.directions = directions or SummaryDirections()
        self._last: dict[str, Scalar] = {}
        self._best: dict[str, Scalar] = {}
        self._directions: dict[str, Direction] = {}

    def update(self, key: str, value: Scalar) -> None:
        """Record one logged value of ``key``."""
        direction = self._directions.get(key)
        if direction is None:
            direction = self._directions[key] = self.directions.direction(key)
        self._last[key] = value
        if direction is Direction.NEUTRAL:
            return
        best = self._best.get(key)
        if (
            best is None
            or math.isnan(best)
            or (
                not math.isnan(value)
                and (value < best if direction is Direction.LOWER else value > best)
            )
        ):
            self._best[key] = value

    def result(self) -> dict[str, Scalar]:
        """``key/min`` or ``key/max`` (by direction) and ``key/last`` for every key seen."""
        summary: dict[str, Scalar] = {}
        for key, last in self._last.items():
            direction = self._directions[key]
            if direction is not Direction.NEUTRAL:
                summary[f"{key}/{direction.value}"] = self._best[key]
            summary[f"{key}/last"] = last
        return summary
