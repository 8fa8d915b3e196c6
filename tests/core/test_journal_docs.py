"""docs/journal.md documents exactly the records of ``noether.core.trackers.records``: every
journal record type (its class, its ``op`` and each of its fields), every call a backend
receives, and no record or call class that does not exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from noether.core.trackers import records

JOURNAL_DOC = Path(__file__).resolve().parents[2] / "docs" / "journal.md"
CALL_TYPES = ("StartCall", "FinalSummary", "CloseCall", "JournalSpan", "UnknownRecord")


def sections(text: str) -> dict[str, str]:
    """Each ``###`` section of the page by its heading line."""
    parts = re.split(r"^### (.*)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_journal_record_type_is_documented_with_its_op_and_fields() -> None:
    by_heading = sections(JOURNAL_DOC.read_text(encoding="utf-8"))
    assert records.RECORD_TYPES, "no record types found"
    for op, record_type in records.RECORD_TYPES.items():
        heading = f"`{op}`: `{record_type.__name__}`"
        assert heading in by_heading, f"no section '### {heading}' in {JOURNAL_DOC.name}"
        section = by_heading[heading]
        for field in dataclasses.fields(record_type):
            if field.name != "t":  # every record's `t` is documented once, for all of them
                assert f"| `{field.name}` |" in section, f"{op}: field {field.name} missing"
    assert "| `t` |" in JOURNAL_DOC.read_text(encoding="utf-8")


def test_every_call_type_is_named() -> None:
    text = JOURNAL_DOC.read_text(encoding="utf-8")
    for name in (*CALL_TYPES, "LogRecord", "SummaryRecord"):
        assert f"`{name}`" in text, name


def test_the_page_names_no_record_or_call_class_that_does_not_exist() -> None:
    named = set(re.findall(r"\b[A-Z]\w*(?:Record|Call)\b", JOURNAL_DOC.read_text()))
    assert named, "the page names no record or call class"
    missing = {name for name in named if not isinstance(getattr(records, name, None), type)}
    assert not missing, f"{JOURNAL_DOC.name} names classes records.py does not have: {missing}"
