"""Notebook helpers (case.logs_for_trace / trace / red / exemplars) and one directory of every
metrics/events format next to JSON-lines logs and spans, joined with SQL."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import UsageError
from forensics.synth.builder import SpanBuilder

DATA = Path(__file__).parent / "data"
BASE = datetime(2026, 2, 18, 10, 10, tzinfo=timezone.utc)


def _spans(case) -> dict:
    """Two /search traces of catalog-service 1.8.0: one fast, one slow with an error and fan-out."""
    b = SpanBuilder(BASE, seed=7)
    fast = b.span("catalog-service", "GET /search", kind="server", start_ms=0, duration_ms=80, version="1.8.0",
                  attributes={"http.route": "/search", "http.response.status_code": 200})
    b.span("catalog-service", "GET /items", kind="client", parent=fast, start_ms=5, duration_ms=30,
           attributes={"peer.service": "inventory-service"})
    slow = b.span("catalog-service", "GET /search", kind="server", start_ms=20_000, duration_ms=2500, version="1.8.0",
                  status="error", attributes={"http.route": "/search", "http.response.status_code": 503})
    calls = [b.span("catalog-service", "GET /items", kind="client", parent=slow, start_ms=20_010 + 40 * i, duration_ms=35)
             for i in range(3)]
    inv = b.span("inventory-service", "GET /items", kind="server", parent=calls[0], start_ms=20_012, duration_ms=30,
                 version="2.3.1")
    late = b.span("catalog-service", "GET /search", kind="server", start_ms=75_000, duration_ms=400, version="1.7.9")
    b.insert(case)
    return {"fast": fast, "slow": slow, "calls": calls, "inv": inv, "late": late}


def _insert_logs(case, rows: list[tuple]) -> None:
    case.execute("INSERT INTO logs (time, service, severity, body, trace_id, span_id, source_file, source_line) "
                 "SELECT * FROM (VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, 'test', ?)"] * len(rows)) + ")",
                 [v for r in rows for v in r])


@pytest.fixture()
def case():
    c = forensics.open_case()
    refs = _spans(c)
    slow, calls = refs["slow"], refs["calls"]
    _insert_logs(c, [
        (BASE + timedelta(milliseconds=22_400), "catalog-service", "error", "timeout calling inventory-service",
         slow.trace_id, slow.span_id, 1),
        (BASE + timedelta(milliseconds=20_011), "catalog-service", "debug", "calling inventory", slow.trace_id, calls[0].span_id, 2),
        (BASE + timedelta(milliseconds=20_000), "gateway", "info", "request in", slow.trace_id, "00000000000000aa", 3),
        (BASE, "catalog-service", "info", "other trace", refs["fast"].trace_id, None, 4),
    ])
    c.refs = refs
    return c


def test_logs_for_trace_normalizes_id_and_orders_by_time(case):
    tid = case.refs["slow"].trace_id
    rows = case.logs_for_trace("0x" + tid.upper()).rows()
    assert [r[case.logs_for_trace(tid).columns.index("body")] for r in rows] == [
        "request in", "calling inventory", "timeout calling inventory-service"]
    with pytest.raises(UsageError, match="not 1-32 hex digits"):
        case.logs_for_trace("not-a-trace")


def test_trace_depth_order_and_logs(case):
    refs = case.refs
    rows = case.trace(refs["slow"].trace_id).dicts()
    assert [(r["service"], r["name"], r["depth"], r["log_count"]) for r in rows] == [
        ("catalog-service", "GET /search", 0, 2),  # its own log + the gateway log whose span is not in the case
        ("catalog-service", "GET /items", 1, 1),
        ("inventory-service", "GET /items", 2, 0),
        ("catalog-service", "GET /items", 1, 0),
        ("catalog-service", "GET /items", 1, 0),
    ]
    assert [entry["body"] for entry in rows[0]["logs"]] == ["request in", "timeout calling inventory-service"]
    assert rows[1]["logs"][0]["span_id"] == refs["calls"][0].span_id
    assert len(case.trace("ffffffffffffffffffffffffffffffff")) == 0


def test_red_per_minute_by_service_and_version(case):
    rows = case.red(by=["service", "service_version"], every="1m").dicts()
    assert [(r["time"], r["service"], r["service_version"], r["requests"], r["errors"]) for r in rows] == [
        (BASE, "catalog-service", "1.8.0", 2, 1),
        (BASE, "inventory-service", "2.3.1", 1, 0),
        (BASE + timedelta(minutes=1), "catalog-service", "1.7.9", 1, 0),
    ]
    first = rows[0]
    assert first["rate_per_s"] == pytest.approx(2 / 60) and first["error_rate"] == 0.5
    assert (first["p50_ms"], first["p99_ms"]) == (pytest.approx(1290.0), pytest.approx(80 + 0.99 * 2420))
    only = case.red(by=None, every=30, start="2026-02-18T10:10:10Z", end=BASE + timedelta(minutes=1)).rows()
    assert only == [(BASE, 2, 2 / 30, 1, 0.5, pytest.approx(1265.0), pytest.approx(2376.5), pytest.approx(2475.3))]


def test_red_rejects_unknown_columns_and_bad_every(case):
    with pytest.raises(UsageError, match="not a spans column"):
        case.red(by=["service; DROP TABLE spans"])
    with pytest.raises(UsageError, match="not a duration"):
        case.red(every="fortnightly")


def test_exemplars_join_metric_samples_to_traces(case, tmp_path):
    slow = case.refs["slow"]
    path = tmp_path / "scrape.prom"
    path.write_text(
        "# TYPE http_server_duration_seconds histogram\n"
        f'http_server_duration_seconds_bucket{{le="5",job="catalog-service"}} 2 1771409460 # '
        f'{{trace_id="{slow.trace_id}",span_id="{slow.span_id}"}} 2.5 1771409420.0\n'
        'http_server_duration_seconds_bucket{le="+Inf",job="catalog-service"} 2 1771409460 # '
        '{trace_id="deadbeef"} 9 1771409421\n'
        'http_server_duration_seconds_count{job="catalog-service"} 2 1771409460\n'
        "# EOF\n")
    case.load(path)
    rows = case.exemplars("http_server_duration_seconds").dicts()
    assert [(r["exemplar_trace_id"], r["trace_found"], r["trace_span_count"], r["root_name"], r["span_duration_ms"],
             r["span_status"]) for r in rows] == [
        (slow.trace_id, True, 5, "GET /search", 2500.0, "error"),
        ("000000000000000000000000deadbeef", False, None, None, None, None),
    ]
    assert rows[0]["trace_duration_ms"] == 2500.0
    assert len(case.exemplars("no_such_metric")) == 0


def _incident_dir(tmp_path: Path, refs: dict) -> Path:
    d = tmp_path / "incident"
    d.mkdir()
    for src in ("prometheus/openmetrics.txt", "prom_api/query_range.json", "metrics_csv/samples.csv",
                "k8s/events.json", "k8s/pods.json", "deploys/changes.csv"):
        shutil.copy(DATA / src, d / Path(src).name)
    slow, fast = refs["slow"], refs["fast"]
    lines = [
        {"ts": "2026-02-18T10:10:22.400Z", "level": "error", "logger": "search", "msg": "timeout calling inventory-service",
         "service": "catalog-service", "trace_id": slow.trace_id, "span_id": slow.span_id, "attempt": 2},
        {"ts": "2026-02-18T10:10:00.010Z", "level": "info", "logger": "search", "msg": "search ok",
         "service": "catalog-service", "trace_id": fast.trace_id, "span_id": fast.span_id},
    ]
    (d / "catalog.log.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return d


def test_one_directory_of_every_format_joins_logs_spans_and_deploys(tmp_path):
    """Metrics (Prometheus text, API JSON, CSV), events (k8s events, pods, deploy log) and a
    JSON-lines log in one directory; spans from SpanBuilder; logs ↔ spans ↔ deploys in SQL."""
    case = forensics.open_case()
    refs = _spans(case)
    d = _incident_dir(tmp_path, refs)
    report = case.load(d)
    formats = {Path(f.path).name: f.format for f in report.files}
    assert formats == {
        "openmetrics.txt": "prometheus_text", "query_range.json": "prom_api_json", "samples.csv": "metrics_csv",
        "events.json": "k8s_events", "pods.json": "k8s_pods", "changes.csv": "deploy_log", "catalog.log.jsonl": "json_logs"}
    tables = case.tables()
    assert tables["logs"] == 2 and tables["spans"] == 8 and tables["metrics"] > 0 and tables["events"] > 0
    joined = case.sql("""
        SELECT l.body, s.name, s.duration_ms, s.service_version,
               (SELECT max(e.time) FROM events e WHERE e.service = s.service AND e.kind = 'deploy' AND e.time <= s.start_time)
                 AS last_deploy,
               (SELECT arg_max(e.version, e.time) FROM events e WHERE e.service = s.service AND e.kind = 'deploy'
                  AND e.version IS NOT NULL AND e.time <= s.start_time) AS deployed_version
        FROM logs l JOIN spans s ON s.trace_id = l.trace_id AND s.span_id = l.span_id
        ORDER BY l.time""").rows()
    assert joined == [
        ("search ok", "GET /search", 80.0, "1.8.0", datetime(2026, 2, 18, 10, 5, 1, tzinfo=timezone.utc), "1.8.0"),
        ("timeout calling inventory-service", "GET /search", 2500.0, "1.8.0",
         datetime(2026, 2, 18, 10, 5, 1, tzinfo=timezone.utc), "1.8.0"),
    ]
    # the k8s rollout (10:05:01) and the deploy log entry (10:05:00) line up with the 1.8.0 traffic
    assert case.sql("SELECT format, time FROM events WHERE kind = 'deploy' AND service = 'catalog-service' "
                    "AND time < ? ORDER BY time", [BASE]).rows() == [
        ("deploy_log", datetime(2026, 2, 18, 10, 5, tzinfo=timezone.utc)),
        ("k8s_events", datetime(2026, 2, 18, 10, 5, 1, tzinfo=timezone.utc))]


def test_cli_load_then_sql_joins_logs_spans_and_deploys(tmp_path, capsys):
    from forensics.cli import main

    case_file = str(tmp_path / "incident.duckdb")
    with forensics.open_case(case_file) as case:
        refs = _spans(case)
    d = _incident_dir(tmp_path, refs)
    assert main(["load", str(d), "--case", case_file]) == 0
    capsys.readouterr()
    query = ("SELECT l.body, s.duration_ms, e.version, e.format FROM logs l "
             "JOIN spans s ON s.trace_id = l.trace_id AND s.span_id = l.span_id "
             "ASOF JOIN (SELECT * FROM events WHERE kind = 'deploy' AND version IS NOT NULL) e "
             "ON e.service = s.service AND s.start_time >= e.time ORDER BY l.time")
    assert main(["sql", case_file, query, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"body": "search ok", "duration_ms": 80.0, "version": "1.8.0", "format": "k8s_events"},
        {"body": "timeout calling inventory-service", "duration_ms": 2500.0, "version": "1.8.0", "format": "k8s_events"},
    ]


def test_trace_with_a_parent_cycle_terminates():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=3)
    root = b.span("a", "root", kind="server", duration_ms=10)
    child = b.span("a", "child", parent=root, start_ms=1, duration_ms=5)
    b.rows[0]["parent_span_id"] = child.span_id  # root <-> child: corrupt export
    b.insert(case)
    assert [(r["name"], r["depth"]) for r in case.trace(root.trace_id).dicts()] == [("root", None), ("child", None)]
