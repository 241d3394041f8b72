"""Prometheus text exposition and OpenMetrics loader: real scrape shapes and their quirks."""
from __future__ import annotations

import math
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff

DATA = Path(__file__).parent.parent / "data" / "prometheus"
SCRAPE = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)
AT_TS = datetime(2026, 2, 18, 10, 10, tzinfo=timezone.utc)


def _load(name: str, **options):
    case = forensics.open_case()
    report = case.load(DATA / name, **options)
    return case, report


def _rows(case, where: str = "true"):
    return case.sql(
        "SELECT source_line, time, name, map_entries(labels) AS labels, value, type, unit, description, service, "
        f"exemplar_trace_id, exemplar_span_id, exemplar_value, exemplar_time FROM metrics WHERE {where} "
        "ORDER BY source_line").dicts()


def _labels(row) -> dict:
    return {e["key"]: e["value"] for e in row["labels"]}


def test_sniffed_as_prometheus_text():
    assert sniff(str(DATA / "node_exporter.prom")) == "prometheus_text"
    assert sniff(str(DATA / "openmetrics.txt")) == "prometheus_text"


def test_prometheus_text_types_values_and_escaping():
    case, report = _load("node_exporter.prom", scrape_time="2026-02-18T10:00:00Z")
    rows = {r["source_line"]: r for r in _rows(case)}
    assert report.rows_loaded == 17 and report.rows_rejected == 4
    q0 = rows[3]
    assert (q0["name"], _labels(q0), q0["value"], q0["type"], q0["time"]) == (
        "go_gc_duration_seconds", {"quantile": "0"}, 2.4573e-05, "summary_quantile", SCRAPE)
    assert q0["description"] == "A summary of the pause duration of garbage collection cycles."
    assert (rows[6]["type"], rows[6]["value"]) == ("summary_sum", 0.017402418)
    assert (rows[7]["type"], rows[7]["value"]) == ("summary_count", 372.0)
    c = rows[10]
    assert (c["name"], c["type"], c["value"], c["time"], c["service"]) == (
        "http_requests_total", "counter", 1027.0, AT_TS, "catalog-service")
    assert _labels(c) == {"method": "post", "code": "200", "job": "catalog-service"}
    assert rows[11]["value"] == 3.0  # several spaces before the value
    assert [rows[i]["type"] for i in (14, 16, 17, 18)] == ["histogram_bucket", "histogram_bucket", "histogram_sum", "histogram_count"]
    assert _labels(rows[16])["le"] == "+Inf" and rows[16]["service"] == "catalog-service"
    esc = rows[20]
    assert _labels(esc) == {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'}
    assert (esc["type"], esc["value"], esc["description"]) == ("untyped", 1.458255915e9, None)
    assert (rows[21]["name"], _labels(rows[21]), rows[21]["type"]) == ("metric_without_timestamp_and_labels", {}, "untyped")
    assert rows[24]["value"] == -math.inf and math.isnan(rows[25]["value"]) and rows[26]["value"] == math.inf
    assert rows[26]["time"] == datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc)  # -1000 ms
    assert rows[24]["type"] == "gauge"


def test_prometheus_text_rejects_with_line_numbers():
    case, _ = _load("node_exporter.prom", scrape_time=SCRAPE)
    rejects = case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY source_line").rows()
    assert [(r[0], r[1]) for r in rejects] == [(27, "unparsed_line"), (28, "bad_value"), (29, "bad_value"), (30, "bad_time")]
    assert "twelve" in rejects[1][2] and "a=\"2\"" in rejects[2][2]
    assert "17714094.5" in rejects[3][2] and "integer milliseconds" in rejects[3][2]


def test_openmetrics_exemplars_units_created_and_eof():
    case, report = _load("openmetrics.txt")
    rows = {r["source_line"]: r for r in _rows(case)}
    b = rows[4]
    assert (b["name"], b["type"], b["value"], b["time"], b["unit"], b["description"], b["service"]) == (
        "request_latency_seconds_bucket", "histogram_bucket", 3.0, AT_TS, "seconds", "Latency of /search.", "catalog-service")
    assert (b["exemplar_trace_id"], b["exemplar_span_id"], b["exemplar_value"], b["exemplar_time"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0.43,
        datetime(2026, 2, 18, 10, 9, 59, 123456, tzinfo=timezone.utc))
    assert rows[5]["exemplar_trace_id"] == "00000000000000000000000000abc123"  # traceID, upper case, padded
    assert rows[5]["exemplar_span_id"] is None
    assert rows[6]["exemplar_trace_id"] is None
    assert (rows[9]["name"], rows[9]["type"]) == ("request_latency_seconds_created", "created")
    assert (rows[12]["type"], rows[12]["time"]) == ("counter", datetime(2026, 2, 18, 10, 10, 0, 500000, tzinfo=timezone.utc))
    assert rows[12]["exemplar_trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert rows[13]["type"] == "created"
    assert [rows[i]["type"] for i in (15, 17, 19)] == ["info", "stateset", "untyped"]
    assert report.warnings == []
    assert case.sql("SELECT source_line, reason_code FROM rejects").rows() == [(21, "wrong_shape")]


def test_no_timestamp_uses_mtime_and_warns(tmp_path):
    path = tmp_path / "scrape.prom"
    path.write_text("# TYPE up gauge\nup{job=\"inventory-service\"} 1\n")
    os.utime(path, (1771408800, 1771408800))
    case = forensics.open_case()
    report = case.load(path)
    assert case.sql("SELECT time, service FROM metrics").rows() == [
        (datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc), "inventory-service")]
    assert len(report.warnings) == 1 and "modification time" in report.warnings[0]


def test_family_spanning_batches(tmp_path):
    lines = ["# HELP big_total many samples", "# TYPE big_total counter"]
    lines += [f'big_total{{i="{i}"}} {i} 1771409400000' for i in range(2000)]
    path = tmp_path / "big.prom"
    path.write_text("\n".join(lines) + "\n")
    case = forensics.open_case()
    case.load(path, batch_bytes=4096)
    assert case.sql("SELECT count(*), count(DISTINCT type), min(type), min(description) FROM metrics").rows() == [
        (2000, 1, "counter", "many samples")]


def test_unknown_type_line_rejected(tmp_path):
    path = tmp_path / "x.prom"
    path.write_text("# TYPE weird flux\nweird 1\n")
    case = forensics.open_case()
    case.load(path, format="prometheus_text", scrape_time=SCRAPE)
    assert case.sql("SELECT source_line, reason_code FROM rejects").rows() == [(1, "bad_value")]
    assert case.sql("SELECT type FROM metrics").rows() == [("untyped",)]


def test_strict_mode_names_file_and_line(tmp_path):
    shutil.copy(DATA / "node_exporter.prom", tmp_path / "n.prom")
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(tmp_path / "n.prom", strict=True, scrape_time=SCRAPE)
    assert "n.prom" in str(err.value) and "line 27" in str(err.value)
    assert case.sql("SELECT count(*) FROM metrics").scalar() == 0


def test_gzip_scrape_and_help_escapes(tmp_path):
    import gzip

    text = ('# HELP rpc_errors_total Errors by code.\\nSee \\\\docs\\\\rpc.\n# TYPE rpc_errors_total counter\n'
            'rpc_errors_total{code="UNAVAILABLE",service="inventory-service"} 1.5E+2 1771409400000\n')
    path = tmp_path / "scrape.prom.gz"
    path.write_bytes(gzip.compress(text.encode()))
    case = forensics.open_case()
    case.load(path)
    assert case.sql("SELECT name, value, type, description, service, time FROM metrics").rows() == [
        ("rpc_errors_total", 150.0, "counter", "Errors by code.\nSee \\docs\\rpc.", "inventory-service", AT_TS)]


def test_prometheus3_quoted_utf8_names():
    case, report = _load("utf8_names.txt")
    rows = {r["source_line"]: r for r in _rows(case)}
    b = rows[4]
    assert (b["name"], _labels(b), b["type"], b["unit"], b["description"], b["service"], b["exemplar_trace_id"]) == (
        "http.server.request.duration_bucket", {"http.route": "/search", "service.name": "catalog-service", "le": "0.5"},
        "histogram_bucket", "s", "Duration of HTTP server requests.", "catalog-service", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert (rows[5]["name"], rows[5]["type"], rows[5]["value"]) == ("http.server.request.duration_count", "histogram_count", 11.0)
    assert (rows[6]["name"], rows[6]["type"]) == ('say "hi"', "untyped")
    assert report.rows_rejected == 0


@pytest.mark.parametrize("tail", ["# EOF\n", ""], ids=["eof-past-head", "integer-seconds"])
def test_dialect_from_tail_eof_or_timestamp_magnitude(tmp_path, tail):
    """OpenMetrics markers may sit past the sniffed head; integer seconds are told from ms."""
    lines = "".join(f'up{{i="{i}"}} 1 1771409400\n' for i in range(3000))  # > 64 KiB, integer seconds
    path = tmp_path / "big.txt"
    path.write_text("# TYPE up gauge\n" + lines + tail)
    case = forensics.open_case()
    case.load(path, format="prometheus_text")
    assert case.sql("SELECT min(time), max(time) FROM metrics").rows() == [(AT_TS, AT_TS)]
    with pytest.raises(forensics.UsageError, match="dialect"):
        forensics.open_case().load(path, format="prometheus_text", dialect="prom")


def test_explicit_dialect_option(tmp_path):
    path = tmp_path / "s.prom"
    path.write_text("up 1 1771409400\n")
    case = forensics.open_case()
    case.load(path, format="prometheus_text", dialect="prometheus")
    assert case.sql("SELECT time FROM metrics").scalar() == datetime(1970, 1, 21, 12, 3, 29, 400000, tzinfo=timezone.utc)


def _escape(value: str) -> str:
    """Label-value escaping as client_golang / prometheus_client write it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def test_label_escaping_round_trips(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=12)

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(text, min_size=1, max_size=4))
    def check(values):
        path = tmp_path / "h.prom"
        body = "".join(f'm{{v="{_escape(v)}",i="{i}"}} {i} 1771409400000\n' for i, v in enumerate(values))
        path.write_text("# TYPE m gauge\n" + body, encoding="utf-8")
        case = forensics.open_case()
        case.load(path, format="prometheus_text")
        got = case.sql("SELECT labels['v'] FROM metrics ORDER BY value").rows()
        assert got == [(v,) for v in values]

    check()
