from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

import forensics
from forensics.errors import UsageError
from forensics.export import export
from forensics.synth.builder import SpanBuilder


def _case():
    b = SpanBuilder(datetime(2026, 2, 18, 10, 59, tzinfo=timezone.utc), seed=2)
    for i in range(4):
        b.span("catalog-service", "GET /search", kind="server", start_ms=i * 40_000, duration_ms=10)
    b.span("../../evil service", "x", kind="server", start_ms=0, duration_ms=1)
    case = forensics.open_case()
    b.insert(case)
    return case


def test_export_partitions_by_service_and_hour_and_round_trips(tmp_path):
    case = _case()
    written = export(case, tmp_path / "lake")
    assert written["spans"] == 5
    dirs = sorted(p.relative_to(tmp_path / "lake" / "spans").as_posix() for p in (tmp_path / "lake" / "spans").glob("*/*"))
    assert dirs == ["service=.._.._evil_service/hour=2026-02-18T10", "service=catalog-service/hour=2026-02-18T10",
                    "service=catalog-service/hour=2026-02-18T11"]
    back = duckdb.sql(f"select count(*), count(distinct service) from read_parquet('{tmp_path}/lake/spans/**/*.parquet', hive_partitioning=true)").fetchall()
    assert back == [(5, 2)]
    assert not any(p.name == "etc" for p in tmp_path.rglob("*"))
    assert (tmp_path / "lake" / "files.parquet").exists()


def test_export_refuses_non_empty_dir(tmp_path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        export(_case(), tmp_path)
