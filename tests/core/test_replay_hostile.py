"""``noether-trackers replay`` on journals that are damaged or hostile: media are read only
from the run's own ``media/`` folder (issue 9, point 17), and every failure is one clear
message and a non-zero exit, never a traceback (point 18). The real console script runs in a
subprocess and replays into the real TensorBoard backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from noether.core.trackers import Image, create_tracker
from noether.core.trackers.journal import read_journal

COMMAND = Path(sys.executable).parent / "noether-trackers"
SECRET = Image(np.full((4, 4), 123, dtype=np.uint8))  # a PNG that is not the run's


def make_run(run_dir: Path) -> None:
    """A small closed run: steps 0..4, an image at step 0 (journal lines 1..8)."""
    tracker = create_tracker({"kind": "tensorboard"}, run_dir)
    tracker.init(run_name="offline", run_id="job-1", config={"lr": 0.1})
    tracker.log({"loss": 0.0, "sample": Image(np.zeros((2, 2), dtype=np.uint8))})
    for step in range(1, 5):
        tracker.log({"loss": float(step)})
    tracker.close()


def insert_before_close(run_dir: Path, *records: dict[str, Any]) -> None:
    lines = (run_dir / "journal.jsonl").read_bytes().splitlines(keepends=True)
    added = [json.dumps({"t": 1.0, **record}).encode() + b"\n" for record in records]
    (run_dir / "journal.jsonl").write_bytes(b"".join([*lines[:-1], *added, lines[-1]]))


def image(path: str) -> dict[str, Any]:
    return {"type": "image", "path": path, "caption": None}


def replay(
    run_dir: Path, tmp_path: Path, env: dict[str, str], config_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "replay.yaml"
    if config_text is not None or not config.exists():
        config.write_text(config_text or "tracker:\n  kind: tensorboard\n")
    output = str(tmp_path / "out")
    return subprocess.run(
        [str(COMMAND), "replay", str(run_dir), "--to", str(config), "--output", output],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def image_tags(log_dir: Path) -> list[str]:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return sorted(events.Tags()["images"])


# ---- point 17: media only from the run's own media/ folder --------------------------------


def test_replay_never_reads_media_from_outside_the_run(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET.to_png())  # outside the run directory
    (run / "media" / "link.png").symlink_to(secret)  # a symlink in media/ leading out
    insert_before_close(
        run,
        {
            "op": "log",
            "step": 5,
            "values": {
                "loss": 5.0,
                "escape": image("../secret.png"),
                "absolute": image(str(secret)),
                "link": image("media/link.png"),
                "inside_out": image("media/../../secret.png"),
            },
        },
    )

    done = replay(run, tmp_path, subprocess_env)

    assert done.returncode == 0, done.stderr
    assert image_tags(tmp_path / "out" / "tensorboard_logs") == ["sample"]  # only the run's
    assert "Traceback" not in done.stderr
    assert (
        f"{run / 'journal.jsonl'}: skipped 4 unreadable values (first: line 8, value "
        "'escape': image path '../secret.png' leads outside the run's media/ folder: not "
        "read); replaying the rest"
    ) in done.stderr


def test_a_media_folder_that_leads_elsewhere_is_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    make_run(run)
    elsewhere = tmp_path / "elsewhere"
    (run / "media").rename(elsewhere)
    (run / "media").symlink_to(elsewhere)  # media/ itself a symlink out of the run
    [logged] = [r for r in read_journal(run) if r["op"] == "log" and r["step"] == 0]
    assert logged["values"] == {"loss": 0.0}
    assert "media/ is a symlink, not the run's own folder: not read" in caplog.text


def test_a_fifo_in_media_does_not_hang_the_reader(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    make_run(run)
    [png] = (run / "media").iterdir()
    png.unlink()
    os.mkfifo(png)  # opening a FIFO to read blocks until someone writes
    read: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: read.extend(read_journal(run)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the stuck reader before failing
        os.close(os.open(png, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the journal hung on a FIFO in media/")
    assert next(r["values"] for r in read if r["op"] == "log") == {"loss": 0.0}
    assert "cannot be read (not a regular file)" in caplog.text


# ---- point 18: one clear message, a non-zero exit, no traceback ---------------------------


def garbage_only(run: Path) -> None:
    (run / "journal.jsonl").write_bytes(b"\x00\x01 not a journal\n" * 3 + b"[" * 50_000 + b"\n")


def no_init_record(run: Path) -> None:
    lines = (run / "journal.jsonl").read_bytes().splitlines(keepends=True)
    (run / "journal.jsonl").write_bytes(b"".join([lines[0], *lines[2:]]))


def journal_is_a_directory(run: Path) -> None:
    (run / "journal.jsonl").unlink()
    (run / "journal.jsonl").mkdir()


def journal_is_a_fifo(run: Path) -> None:
    (run / "journal.jsonl").unlink()
    os.mkfifo(run / "journal.jsonl")


def init_without_a_name(run: Path) -> None:
    lines = (run / "journal.jsonl").read_bytes().splitlines(keepends=True)
    init = json.loads(lines[1])
    init["run_name"] = ""
    lines[1] = json.dumps(init).encode() + b"\n"
    (run / "journal.jsonl").write_bytes(b"".join(lines))


CORRUPT_JOURNALS: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (
        garbage_only,
        "cannot replay: {journal}: no readable init record: nothing to replay; {journal}: "
        "skipped 4 unreadable lines (first: line 1: not JSON (Expecting value))",
    ),
    "no init record": (
        no_init_record,
        "cannot replay: {journal}: no readable init record: nothing to replay",
    ),
    "a directory": (
        journal_is_a_directory,
        "{journal}: cannot read the journal: Is a directory",
    ),
    "a fifo": (journal_is_a_fifo, "{journal}: cannot read the journal: not a regular file"),
    "empty run name": (
        init_without_a_name,
        "cannot replay {run} into {out}: init() needs run_name as a non-empty str; got ''",
    ),
}


@pytest.mark.parametrize("case", CORRUPT_JOURNALS)
def test_replay_of_a_corrupt_journal_is_one_clear_message(
    case: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    damage, message = CORRUPT_JOURNALS[case]
    damage(run)

    done = replay(run, tmp_path, subprocess_env)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    expected = message.format(journal=run / "journal.jsonl", run=run, out=tmp_path / "out")
    assert done.stderr.strip() == expected


CONFIG_ERRORS: dict[str, tuple[str | None, str]] = {
    "missing file": (None, "invalid tracker configuration: {config}: no such config"),
    "not YAML": (
        "tracker: [unclosed\n",
        "invalid tracker configuration: {config}: not valid YAML at line 2, column 1: ",
    ),
    "unknown kind": (
        "tracker:\n  kind: no-such-backend\n",
        "{config}: invalid tracker configuration: tracker.kind: ",
    ),
    "bad option": (
        "tracker:\n  kind: tensorboard\n  flush_secs: soon\n",
        "{config}: invalid tracker configuration: tracker.flush_secs: ",
    ),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_replay_with_a_wrong_config_is_one_clear_message(
    case: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    text, message = CONFIG_ERRORS[case]
    config = tmp_path / "replay.yaml"
    if text is not None:
        config.write_text(text)
    done = subprocess.run(
        [str(COMMAND), "replay", str(run), "--to", str(config)],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(message.format(config=config)), done.stderr
    assert done.stderr.count(str(config)) == 1, done.stderr  # the file is named once


def test_replay_into_a_backend_that_fails_to_start_is_one_clear_message(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tensorboard_logs").write_text("a file where TensorBoard needs a folder")

    done = replay(run, tmp_path, subprocess_env)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(
        f"{tmp_path / 'replay.yaml'}: invalid tracker configuration:\n"
        "  - tracker (TensorboardTracker): failed to start: "
    ), done.stderr


def test_replay_into_an_output_path_that_cannot_be_written_is_one_clear_message(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    (tmp_path / "out").write_text("a file where the output directory should be")

    done = replay(run, tmp_path, subprocess_env)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"cannot replay {run} into {tmp_path / 'out'}: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def png_bomb(width: int, height: int, inflated: int) -> bytes:
    """A grey PNG that declares ``width`` x ``height`` but whose image data inflates to
    ``inflated`` zero bytes (a few MB on disk for a GB inflated)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    deflater, block, parts = zlib.compressobj(1), bytes(16 * 2**20), []
    for _ in range(inflated // len(block)):
        parts.append(deflater.compress(block))
    parts.append(deflater.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height", "problem"),
    [
        (100_000, 100_000, "larger than images are read back"),  # declares 10 GB
        (64, 64, "does not fit its 64x64 header"),  # declares 4 KB, inflates to 32 MB
    ],
)
def test_a_png_bomb_is_refused_without_inflating_it(width: int, height: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Image.from_png(png_bomb(width, height, 32 * 2**20))
    picture = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (Image.from_png(Image(picture).to_png()).pixels[..., 0] == picture).all()


# Runs the real console script and prints, last, the largest resident size (KiB) any of its
# processes reached: the replay is this launcher's only child.
MEASURED_REPLAY = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_replaying_a_journal_with_a_png_bomb_stays_small_and_replays_the_rest(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = tmp_path / "run"
    make_run(run)
    [media] = list((run / "media").rglob("*.png"))
    media.write_bytes(png_bomb(64, 64, 1536 * 2**20))  # ~1.5 MB that inflates to 1.5 GB
    config = tmp_path / "replay.yaml"
    config.write_text("tracker:\n  kind: tensorboard\n")
    command = [str(COMMAND), "replay", str(run), "--to", str(config)]
    command += ["--output", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-c", MEASURED_REPLAY, *command],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    status, peak_kib = (int(word) for word in done.stdout.split()[-2:])
    assert status == 0, done.stderr
    assert peak_kib < 400 * 1024, f"the replay reached {peak_kib // 1024} MiB"
    assert "skipped 1" in done.stderr and "does not fit its 64x64 header" in done.stderr
    events = EventAccumulator(str(tmp_path / "out" / "tensorboard_logs"))
    events.Reload()
    assert [event.step for event in events.Scalars("loss")] == [0, 1, 2, 3, 4]
