"""The shared call tables and helpers of forensics.detectors._common and forensics.semantics that the
call-based detectors build on: narrow cached tables, counts, source look-ups, operations
normalized once per distinct input."""
from __future__ import annotations

import pytest

import forensics
from forensics.errors import QueryError
from forensics.detectors import _common
from forensics.detectors._calls import (CALL_COLUMNS, cached_call_tables, call_counts_sql, call_rows_sql, call_tables,
                                        drop_calls_table)
from forensics.detectors._common import add_sources, rows, span_key_sql
from forensics.semantics import server_operation_key_sql, server_operation_sql, with_server_operation_sql
from forensics.synth.builder import SpanBuilder

from conftest import BASE, build_flagship, build_retry_storm


def _columns(case: forensics.Case, table: str) -> list[str]:
    return [r["column_name"] for r in rows(case, f"DESCRIBE {table}")]


def test_call_tables_are_narrow_cached_and_agree_with_call_rows(make_case):
    case = make_case(build_retry_storm, minutes=4, storm=(1, 3))
    tables = call_tables(case)
    cols = _columns(case, tables.calls)
    assert cols == list(CALL_COLUMNS) + ["is_retry", "gap_ms", "prev_max_end"]
    types = {r["column_name"]: r["column_type"] for r in rows(case, f"DESCRIBE {tables.calls}")}
    assert "VARCHAR" not in types.values()  # fixed-width only: names live in the keys table
    assert call_tables(case) == tables and cached_call_tables(case) == tables  # reused, not rebuilt
    # same calls and names as the wide rows of step 1 (nothing to collapse here)
    wide = rows(case, f"SELECT sid, service, version, target, target_operation FROM ({call_rows_sql(case)}) ORDER BY sid")
    narrow = rows(case, f"""
SELECT c.sid, k.service, k.version, k.target, k.target_operation FROM {tables.calls} c
JOIN {tables.keys} k USING (kid) ORDER BY sid""")
    assert narrow == wide and len(narrow) == 4 * 30 + 2 * 30 * 3
    assert rows(case, f"SELECT count(*) FILTER (WHERE is_retry) AS n FROM {tables.calls}")[0]["n"] == 2 * 30 * 3
    assert rows(case, f"SELECT count(*) AS n, count(DISTINCT kid) AS k FROM {tables.keys}")[0] == {"n": 1, "k": 1}


def test_call_tables_follow_new_spans(make_case):
    case = make_case(build_flagship, requests_per_version=3, items=6)
    tables = call_tables(case)
    n = rows(case, f"SELECT count(*) AS n FROM {tables.calls}")[0]["n"]
    assert n == 3 + 3 * 6
    b = SpanBuilder(BASE, seed=9)
    build_flagship(b, requests_per_version=1, items=6)
    b.insert(case)
    assert cached_call_tables(case) is None  # the spans changed
    again = call_tables(case)
    assert again != tables and rows(case, f"SELECT count(*) AS n FROM {again.calls}")[0]["n"] == n + 1 + 6
    drop_calls_table(case)
    assert cached_call_tables(case) is None


def test_call_counts(make_case):
    case = make_case(build_flagship, requests_per_version=4, items=7)
    counts = rows(case, f"SELECT * FROM ({call_counts_sql(case)}) ORDER BY psid, target, target_operation")
    assert sorted({(r["target"], r["target_operation"], r["calls"]) for r in counts}) == [
        ("inventory-service", "GET /inventory/{id}", 7), ("inventory-service", "POST /inventory/batch", 1)]


def test_call_tables_of_a_case_without_calls(empty_case):
    tables = call_tables(empty_case)
    assert rows(empty_case, f"SELECT count(*) AS n FROM {tables.calls}")[0]["n"] == 0
    assert rows(empty_case, call_counts_sql(empty_case)) == []


def test_add_sources_looks_up_file_and_line_by_span_key(make_case, monkeypatch):
    case = make_case(build_flagship, requests_per_version=2, items=3)
    spans = rows(case, f"SELECT {span_key_sql('s')} AS sid, source_line FROM spans s ORDER BY source_line LIMIT 3")
    monkeypatch.setattr(_common, "_SOURCES_BATCH", 2)  # more keys than one batch
    records = [{"source_sid": spans[0]["sid"], "slow_sid": spans[1]["sid"]},
               {"source_sid": spans[2]["sid"], "slow_sid": None},
               {"source_sid": 12345, "slow_sid": spans[0]["sid"]}]  # 12345: no such span
    out = add_sources(case, records, "source_sid", "slow_sid")
    assert out is records
    assert [(r["source"], r["slow_source"]) for r in records] == [
        (f"traces.json:{spans[0]['source_line']}", f"traces.json:{spans[1]['source_line']}"),
        (f"traces.json:{spans[2]['source_line']}", None),
        (None, f"traces.json:{spans[0]['source_line']}")]
    assert add_sources(case, []) == []


def test_operations_normalized_once_per_distinct_input_match_per_span():
    b = SpanBuilder(BASE)
    names = [("GET /search", "/search", "GET"), ("get /cart", None, "get"), ("GET", "/items/{id}", "GET"),
             ("GET /orders/12345", None, "GET"), ("POST /checkout", "/v2/checkout", "POST"), ("work", None, None)]
    for i, (name, route, method) in enumerate(names * 3):
        attrs = {k: v for k, v in (("http.route", route), ("http.request.method", method)) if v}
        b.span("svc", name, kind="server", start_ms=i, attributes=attrs)
    case = forensics.open_case()
    b.insert(case)
    query = f"SELECT span_id, name, http_route, http_method, {server_operation_key_sql('s')} AS opkey FROM spans s"
    got = {r["span_id"]: r["operation"] for r in rows(case, with_server_operation_sql(query))}
    want = {r["span_id"]: r["op"] for r in rows(case, f"SELECT span_id, {server_operation_sql('s')} AS op FROM spans s")}
    assert got == want and len(got) == 18
    assert sorted(set(got.values())) == ["GET /cart", "GET /items/{id}", "GET /orders/{id}", "GET /search",
                                        "POST /v2/checkout", "work"]


def test_with_server_operation_sql_needs_its_key_columns():
    case = forensics.open_case()
    with pytest.raises(QueryError, match="opkey"):
        case.sql(with_server_operation_sql("SELECT name FROM spans"))
