"""Backend-neutral media values: :class:`Image`, :class:`Histogram` and :class:`Table`.

Each backend maps these to its own native type. They hold plain data (numpy arrays, lists) so
that they can be journaled and replayed; numpy is imported only when one is built, since the
core does not depend on it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as error:  # pragma: no cover - numpy ships with every backend in practice
        raise ImportError(
            "media values (Image, Histogram) need numpy: pip install numpy"
        ) from error
    return numpy


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The most bytes a PNG may inflate to when read back, an 8192 x 8192 RGBA image (256 MiB): a
#: journal's media file is data, and a small one may declare or inflate to gigabytes.
MAX_DECODED_PNG_BYTES = 8192 * (1 + 8192 * 4)


@dataclass(frozen=True, eq=False)
class Image:
    """An image: an ``H x W``, ``H x W x 1``, ``H x W x 3`` or ``H x W x 4`` array.

    Integer arrays are taken as 0-255 values; float arrays as 0.0-1.0 (clipped). The array is
    converted once, at construction, to ``uint8`` ``H x W x C`` in :attr:`pixels`.
    """

    data: Any
    caption: str | None = None
    pixels: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        np = _numpy()
        array = np.asarray(self.data)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
            raise ValueError(
                f"Image needs an HxW or HxWxC array with C in 1, 3 or 4; got shape {array.shape}"
            )
        if array.dtype.kind == "f":
            array = np.clip(np.nan_to_num(array) * 255.0 + 0.5, 0, 255)
        elif array.dtype.kind not in "uib":
            raise ValueError(f"Image needs numeric pixels; got dtype {array.dtype}")
        object.__setattr__(self, "pixels", np.ascontiguousarray(array.astype(np.uint8)))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (into a delivery process) as its pixels alone: the array it was made from
        is not sent again (``data`` is the pixels on the other side)."""
        return {"caption": self.caption, "pixels": self.pixels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in (("data", state["pixels"]), *state.items()):
            object.__setattr__(self, name, value)

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """1 (grey), 3 (RGB) or 4 (RGBA)."""
        return int(self.pixels.shape[2])

    def to_png(self) -> bytes:
        """Encode as PNG (no imaging library needed)."""
        color_type = {1: 0, 3: 2, 4: 6}[self.channels]
        rows = b"".join(b"\x00" + row.tobytes() for row in self.pixels)

        def chunk(kind: bytes, payload: bytes) -> bytes:
            body = kind + payload
            return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, color_type, 0, 0, 0)
        return (
            PNG_SIGNATURE
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 6))
            + chunk(b"IEND", b"")
        )

    @classmethod
    def from_png(cls, png: bytes, caption: str | None = None) -> Image:
        """Decode a PNG written by :meth:`to_png` (8-bit, unfiltered rows; not general PNG).

        The PNG is data (a journal's media file, maybe damaged or hostile): ValueError for
        anything else, and never more memory than the image it declares, at most
        :data:`MAX_DECODED_PNG_BYTES` (a small file that inflates to gigabytes is refused
        before it is inflated, or as soon as it inflates past what it declares).
        """
        if not png.startswith(PNG_SIGNATURE):
            raise ValueError("not a PNG file")
        position, chunks = len(PNG_SIGNATURE), dict[bytes, bytes]()
        while position + 8 <= len(png):
            (length,) = struct.unpack(">I", png[position : position + 4])
            kind = png[position + 4 : position + 8]
            chunks[kind] = chunks.get(kind, b"") + png[position + 8 : position + 8 + length]
            position += 12 + length
        if len(chunks.get(b"IHDR", b"")) < 10 or b"IDAT" not in chunks:
            raise ValueError("a truncated PNG (no header or no image data)")
        width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
        channels = {0: 1, 2: 3, 6: 4}.get(color_type)
        if depth != 8 or channels is None:
            raise ValueError("only 8-bit grey, RGB or RGBA PNGs written by Image.to_png decode")
        size = height * (1 + width * channels)
        if size > MAX_DECODED_PNG_BYTES:
            raise ValueError(
                f"a {width}x{height} PNG is larger than images are read back "
                f"({MAX_DECODED_PNG_BYTES // 2**20} MiB)"
            )
        inflater = zlib.decompressobj()
        data = inflater.decompress(chunks[b"IDAT"], size + 1)  # never more than it declares
        if len(data) != size:
            raise ValueError(f"the PNG's image data does not fit its {width}x{height} header")
        np = _numpy()
        rows = np.frombuffer(data, dtype=np.uint8).reshape(height, 1 + width * channels)
        if rows[:, 0].any():
            raise ValueError("filtered PNG rows are not supported (not written by Image.to_png)")
        return cls(rows[:, 1:].reshape(height, width, channels), caption=caption)


@dataclass(frozen=True, eq=False)
class Histogram:
    """A distribution of values, binned once at construction.

    ``values`` is anything numpy can flatten; non-finite values are left out of the bins and
    the statistics (and counted in :attr:`dropped`). ``bins`` is the number of equal-width bins.
    """

    values: Any
    bins: int = 64
    edges: np.ndarray = field(init=False, repr=False)
    counts: np.ndarray = field(init=False, repr=False)
    dropped: int = field(init=False)
    min: float = field(init=False)
    max: float = field(init=False)
    sum: float = field(init=False)
    sum_squares: float = field(init=False)

    def __post_init__(self) -> None:
        np = _numpy()
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ValueError(f"Histogram bins must be a positive int; got {self.bins!r}")
        flat = np.asarray(self.values, dtype=np.float64).ravel()
        finite = flat[np.isfinite(flat)]
        if finite.size:
            counts, edges = np.histogram(finite, bins=self.bins)
            low, high = float(finite.min()), float(finite.max())
        else:
            counts, edges = np.zeros(self.bins, dtype=np.int64), np.linspace(0, 1, self.bins + 1)
            low = high = 0.0
        stats = {
            "edges": edges,
            "counts": counts,
            "dropped": int(flat.size - finite.size),
            "min": low,
            "max": high,
            "sum": float(finite.sum()),
            "sum_squares": float((finite * finite).sum()),
        }
        for name, value in stats.items():
            object.__setattr__(self, name, value)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (into a delivery process) as its bins and statistics: the values it was
        made from are not sent (``values`` is None on the other side, as for
        :meth:`from_bins`)."""
        state = dict(self.__dict__)
        state["values"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def num(self) -> int:
        """How many finite values were binned."""
        return int(self.counts.sum())

    @classmethod
    def from_bins(cls, edges: Any, counts: Any, **statistics: float) -> Histogram:
        """Rebuild an already binned histogram (as read back from a journal).

        ``statistics`` are ``min``, ``max``, ``sum``, ``sum_squares`` and ``dropped``.
        """
        np = _numpy()
        histogram = cls.__new__(cls)
        fields = {
            "values": None,
            "bins": len(counts),
            "edges": np.asarray(edges, dtype=float),
            "counts": np.asarray(counts, dtype=np.int64),
            "dropped": 0,
            "min": 0.0,
            "max": 0.0,
            "sum": 0.0,
            "sum_squares": 0.0,
        }
        fields.update(statistics)
        for name, value in fields.items():
            object.__setattr__(histogram, name, value)
        return histogram


@dataclass(frozen=True, eq=False)
class Table:
    """A table: column names and rows of cells (scalars or strings)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", [str(name) for name in self.columns])
        object.__setattr__(self, "rows", [list(row) for row in self.rows])
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"Table row {index} has {len(row)} cells; expected {len(self.columns)} "
                    f"(columns {self.columns})"
                )

    def to_markdown(self) -> str:
        """Render as a GitHub-flavoured markdown table."""

        def cell(value: Any) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        lines = [
            "| " + " | ".join(cell(name) for name in self.columns) + " |",
            "|" + "---|" * len(self.columns),
        ]
        lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in self.rows]
        return "\n".join(lines)
