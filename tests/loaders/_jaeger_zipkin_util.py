"""Helpers shared by the Jaeger, Zipkin and round-trip loader tests."""
from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import zstandard

import forensics
from forensics.loaders.core.sniff import Head, sniff

DATA = Path(__file__).resolve().parent.parent / "data"
BASE = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def at(us: int) -> datetime:
    """BASE + ``us`` microseconds."""
    return BASE + timedelta(microseconds=us)


def load(*paths: Path | str, **kwargs: Any) -> tuple[forensics.Case, Any]:
    case = forensics.open_case()
    report = forensics.load(case, *paths, progress=False, **kwargs)
    return case, report


def spans_by_id(case: forensics.Case) -> dict[str, dict[str, Any]]:
    """Every span row keyed by span_id, MAP columns as dicts and JSON columns parsed."""
    out = {}
    for row in case.sql("SELECT * FROM spans ORDER BY source_file, source_line, source_offset").dicts():
        for col in ("attributes", "resource_attributes"):
            row[col] = dict(row[col]) if row[col] is not None else None
        for col in ("events", "links"):
            row[col] = json.loads(row[col]) if row[col] is not None else None
        assert row["span_id"] not in out, f"duplicate span id {row['span_id']}"
        out[row["span_id"]] = row
    return out


def rejects(case: forensics.Case) -> list[tuple]:
    """(file name, line, offset, reason_code, reason) of every reject, in file order."""
    return [(Path(r[0]).name, r[1], r[2], r[3], r[4]) for r in case.sql(
        "SELECT source_file, source_line, source_offset, reason_code, reason FROM rejects "
        "ORDER BY source_file, source_line NULLS FIRST, source_offset").rows()]


def compressed_copies(src: Path, tmp: Path) -> list[Path]:
    """gzip and zstd copies of ``src`` in ``tmp`` (names keep the .json extension inside)."""
    gz = tmp / (src.name + ".gz")
    with open(src, "rb") as fin, gzip.open(gz, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    zst = tmp / (src.name + ".zst")
    zst.write_bytes(zstandard.ZstdCompressor().compress(src.read_bytes()))
    return [gz, zst]


def head(text: str, complete: bool = True) -> Head:
    """A sniffing head over ``text`` (``complete=False``: the start of a larger file)."""
    return Head("x.json", text.encode(), complete=complete)


def assert_compressed_copies_match(src: Path, tmp: Path, fmt: str, expected: dict[str, dict[str, Any]]) -> None:
    """gzip and zstd copies of ``src`` sniff as ``fmt`` and load rows equal to ``expected``."""
    for path in compressed_copies(src, tmp):
        assert sniff(str(path)) == fmt, path.name
        case, _ = load(path)
        got = spans_by_id(case)
        assert {k: {**v, "source_file": None} for k, v in got.items()} == \
            {k: {**v, "source_file": None} for k, v in expected.items()}, path.name
