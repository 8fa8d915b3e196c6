"""The end-of-run summary: best and last value of every logged metric.

A metric's direction comes from the words in its name: loss-like names are better when lower
(``key/min``), accuracy-like names when higher (``key/max``), and neutral names (learning rate,
epoch, timings, anything unrecognised) only get ``key/last``.
"""

from __future__ import annotations

import math
import re
from enum import Enum

from noether.core.trackers.values import Scalar

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
    """Classify ``key`` (e.g. ``train/loss``, ``val_accuracy``, ``optim/lr``) by its words.

    Neutral words win over the others so that ``loss_time`` or ``lr/score_scale`` are not
    mistaken for quality metrics.
    """
    words = set(_WORD.findall(key.lower()))
    if words & _NEUTRAL:
        return Direction.NEUTRAL
    if words & _LOWER_IS_BETTER:
        return Direction.LOWER
    if words & _HIGHER_IS_BETTER:
        return Direction.HIGHER
    return Direction.NEUTRAL


class MetricSummary:
    """Accumulates, per scalar key, its last value and its best value by direction.

    NaN never becomes the best value unless a metric has only ever been NaN.
    """

    def __init__(self) -> None:
        self._last: dict[str, Scalar] = {}
        self._best: dict[str, Scalar] = {}
        self._directions: dict[str, Direction] = {}

    def update(self, key: str, value: Scalar) -> None:
        """Record one logged value of ``key``."""
        direction = self._directions.get(key)
        if direction is None:
            direction = self._directions[key] = metric_direction(key)
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
