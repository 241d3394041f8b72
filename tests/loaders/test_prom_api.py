"""Prometheus HTTP API (query / query_range) JSON loader."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff

DATA = Path(__file__).parent.parent / "data" / "prom_api"


def _t(sec: int, us: int = 0) -> datetime:
    return datetime(2026, 2, 18, 10, 10, sec, us, tzinfo=timezone.utc)


def _rows(case):
    return [(r["source_line"], r["time"], r["name"], {e["key"]: e["value"] for e in r["labels"]}, r["value"], r["type"], r["service"])
            for r in case.sql("SELECT source_line, time, name, map_entries(labels) AS labels, value, type, service "
                              "FROM metrics ORDER BY source_line, name, service, time").dicts()]


@pytest.mark.parametrize("name", ["query_range.json", "responses.jsonl", "promtool.json"])
def test_sniffed(name):
    assert sniff(str(DATA / name)) == "prom_api_json"


def test_matrix_float_seconds_string_values_and_warnings():
    case = forensics.open_case()
    report = case.load(DATA / "query_range.json")
    rows = _rows(case)
    labels = {"job": "catalog-service", "instance": "10.0.0.7:8080", "code": "500"}
    assert rows[:4] == [
        (1, _t(0), "http_requests_total", labels, 3.0, "untyped", "catalog-service"),
        (1, _t(15, 500000), "http_requests_total", labels, 7.0, "untyped", "catalog-service"),
        (1, _t(30, 123000), "http_requests_total", labels, rows[2][4], "untyped", "catalog-service"),
        (1, _t(45), "http_requests_total", labels, math.inf, "untyped", "catalog-service"),
    ]
    assert math.isnan(rows[2][4])
    # no __name__ and no query option: "unnamed"
    assert rows[4:] == [(1, _t(0), "unnamed", {"job": "inventory-service"}, 0.25, "untyped", "inventory-service"),
                        (1, _t(15), "unnamed", {"job": "inventory-service"}, 0.001, "untyped", "inventory-service")]
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects").rows() == [
        (1, "bad_value", 'bad sample value abc (expected a number as text, "NaN", "+Inf" or "-Inf")')]
    assert report.warnings[0].endswith('Prometheus returned warning: PromQL info: metric might not be a counter, '
                                       'name does not end in _total/_sum/_count/_bucket: "x"')


def test_json_lines_vector_scalar_error_string_empty_histogram():
    case = forensics.open_case()
    report = case.load(DATA / "responses.jsonl", query="sum(rate(x[5m]))")
    assert _rows(case) == [
        (1, _t(0, 781000), "up", {"job": "catalog-service"}, 1.0, "untyped", "catalog-service"),
        (1, _t(0, 781000), "up", {"job": "search"}, -math.inf, "untyped", "search"),
        (3, _t(0, 500000), "sum(rate(x[5m]))", {}, 42.0, "untyped", None),
        (6, _t(0), "rpc_duration_seconds_count", {"service": "checkout"}, 12.0, "histogram_count", "checkout"),
        (6, _t(0), "rpc_duration_seconds_sum", {"service": "checkout"}, 3.5, "histogram_sum", "checkout"),
    ]
    rejects = case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY source_line").rows()
    assert [(r[0], r[1]) for r in rejects] == [(2, "bad_value"), (4, "bad_value"), (7, "invalid_json")]
    assert rejects[0][2] == 'the query failed: bad_data: invalid parameter "query": 1:5: parse error: unexpected end of input'
    assert "string result" in rejects[1][2] and "hello" in rejects[1][2]
    assert any("line 5: the query returned an empty result" in w for w in report.warnings)
    assert report.records_read == report.rows_loaded + report.rows_rejected == 8


def test_promtool_bare_array():
    case = forensics.open_case()
    case.load(DATA / "promtool.json")
    assert [r[1:5] for r in _rows(case)] == [
        (_t(0), "process_resident_memory_bytes", {"job": "inventory-service"}, 1.2e8),
        (datetime(2026, 2, 18, 10, 11, tzinfo=timezone.utc), "process_resident_memory_bytes", {"job": "inventory-service"}, 1.3e8)]


def test_strict_mode_names_file_and_line(tmp_path):
    path = tmp_path / "err.json"
    path.write_text('{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}')
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(path, strict=True)
    assert "err.json" in str(err.value) and "line 1" in str(err.value) and "timeout" in str(err.value)


def test_truncated_pretty_document_is_one_reject(tmp_path):
    text = (DATA / "query_range.json").read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    case = forensics.open_case()
    report = case.load(path, format="prom_api_json")
    assert (report.rows_loaded, report.rows_rejected) == (0, 1)
    assert case.sql("SELECT source_line, reason_code FROM rejects").rows() == [(1, "invalid_json")]


@pytest.mark.parametrize("name", ["thanos_warning.json", "status_warning.jsonl"])
def test_status_warning_loads_with_the_warning_recorded(name):
    assert sniff(str(DATA / name)) == "prom_api_json"
    case = forensics.open_case()
    report = case.load(DATA / name)
    assert case.sql("SELECT count(*) FROM rejects").scalar() == 0
    if name == "thanos_warning.json":
        assert [(r[2], r[3]["job"], r[4]) for r in _rows(case)] == [("up", "catalog-service", 1.0),
                                                                     ("up", "inventory-service", 0.0)]
        assert report.warnings == [f"{DATA / name}: line 1: Prometheus returned warning: partial response: store "
                                   "10.0.4.2:10901 did not answer in time (deadline exceeded)"]
    else:
        assert [(r[1], r[4]) for r in _rows(case)] == [(datetime(2026, 2, 18, 10, 10, tzinfo=timezone.utc), 42.0)]
        assert report.warnings == [f'{DATA / name}: line 1: Prometheus answered status "warning" (a partial result?) '
                                   "without saying why"]


def test_an_unknown_status_is_still_rejected(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"status": "partial", "data": {"resultType": "vector", "result": []}}')
    case = forensics.open_case()
    case.load(path, format="prom_api_json")
    assert case.sql("SELECT reason_code, reason FROM rejects").rows() == [
        ("wrong_shape", 'expected {"status": "success", "data": {...}}, found status partial')]
