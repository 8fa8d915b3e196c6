"""``summary.yaml`` and ``config.yaml``: written fast whatever their size, read back exactly by
``yaml.safe_load``, and never leaving a temp file behind when writing fails."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from noether.core.trackers.run_files import dump_yaml, write_yaml

#: Keys that YAML would misread if written plain, or that need escapes to be written at all.
AWKWARD_KEYS = [
    "yes", "No", "TRUE", "null", "~", "1e5", "0x1F", "2001-01-01", ".inf", "<<", "=", "-",
    "a: b", "a #b", "", " padded ", "quote\"'", "back\\slash", "new\nline", "tab\t", "\x00",
    "\x7f", "\x85", "\u2028", "\ufeff", "\ud800", "é", "😀", "x" * 1500, "[list]", "{map}",
    "&anchor", "*alias", "!tag", "%directive", "@at", "`tick", "|", ">", "?", "key:", "#",
]  # fmt: skip
AWKWARD_VALUES: list[Any] = [
    0.1, -0.0, 1e-05, 1e16, 5e-324, 1.7976931348623157e308, math.nan, math.inf, -math.inf,
    0, -7, 10**30, True, False, None, "", "yes", "1.5", ".nan", "2020-01-01", "x" * 3000,
    "multi\nline", "😀 \u2029", "\ud800",
]  # fmt: skip


def large_summary(size: int) -> dict[str, Any]:
    """A summary like a run with ``size`` metrics leaves: ``key/min`` and ``key/last`` each."""
    summary: dict[str, Any] = {}
    for index in range(size):
        summary[f"train/layer_{index}/loss/min"] = index * 0.37 if index % 7 else math.nan
        summary[f"train/layer_{index}/loss/last"] = index
    return summary


def assert_same(read: Mapping[str, Any], written: Mapping[str, Any]) -> None:
    """Equal, NaN included, with the keys in the same order."""
    assert list(read) == list(written)
    for key, value in written.items():
        back = read[key]
        assert type(back) is type(value), key
        assert back == value or (value != value and back != back), key
        if isinstance(value, float) and value == 0:
            assert math.copysign(1, back) == math.copysign(1, value), key


def test_a_large_summary_reads_back_identically(tmp_path: Path) -> None:
    summary = {**large_summary(10_000), "_status": "finished"}  # 20,001 entries, 3 batches
    write_yaml(tmp_path / "summary.yaml", summary)
    read = yaml.load((tmp_path / "summary.yaml").read_text(), Loader=yaml.CSafeLoader)
    assert_same(read, summary)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.yaml"]


def test_awkward_keys_and_values_read_back_identically() -> None:
    data = {key: AWKWARD_VALUES[i % len(AWKWARD_VALUES)] for i, key in enumerate(AWKWARD_KEYS)}
    data.update({f"value {i}": value for i, value in enumerate(AWKWARD_VALUES)})
    assert_same(yaml.safe_load(dump_yaml(data)), data)


def test_nested_data_after_many_flat_keys_reads_back_identically(tmp_path: Path) -> None:
    """The fast writer gives way to PyYAML's when data turns out not to be flat."""
    data: dict[str, Any] = {**large_summary(6_000), "nested": {"a": [1.5, None]}, "after": 1}
    write_yaml(tmp_path / "config.yaml", data)  # 12,000 flat entries: a first batch is written
    read = yaml.load((tmp_path / "config.yaml").read_text(), Loader=yaml.CSafeLoader)
    assert read.pop("nested") == {"a": [1.5, None]}
    assert_same(read, {key: value for key, value in data.items() if key != "nested"})


def test_a_flat_summary_does_not_go_through_pyyaml_s_python_dumper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PyYAML's pure-Python dumper needs minutes for a million-metric summary."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("PyYAML's Python dumper was used for a flat summary")

    monkeypatch.setattr(yaml, "safe_dump", refuse)
    monkeypatch.setattr(yaml, "dump", refuse)
    summary = large_summary(1_000)
    write_yaml(tmp_path / "summary.yaml", summary)
    assert_same(
        yaml.load((tmp_path / "summary.yaml").read_text(), Loader=yaml.CSafeLoader), summary
    )


class FailingMapping(Mapping[str, Any]):
    """A summary whose reading raises ``error`` after ``good`` entries (half-way through)."""

    def __init__(self, good: int, error: BaseException) -> None:
        self.data = large_summary(good // 2 + 1)
        self.error = error

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __len__(self) -> int:
        return len(self.data) + 1

    def __iter__(self) -> Iterator[str]:
        yield from self.data
        raise self.error


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_write_leaves_no_temp_file_and_the_old_file_intact(
    tmp_path: Path, error: BaseException
) -> None:
    path = tmp_path / "summary.yaml"
    write_yaml(path, {"old": 1})
    with pytest.raises(type(error)):
        write_yaml(path, FailingMapping(30_000, error))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.yaml"]
    assert yaml.safe_load(path.read_text()) == {"old": 1}


def test_a_full_disk_leaves_no_temp_file(tmp_path: Path) -> None:
    """Files limited to 64 KiB (RLIMIT_FSIZE, as a full disk would): the write fails with
    ``OSError`` and the half-written temp file is removed."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from noether.core.trackers.run_files import write_yaml
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        summary = {{f"metric_{{i}}/last": i * 0.5 for i in range(100_000)}}
        try:
            write_yaml(Path({str(tmp_path / "summary.yaml")!r}), summary)
        except OSError as error:
            print("failed:", error.strerror)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "failed: File too large", done.stderr
    assert list(tmp_path.iterdir()) == []
