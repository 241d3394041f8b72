"""Tabular inputs: Parquet/Arrow files of canonical tables (forensics export output) and spans
tables (CSV/Parquet trace dumps of labelled datasets)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff
from forensics.synth.builder import SpanBuilder

DATA = Path(__file__).resolve().parent.parent / "data" / "tables"
BASE = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)
SPAN_COLUMNS = ("trace_id, span_id, parent_span_id, service, service_version, name, kind, start_time, end_time, "
                "duration_ms, status, http_route, http_status_code, db_system")


def _source_case() -> forensics.Case:
    case = forensics.open_case()
    b = SpanBuilder(BASE)
    root = b.span("catalog-service", "GET /search", kind="server", duration_ms=120, version="1.8.0",
                  attributes={"http.route": "/search", "http.response.status_code": 200})
    for i in range(3):
        b.span("catalog-service", "SELECT items", kind="client", parent=root, start_ms=10 + i, duration_ms=2,
               attributes={"db.system": "postgresql"})
    b.insert(case)
    case.execute("INSERT INTO logs (time, service, severity, body, source_file, source_line) VALUES "
                 "(?, 'catalog-service', 'error', 'boom', 'app.log', 7)", [BASE])
    case.execute("INSERT INTO events (time, kind, service, version, source_file) VALUES (?, 'deploy', 'catalog-service', "
                 "'1.8.0', 'deploys.csv')", [BASE])
    return case


def test_a_forensics_export_lake_loads_as_it_is(tmp_path):
    source = _source_case()
    forensics.export(source, tmp_path / "lake")
    case = forensics.open_case()
    report = case.load(tmp_path / "lake")
    assert {f.format for f in report.files if f.status == "loaded"} == {"canonical_table"}
    assert [f.path.rsplit("/", 1)[1] for f in report.files if f.status == "ignored"] == ["files.parquet", "rejects.parquet"]
    order = "ORDER BY start_time, span_id"
    assert case.sql(f"SELECT {SPAN_COLUMNS} FROM spans {order}").rows() == \
        source.sql(f"SELECT {SPAN_COLUMNS} FROM spans {order}").rows()
    assert case.sql("SELECT time, service, severity, body FROM logs").rows() == [(BASE, "catalog-service", "error", "boom")]
    assert case.sql("SELECT kind, version FROM events").rows() == [("deploy", "1.8.0")]
    assert case.sql("SELECT DISTINCT attributes['forensics.original_source'] FROM logs").rows() == [("app.log:7",)]
    assert case.sql("SELECT count(*) FROM spans WHERE source_file LIKE '%.parquet' AND source_offset IS NOT NULL"
                    ).scalar() == 4
    assert report.rows_rejected == 0 and report.records_read == report.rows_loaded == 6


def test_arrow_ipc_file_and_stream(tmp_path):
    spans = _source_case().sql("SELECT * FROM spans").to_arrow()
    with ipc.new_file(tmp_path / "spans.arrow", spans.schema) as w:
        w.write_table(spans)
    with ipc.new_stream(tmp_path / "spans.ipc", spans.schema) as w:
        w.write_table(spans)
    for name in ("spans.arrow", "spans.ipc"):
        assert sniff(str(tmp_path / name)) == "canonical_table"
        case = forensics.open_case()
        case.load(tmp_path / name)
        assert case.sql("SELECT count(*) FROM spans").scalar() == 4


def test_bad_rows_are_rejected_with_their_row_number(tmp_path):
    table = pa.table({"trace_id": ["a" * 32, "NOT-HEX", "b" * 32, None],
                      "span_id": ["1" * 16, "2" * 16, "3" * 16, "4" * 16], "parent_span_id": [None] * 4,
                      "end_time": ["2026-02-18T10:00:01Z"] * 4,
                      "start_time": ["2026-02-18T10:00:00Z", "2026-02-18T10:00:00Z", "not a time", "2026-02-18T10:00:00Z"], "name": ["ok", "bad id", "bad time", "no trace"]})
    pq.write_table(table, tmp_path / "spans.parquet")
    case = forensics.open_case()
    report = case.load(tmp_path / "spans.parquet")
    assert case.sql("SELECT name FROM spans").rows() == [("ok",)]
    assert case.sql("SELECT source_offset, reason_code, reason FROM rejects ORDER BY 1").rows() == [
        (1, "bad_value", "trace_id is not 32 lowercase hex digits"),
        (2, "bad_value", "start_time is missing or does not cast to TIMESTAMPTZ"),
        (3, "bad_value", "trace_id is missing or does not cast to VARCHAR"),
    ]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (4, 1, 3)
    with pytest.raises(StrictModeError, match=r"spans.parquet.*offset 1.*trace_id is not 32"):
        forensics.open_case().load(tmp_path / "spans.parquet", strict=True)


def test_a_parquet_file_of_no_canonical_table_is_not_claimed(tmp_path):
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "other.parquet")
    case = forensics.open_case()
    report = case.load(tmp_path / "other.parquet")
    assert report.files[0].status == "unknown" and "cannot tell which export format" in report.files[0].message


def _spans(case, cols="trace_id, span_id, parent_span_id, service, name, kind, status, start_time, end_time, duration_ms"):
    return case.sql(f"SELECT {cols} FROM spans ORDER BY start_time, span_id").rows()


def test_spans_table_csv_with_pod_names_nanoseconds_and_rejects():
    assert sniff(str(DATA / "pods_spans.csv")) == "spans_table"
    case = forensics.open_case()
    report = case.load(DATA / "pods_spans.csv")
    t = "4bf92f3577b34da6a3ce929d0e0e4736"
    rows = _spans(case)
    assert rows[:3] == [
        (t, "00f067aa0ba902b7", None, "ts-order-service", "GET /api/v1/orders", "unspecified", "unset",
         BASE, BASE.replace(microsecond=250000), 250.0),
        (t, "10f067aa0ba902b7", "00f067aa0ba902b7", "ts-order-service", "SELECT orders", "unspecified", "unset",
         BASE.replace(microsecond=10000), BASE.replace(microsecond=40000), 30.0),
        (t, "20f067aa0ba902b7", "00f067aa0ba902b7", "ts-payment-service", "POST /api/v1/pay", "unspecified", "error",
         BASE.replace(microsecond=50000), BASE.replace(microsecond=240000), 190.0),
    ]
    assert rows[3][2] is None and rows[3][6] == "ok"  # an empty parent is a root
    assert case.sql("SELECT http_status_code, resource_attributes['k8s.pod.name'] FROM spans "
                    "WHERE span_id = '20f067aa0ba902b7'").rows() == [(503, "ts-payment-service-4234284026-pbt8m")]
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY 1").rows() == [
        (6, "missing_field", "span has no span id"),
        (7, "bad_time", "span has no valid start time"),
        (8, "wrong_shape", "expected 10 fields as in the header, found 5"),
    ]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (7, 4, 3)


def test_spans_table_non_hex_ids_map_deterministically_and_keep_the_original():
    case = forensics.open_case()
    case.load(DATA / "skywalking_spans.csv")
    rows = case.sql("SELECT trace_id, span_id, parent_span_id, service, status, duration_ms, "
                    "attributes['forensics.original_span_id'] AS original, attributes['Component'] AS component "
                    "FROM spans ORDER BY start_time").dicts()
    assert len({r["trace_id"] for r in rows}) == 1 and all(len(r["trace_id"]) == 32 for r in rows)
    assert [r["parent_span_id"] for r in rows] == [None, rows[0]["span_id"], rows[1]["span_id"]]  # parents still found
    assert [r["original"] for r in rows] == ["2a1b3c4d5e6f4a7b8c9d.37.17714088000000000.0",
                                            "2a1b3c4d5e6f4a7b8c9d.37.17714088000000000.1",
                                            "7f6e5d4c3b2a1f0e9d8c.12.17714088000100000.0"]
    assert [(r["service"], r["status"], r["duration_ms"], r["component"]) for r in rows] == [
        ("frontend", "unset", 120.0, "SpringMVC"), ("frontend", "unset", 40.0, "Feign"), ("cart", "error", 30.0, "SpringMVC")]
    again = forensics.open_case()  # deterministic: the same ids in another case
    again.load(DATA / "skywalking_spans.csv")
    assert again.sql("SELECT span_id FROM spans ORDER BY start_time").rows() == [(r["span_id"],) for r in rows]


def test_spans_table_mapping_names_the_columns():
    case = forensics.open_case()
    with pytest.raises(forensics.LoadError, match=r"names no column for trace_id, span_id, start_time"):
        case.load(DATA / "odd_names.csv", format="spans_table")
    case.load(DATA / "odd_names.csv", format="spans_table",
              mapping={"trace_id": "trace_hash", "span_id": "span_hash", "parent_span_id": "up", "service": "who",
                       "name": "what", "start_time": "t0", "end_time": "t1"})
    assert _spans(case, "span_id, parent_span_id, service, name, duration_ms") == [
        ("1111111111111111", None, "gateway", "GET /", 500.0), ("2222222222222222", "1111111111111111", "users",
                                                                 "GET /users/{id}", 200.0)]
    with pytest.raises(forensics.UsageError, match=r"mapping\['trace_id'\] = 'nope' names no column"):
        forensics.open_case().load(DATA / "odd_names.csv", format="spans_table", mapping={"trace_id": "nope"})


def test_spans_table_mapping_from_the_command_line(tmp_path, capsys):
    from forensics.cli import main

    pairs = ("trace_id=trace_hash", "span_id=span_hash", "parent_span_id=up", "service=who", "name=what",
             "start_time=t0", "end_time=t1")
    argv = ["load", str(DATA / "odd_names.csv"), "--case", str(tmp_path / "c.duckdb"), "--format-in", "spans_table"]
    assert main([*argv, *(x for p in pairs for x in ("--mapping", p))]) == 0
    assert "total: read 2, loaded 2, rejected 0" in capsys.readouterr().out
    with forensics.open_case(tmp_path / "c.duckdb", read_only=True) as case:
        assert case.sql("SELECT service, duration_ms FROM spans ORDER BY 1").rows() == [("gateway", 500.0), ("users", 200.0)]


def test_spans_table_parquet_with_iso_times_and_a_duration_unit_in_the_name(tmp_path):
    table = pa.table({"trace_id": ["c" * 32, "c" * 32], "span_id": ["0000000000000001", "0000000000000002"],
                      "parent_id": [None, "0000000000000001"], "service_name": ["api", "db"],
                      "span_name": ["GET /", "query"], "start_time": ["2026-02-18T10:00:00Z", "2026-02-18T10:00:00.010Z"],
                      "duration_us": [5000, 1500], "span_kind": ["SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"],
                      "is_error": [False, True]})
    pq.write_table(table, tmp_path / "dump.parquet")
    assert sniff(str(tmp_path / "dump.parquet")) == "spans_table"
    case = forensics.open_case()
    report = case.load(tmp_path / "dump.parquet")
    assert _spans(case, "span_id, parent_span_id, service, kind, status, duration_ms, source_offset") == [
        ("0000000000000001", None, "api", "server", "unset", 5.0, 0),
        ("0000000000000002", "0000000000000001", "db", "client", "error", 1.5, 1)]
    assert report.rows_loaded == 2


@pytest.mark.parametrize("name, unit", [("StartTimeUnixNano", 1e-3), ("start_ms", 1e3), ("ts_us", 1.0),
                                        ("Duration(ms)", 1e3), ("duration", None), ("StartTime", None)])
def test_units_from_column_names(name, unit):
    from forensics.loaders.tables.spans_table.spans_table import unit_of

    assert unit_of(name) == unit


def test_column_names_are_data_never_sql(tmp_path):
    """Names with quotes, repeated names and a damaged tail: loaded, the names kept in the raw text."""
    hostile = ["trace_id", "span_id", "parent_span_id", "start_time", "end_time", "x\"); DROP TABLE spans; --", "it's"]
    columns = [["d" * 32], ["1" * 16], [None], ["2026-02-18T10:00:00Z"], ["2026-02-18T10:00:01Z"], ["a"], ["b"]]
    pq.write_table(pa.Table.from_arrays([pa.array(c) for c in columns], names=hostile), tmp_path / "canonical.parquet")
    dump = pa.Table.from_arrays([pa.array(["d" * 32]), pa.array(["1" * 16]), pa.array([0]), pa.array([1771408800000]),
                                 pa.array([5]), pa.array(["q"]), pa.array(["r"])],
                                names=["TraceID", "SpanID", "TraceID", "StartTime", "Duration", 'a"b', "c'd"])
    pq.write_table(dump, tmp_path / "dump.parquet")
    for name, fmt in (("canonical.parquet", "canonical_table"), ("dump.parquet", "spans_table")):
        case = forensics.open_case()
        report = case.load(tmp_path / name, format=fmt)
        assert (report.rows_loaded, report.rows_rejected) == (1, 0), name
        assert case.sql("SELECT trace_id, span_id FROM spans").rows() == [("d" * 32, "1" * 16)]
    assert case.sql("SELECT attributes['a\"b'], attributes['c''d'] FROM spans").rows() == [("q", "r")]


def test_a_damaged_parquet_file_keeps_its_readable_rows_and_rejects_the_rest(tmp_path):
    spans = _source_case().sql("SELECT * FROM spans").to_arrow()
    pq.write_table(spans, tmp_path / "spans.parquet", row_group_size=2)
    data = (tmp_path / "spans.parquet").read_bytes()
    meta = pq.ParquetFile(tmp_path / "spans.parquet").metadata
    second = meta.row_group(1).column(0).data_page_offset  # where the second row group's data starts
    (tmp_path / "spans.parquet").write_bytes(data[:second] + b"\0" * 64 + data[second + 64:])
    case = forensics.open_case()
    report = case.load(tmp_path / "spans.parquet")
    assert case.sql("SELECT count(*) FROM spans").scalar() == 2
    assert case.sql("SELECT source_offset, reason_code FROM rejects").rows() == [(2, "truncated")]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)


def _clickhouse_rows(case):
    return case.sql("SELECT span_id, parent_span_id, service, service_version, name, kind, status, status_message, "
                    "duration_ms, http_route, http_status_code, db_system, attributes['db.statement'], "
                    "resource_attributes['k8s.pod.name'], strftime(start_time, '%H:%M:%S.%f') FROM spans "
                    "ORDER BY start_time").rows()


CLICKHOUSE = [
    ("eee19b7ec3c1b174", None, "frontend", "2.1.0", "GET /api/products", "server", "error", "downstream failed", 250.0,
     "/api/products", 500, None, None, "frontend-6d8f9c7b54-tw2xq", "10:00:00.000000"),
    ("0c0a1b2c3d4e5f60", "eee19b7ec3c1b174", "frontend", "2.1.0", "SELECT products", "client", "unset", None, 31.5,
     None, None, "postgresql", "SELECT * FROM products WHERE name = 'o''brien'", None, "10:00:00.012000"),
    ("1d1e1f2021222324", "eee19b7ec3c1b174", "frontend", None, "GET /stock", "client", "error",
     "503 Service Unavailable", 190.0, None, None, None, None, None, "10:00:00.050000"),
]


def test_the_clickhouse_exporters_table_as_csv_needs_no_mapping():
    """otel_traces of the Collector's ClickHouse exporter exported as CSV: maps written
    ``{'k':'v'}`` (quotes escaped), Duration in nanoseconds, kinds and statuses as it names them."""
    path = DATA / "clickhouse_otel_traces.csv"
    assert sniff(str(path)) == "spans_table"
    case = forensics.open_case()
    report = case.load(path)
    assert (report.rows_loaded, report.rows_rejected) == (3, 0)
    assert _clickhouse_rows(case) == CLICKHOUSE
    assert case.sql("SELECT resource_attributes['service.version'], attributes['Events.Name'] FROM spans "
                    "ORDER BY start_time").rows() == [("2.1.0", "[]"), ("2.1.0", "[]"), (None, "['exception']")]


def test_the_clickhouse_exporters_table_as_parquet_with_map_columns(tmp_path):
    rows = pa.table({
        "Timestamp": pa.array([BASE.replace(microsecond=m) for m in (0, 12000, 50000)], pa.timestamp("ns", "UTC")),
        "TraceId": ["5b8efff798038103d269b633813fc60c"] * 3,
        "SpanId": ["eee19b7ec3c1b174", "0c0a1b2c3d4e5f60", "1d1e1f2021222324"],
        "ParentSpanId": ["", "eee19b7ec3c1b174", "eee19b7ec3c1b174"],
        "SpanName": ["GET /api/products", "SELECT products", "GET /stock"],
        "SpanKind": ["Server", "Client", "SPAN_KIND_CLIENT"], "ServiceName": ["frontend"] * 3,
        "ResourceAttributes": pa.array([[("k8s.pod.name", "frontend-6d8f9c7b54-tw2xq"), ("service.version", "2.1.0")],
                                        [("service.version", "2.1.0")], []], pa.map_(pa.string(), pa.string())),
        "SpanAttributes": pa.array([[("http.route", "/api/products"), ("http.status_code", "500")],
                                    [("db.system", "postgresql"), ("db.statement", "SELECT * FROM products WHERE name = 'o''brien'")],
                                    []], pa.map_(pa.string(), pa.string())),
        "Duration": pa.array([250_000_000, 31_500_000, 190_000_000], pa.uint64()),
        "StatusCode": ["Error", "Unset", "STATUS_CODE_ERROR"],
        "StatusMessage": ["downstream failed", "", "503 Service Unavailable"]})
    pq.write_table(rows, tmp_path / "otel_traces.parquet")
    case = forensics.open_case()
    case.load(tmp_path / "otel_traces.parquet")
    assert _clickhouse_rows(case) == CLICKHOUSE
