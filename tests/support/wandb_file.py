"""Reading back the ``.wandb`` file of a W&B run: what ``wandb sync`` would upload.

wandb 0.31 no longer ships a Python reader (the old ``wandb.sdk.internal.datastore`` is gone;
``wandb-core`` reads and writes the file), so this is a small one for the tests. The format is
LevelDB's log format with a W&B header: a 7-byte file header (``:W&B``, magic ``0xBEE1``,
version), then 32 KiB blocks of chunks. Each chunk has a 7-byte header (CRC-32 of type byte +
data, little-endian length, type: full, first, middle, last); a block's tail shorter than a
chunk header is zero padding. Each record is a ``wandb_internal_pb2.Record``, parsed with the
protobuf classes wandb ships.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto.wandb_internal_pb2 import Record  # type: ignore[attr-defined]  # generated

BLOCK_SIZE = 32 * 1024
HEADER_SIZE = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
FILE_IDENT = b":W&B"
FILE_MAGIC = 0xBEE1


def read_records(path: Path) -> list[Any]:
    """Every record of the ``.wandb`` file at ``path``, checksums verified."""
    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:HEADER_SIZE])
    assert (ident, magic) == (FILE_IDENT, FILE_MAGIC), f"{path} is not a .wandb file"
    records = []
    for payload in _payloads(data, HEADER_SIZE):
        record = Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def _payloads(data: bytes, position: int) -> Iterator[bytes]:
    pending: bytes | None = None
    while position + HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < HEADER_SIZE:
            assert not data[position : position + left_in_block].strip(b"\0"), "bad padding"
            position += left_in_block
            continue
        checksum, length, kind = struct.unpack("<IHB", data[position : position + HEADER_SIZE])
        if (checksum, length, kind) == (0, 0, 0):  # zero-filled rest of the last block
            position += left_in_block
            continue
        chunk = data[position + HEADER_SIZE : position + HEADER_SIZE + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"bad CRC at {position}"
        position += HEADER_SIZE + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind in (MIDDLE, LAST):
            assert pending is not None, "continuation chunk without a first chunk"
            pending += chunk
            if kind == LAST:
                yield pending
                pending = None
        else:
            raise AssertionError(f"unknown chunk type {kind} at {position}")


def _set_nested(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _item_keys(item: Any) -> list[str]:
    return [item.key] if item.key else list(item.nested_key)


@dataclass
class WandbRunFile:
    """The records of one run's ``.wandb`` file, decoded the way the W&B server applies them."""

    path: Path
    records: list[Any] = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> WandbRunFile:
        """Read the ``.wandb`` file at ``path``."""
        return cls(path, read_records(path))

    def of_type(self, kind: str) -> list[Any]:
        """The payloads of every record of one type (``history``, ``metric``, ...)."""
        return [
            getattr(record, kind)
            for record in self.records
            if record.WhichOneof("record_type") == kind
        ]

    @property
    def run(self) -> Any:
        """The ``RunRecord`` (id, name, project, group, tags, ...)."""
        (run,) = self.of_type("run")
        return run

    @property
    def exit_code(self) -> int | None:
        """The exit code the run finished with, or None if it never finished."""
        exits = self.of_type("exit")
        return exits[-1].exit_code if exits else None

    def history(self) -> list[dict[str, Any]]:
        """One dict per history row (W&B's own ``_step``, ``_runtime``... included)."""
        rows = []
        for history in self.of_type("history"):
            row: dict[str, Any] = {}
            for item in history.item:
                _set_nested(row, _item_keys(item), json.loads(item.value_json))
            rows.append(row)
        return rows

    def config(self) -> dict[str, Any]:
        """The run's config after every update (W&B's own ``_wandb`` entry left out)."""
        config: dict[str, Any] = {}
        for update in [self.run.config, *self.of_type("config")]:
            for item in update.update:
                _set_nested(config, _item_keys(item), json.loads(item.value_json))
            for item in update.remove:
                config.pop(_item_keys(item)[0], None)
        config.pop("_wandb", None)
        return config

    def summary(self) -> dict[str, Any]:
        """The run summary after every update, as the W&B server ends up showing it."""
        summary: dict[str, Any] = {}
        for update in self.of_type("summary"):
            for item in update.update:
                _set_nested(summary, _item_keys(item), json.loads(item.value_json))
            for item in update.remove:
                summary.pop(_item_keys(item)[0], None)
        return summary
