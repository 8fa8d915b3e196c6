"""The files a run leaves in its output directory: ``config.yaml`` and ``summary.yaml``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.yaml"


def to_plain(config: Any) -> Any:
    """Turn a config (omegaconf node, dataclass, mapping, ...) into dicts, lists and scalars."""
    if config is None:
        return {}
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)
    import dataclasses

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return {str(key): to_plain_value(value) for key, value in config.items()}
    raise TypeError(f"config must be a mapping, dataclass or omegaconf node; got {type(config)}")


def to_plain_value(value: Any) -> Any:
    """One config value as YAML-safe data (unknown objects become their ``repr``)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping) or type(value).__module__.startswith("omegaconf"):
        return to_plain(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain_value(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return repr(value)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """``data`` as YAML text, keys in their given order."""
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)


def write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        stream.write(dump_yaml(data))
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)
