"""Building TensorBoard ``Summary`` protos from noether-trackers values.

Written against tensorboard's own protos, so neither torch nor TensorFlow is needed. Scalars
use ``simple_value``, text and tables the text plugin's string tensors, images PNG-encoded
``Summary.Image`` and histograms ``HistogramProto``: the forms TensorBoard's readers expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text import metadata as text_metadata

from noether.core.trackers.plugin import Histogram, Image, Table, Value


def event_of(values: Mapping[str, Value], step: int, wall_time: float) -> Any:
    """The ``Event`` for one ``log`` call: all its values in one summary."""
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary_of(values))


def restart_event(step: int, wall_time: float) -> Any:
    """A ``SessionLog.START`` event: readers purge earlier events at ``step`` and later."""
    return event_pb2.Event(
        wall_time=wall_time, step=step, session_log=event_pb2.SessionLog(status="START")
    )


def summary_of(values: Mapping[str, Value]) -> Any:
    """One ``Summary`` holding every value of one ``log`` call."""
    make = summary_pb2.Summary.Value
    return summary_pb2.Summary(
        value=[
            # scalars are nearly every value: build them here, without a call per value
            make(tag=key, simple_value=value) if type(value) is float else summary_value(key, value)
            for key, value in values.items()
        ]
    )


def summary_value(tag: str, value: Value) -> Any:
    """The ``Summary.Value`` for one normalised value."""
    if isinstance(value, str):
        return text_value(tag, value)
    if isinstance(value, Table):
        return text_value(tag, value.to_markdown())
    if isinstance(value, Image):
        return image_value(tag, value)
    if isinstance(value, Histogram):
        return histogram_value(tag, value)
    return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))


def text_value(tag: str, text: str) -> Any:
    """A text-plugin value (markdown, as TensorBoard's Text tab renders it)."""
    tensor = TensorProto(
        dtype="DT_STRING",
        string_val=[text.encode("utf-8")],
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
    )
    return summary_pb2.Summary.Value(
        tag=tag, metadata=text_metadata.create_summary_metadata(tag, ""), tensor=tensor
    )


def image_value(tag: str, image: Image) -> Any:
    """A PNG image value."""
    proto = summary_pb2.Summary.Image(
        height=image.height,
        width=image.width,
        colorspace=image.channels,
        encoded_image_string=image.to_png(),
    )
    return summary_pb2.Summary.Value(tag=tag, image=proto)


def histogram_value(tag: str, histogram: Histogram) -> Any:
    """A histogram value; bucket limits are the right edges of the bins."""
    proto = summary_pb2.HistogramProto(
        min=histogram.min,
        max=histogram.max,
        num=histogram.num,
        sum=histogram.sum,
        sum_squares=histogram.sum_squares,
        bucket_limit=[float(edge) for edge in histogram.edges[1:]],
        bucket=[float(count) for count in histogram.counts],
    )
    return summary_pb2.Summary.Value(tag=tag, histo=proto)


def markdown_code(text: str) -> str:
    """``text`` as a markdown code block (indented, so any content is safe)."""
    return "\n".join("    " + line for line in text.splitlines())


def markdown_key_values(values: Mapping[str, Any]) -> str:
    """A two-column markdown table of ``values``."""
    return Table(["key", "value"], [[key, value] for key, value in values.items()]).to_markdown()
