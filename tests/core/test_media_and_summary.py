"""Media types, metric directions and redaction rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from noether.core.trackers import Histogram, Image, Table
from noether.core.trackers.redaction import REDACTED, redact
from noether.core.trackers.summary import Direction, MetricSummary, metric_direction


@pytest.mark.parametrize(
    ("data", "mode"),
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), "L"),
        (np.random.rand(3, 4, 3), "RGB"),
        (np.zeros((3, 4, 4), dtype=np.int32), "RGBA"),
    ],
)
def test_image_png_decodes_to_the_same_pixels(data: np.ndarray, mode: str) -> None:
    image = Image(data)
    decoded = PILImage.open(io.BytesIO(image.to_png()))
    assert decoded.mode == mode and decoded.size == (4, 3)
    assert np.array_equal(np.asarray(decoded).reshape(image.pixels.shape), image.pixels)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), (2, 2, 5), (0, 3)])
def test_image_rejects_bad_shapes_naming_them(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape"):
        Image(np.zeros(shape))


def test_histogram_and_table_validate_their_input() -> None:
    with pytest.raises(ValueError, match="bins"):
        Histogram([1, 2], bins=0)
    with pytest.raises(ValueError, match="row 1 has 1 cells; expected 2"):
        Table(["a", "b"], [[1, 2], [3]])
    assert Table(["a|b"], [["x\ny"]]).to_markdown() == "| a\\|b |\n|---|\n| x y |"


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("loss", Direction.LOWER),
        ("train/loss", Direction.LOWER),
        ("val_error_rate", Direction.LOWER),
        ("val/accuracy", Direction.HIGHER),
        ("top1_acc", Direction.HIGHER),
        ("f1", Direction.HIGHER),
        ("lr", Direction.NEUTRAL),
        ("optim/learning_rate", Direction.NEUTRAL),
        ("epoch", Direction.NEUTRAL),
        ("loss_time", Direction.NEUTRAL),
        ("samples_seen", Direction.NEUTRAL),
        ("grad_norm", Direction.NEUTRAL),
    ],
)
def test_metric_direction_from_its_name(key: str, direction: Direction) -> None:
    assert metric_direction(key) is direction


def test_summary_ignores_nan_for_the_best_value_and_keeps_inf() -> None:
    summary = MetricSummary()
    for value in [float("nan"), 2.0, float("nan"), float("-inf"), 5.0]:
        summary.update("loss", value)
    result = summary.result()
    assert result["loss/min"] == float("-inf") and result["loss/last"] == 5.0


def test_redaction_replaces_only_text_under_secret_keys() -> None:
    config = {
        "API_KEY": "x",
        "db": {"password": "p", "port": 5432},
        "tokens": [{"secret": b"s"}],
        "max_tokens": 512,
        "tokenizer": {"name": "bpe"},
    }
    assert redact(config) == {
        "API_KEY": REDACTED,
        "db": {"password": REDACTED, "port": 5432},
        "tokens": [{"secret": REDACTED}],
        "max_tokens": 512,
        "tokenizer": {"name": "bpe"},
    }
