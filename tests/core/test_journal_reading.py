"""Reading a damaged journal: lines (and values) that cannot be read anywhere in the file are
skipped and counted, and resume and replay carry on with what is readable (issue 9, point 11).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import Histogram, Image, create_tracker, journal
from noether.core.trackers.journal import JournalError, read_journal

COMMAND = Path(sys.executable).parent / "noether-trackers"


def losses(log_dir: Path) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars("loss")]


def journal_lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "journal.jsonl").read_bytes().splitlines(keepends=True)


def write_lines(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "journal.jsonl").write_bytes(b"".join(lines))


def record(**fields: Any) -> bytes:
    return json.dumps({"t": 1.0, **fields}).encode() + b"\n"


def first_process(run_dir: Path) -> None:
    """A run of 10 steps (journal lines: header, init, steps 0..9 on lines 3..12, close)."""
    tracker = create_tracker({"kind": "tensorboard"}, run_dir)
    tracker.init(run_name="damaged", run_id="job-1")
    for step in range(10):
        tracker.log({"loss": float(step)})
    tracker.close(status="terminated")


def damage_step_3(run_dir: Path) -> None:
    """Overwrite the line of step 3 (line 6) with garbage, as a bad disk block would."""
    lines = journal_lines(run_dir)
    assert b'"step":3,' in lines[5]
    lines[5] = b"\x00\x00\x00garbage" + b"\n"
    write_lines(run_dir, lines)


def test_bad_lines_and_values_anywhere_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)
    tracker.init(run_name="r", run_id="job-1")
    tracker.log({"loss": 1.0, "sample": Image(np.zeros((2, 2), dtype=np.uint8))}, step=0)
    tracker.log({"loss": 2.0, "weights": Histogram(np.arange(10.0))}, step=1)
    tracker.close()
    header, init, first, second, close = journal_lines(tmp_path)
    (tmp_path / "media" / "000001-step0-sample.png").unlink()  # a missing image file
    damaged = json.loads(second)
    damaged["values"]["audio"] = {"type": "audio", "path": "x.wav"}  # an unknown value type
    damaged["values"]["bad_histogram"] = {"type": "histogram", "edges": [0, 1], "counts": "x"}
    damaged["values"]["nothing"] = None
    bad_lines = [
        b"{not json\n",  # bad JSON (not torn: a record follows)
        b"[1, 2]\n",  # not an object
        record(values={"loss": 3.0}),  # no `op`
        record(op="log", values={"loss": 3.0}),  # a log record without a step
        record(op="log", step=-1, values={"loss": 3.0}),
        record(op="log", step=2**64, values={"loss": 3.0}),  # beyond 64 bits
        record(op="log", step=True, values={"loss": 3.0}),
        record(op="log", step=5, values=[1]),
        record(op="init", run_name="x"),  # an init record without a run id
        b'{"op":"log","step":6,"values":{"text":"\xff\xfe"}}\n',  # not UTF-8
        b"[" * 100_000 + b"\n",  # nested deeper than any parser goes
    ]
    write_lines(
        tmp_path,
        [header, init, first, *bad_lines, json.dumps(damaged).encode() + b"\n", b"\n", close],
    )

    caplog.clear()
    assert [r["op"] for r in read_journal(tmp_path)] == ["journal", "init", "log", "log", "close"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert str(tmp_path / "journal.jsonl") in warning
    assert "skipped 11 unreadable lines and 4 unreadable values (first: line 3," in warning

    reader = journal.JournalReader(tmp_path)  # the counts, for callers who want them
    records = list(reader)
    assert [r["op"] for r in records] == ["journal", "init", "log", "log", "close"]
    assert records[2]["values"] == {"loss": 1.0}  # the image whose file is gone left out
    assert set(records[3]["values"]) == {"loss", "weights"}
    assert isinstance(records[3]["values"]["weights"], Histogram)
    assert (reader.skipped_lines, reader.skipped_values) == (len(bad_lines), 4)
    assert reader.describe_skipped() == (
        f"{tmp_path / 'journal.jsonl'}: skipped 11 unreadable lines and 4 unreadable values "
        "(first: line 3, value 'sample': image file media/000001-step0-sample.png is missing)"
    )


def test_a_torn_last_line_is_one_skipped_line(tmp_path: Path) -> None:
    first_process(tmp_path)
    lines = journal_lines(tmp_path)
    write_lines(tmp_path, [*lines[:-1], lines[-1][:20]])  # killed while writing `close`
    reader = journal.JournalReader(tmp_path)
    assert [r["op"] for r in reader][-1] == "log"
    assert reader.skipped_lines == 1
    assert str(reader.first_skipped) == "line 13: a torn line (the run was killed mid-write)"


def test_a_resumed_run_continues_after_a_damaged_middle_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first_process(tmp_path)
    damage_step_3(tmp_path)

    tracker = create_tracker({"kind": "tensorboard"}, tmp_path)  # the job restarted
    tracker.init(run_name="damaged", run_id="job-1")
    assert tracker.run is not None and tracker.run.resumed
    tracker.log({"loss": 10.0})
    tracker.log({"loss": 11.0})
    tracker.close()

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{tmp_path / 'journal.jsonl'}: skipped 1 unreadable line (first: line 6: not JSON "
        "(Expecting value)); resuming run job-1 from the rest"
    ]
    steps = [r["step"] for r in read_journal(tmp_path) if r["op"] == "log"]
    assert steps == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]  # steps continued after the last
    summary = yaml.safe_load((tmp_path / "summary.yaml").read_text())
    assert summary["loss/min"] == 0.0 and summary["loss/last"] == 11.0  # the whole run


def test_replay_of_a_damaged_journal_replays_the_rest_and_says_what_it_skipped(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    first_process(run)
    damage_step_3(run)
    config = tmp_path / "tb.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")

    done = subprocess.run(
        [str(COMMAND), "replay", str(run), "--to", str(config), "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        f"{run / 'journal.jsonl'}: skipped 1 unreadable line (first: line 6: not JSON "
        "(Expecting value)); replaying the rest"
    ) in done.stderr
    assert done.stdout.strip() == f"replayed {run} into {config} (skipped 1 unreadable line)"
    assert losses(tmp_path / "out" / "tensorboard_logs") == [
        (step, float(step)) for step in (0, 1, 2, 4, 5, 6, 7, 8, 9)
    ]


def test_journal_error_stays_importable() -> None:
    assert issubclass(JournalError, ValueError)  # a documented name
