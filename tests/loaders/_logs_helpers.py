"""Helpers shared by the log loader tests."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import forensics

DATA = Path(__file__).resolve().parent.parent / "data" / "logs"
COLUMNS = "time, service, severity, body, trace_id, span_id, attributes, source_line"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def load_rows(path: Path | str, **options: Any) -> tuple[list[dict[str, Any]], Any, Any]:
    """Load one file into a fresh in-memory case; (log rows by line, the case, the load report)."""
    case = forensics.open_case()
    report = case.load(path, **options)
    rows = case.sql(f"SELECT {COLUMNS} FROM logs ORDER BY source_line").to_arrow().to_pylist()
    for row in rows:
        row["attributes"] = dict(row["attributes"] or [])
    return rows, case, report


def rejects(case: Any) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in case.sql("SELECT source_line, reason_code FROM rejects ORDER BY source_line").rows()]
