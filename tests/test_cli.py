"""The CLI contract of DESIGN.md: shapes of output, formats and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pyarrow.parquet as pq
import pytest

import forensics
from forensics.cli import main
from forensics.synth.builder import SpanBuilder


@pytest.fixture()
def case_file(tmp_path):
    path = tmp_path / "c.duckdb"
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=3)
    root = b.span("catalog-service", "GET /search", kind="server", duration_ms=120, version="1.8.0")
    b.span("catalog-service", "GET /inventory/{id}", kind="client", parent=root, start_ms=5, duration_ms=10,
           attributes={"peer.service": "inventory-service", "http.route": "/inventory/{id}"})
    with forensics.open_case(path) as case:
        b.insert(case)
    return str(path)


def test_sql_table_csv_json_parquet(case_file, tmp_path, capsys):
    q = "select service, count(*) as n from spans group by 1"
    assert main(["sql", case_file, q]) == 0
    out = capsys.readouterr().out
    assert "catalog-service" in out and "(1 rows)" in out
    assert main(["sql", case_file, q, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"service","n"', '"catalog-service",2']
    assert main(["sql", case_file, "select trace_id, attributes from spans where kind = ?", "-p", "client", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and len(rows[0]["trace_id"]) == 32
    out_file = tmp_path / "o.parquet"
    assert main(["sql", case_file, q, "--format", "parquet", "-o", str(out_file)]) == 0
    assert pq.read_table(out_file).num_rows == 1


def test_bad_query_and_bad_usage_exit_2(case_file, capsys):
    assert main(["sql", case_file, "select * from nope"]) == 2
    assert "query failed" in capsys.readouterr().err
    assert main(["sql", case_file]) == 2
    assert main(["load", "--case", "x.duckdb"]) == 2


def test_load_reports_loaded_and_rejected_per_table(tmp_path, capsys):
    p = tmp_path / "junk.dat"
    p.write_text("no format here\n")
    assert main(["load", str(p), "--case", str(tmp_path / "c.duckdb")]) == 2  # nothing was an export (#19.3)
    assert "no export file among 1 file: 1 not a format forensics reads (junk.dat)" in capsys.readouterr().err
    good = tmp_path / "app.jsonl"
    good.write_text('{"timestamp": "2026-01-01T00:00:00Z", "level": "info", "service": "web", "message": "hi"}\n')
    assert main(["load", str(p), str(good), "--case", str(tmp_path / "e.duckdb")]) == 0
    out = capsys.readouterr().out
    for word in ("spans", "logs", "metrics", "events", "rejects", "read 2, loaded 1, rejected 1"):
        assert word in out
    assert main(["load", str(p), "--case", str(tmp_path / "d.duckdb"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and err.count("\n") == 1


def test_detect_json_prints_only_a_json_array(case_file):
    proc = subprocess.run([sys.executable, "-m", "forensics", "detect", case_file, "--format", "json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(json.loads(proc.stdout), list)


def test_detect_unknown_detector_is_usage_error(case_file, capsys):
    assert main(["detect", case_file, "--only", "no_such_detector"]) == 2
    assert "unknown detector" in capsys.readouterr().err


def test_formats_lists_registered_formats(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in forensics.formats():
        if not name.startswith("test_"):
            assert name in out


def test_sql_keeps_repeated_column_names(case_file, capsys):
    assert main(["sql", case_file, "select a.kind, b.kind from spans a join spans b using (span_id) limit 1", "--format", "json"]) == 0
    import json as _json

    row = _json.loads(capsys.readouterr().out)[0]
    assert set(row) == {"kind", "kind_1"}
