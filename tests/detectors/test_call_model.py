"""The call model the call detectors share (forensics.detectors._calls, forensics.semantics.calls)
on real-shaped spans: double instrumentation collapsed, retries inside one client span,
legacy OpenTracing calls, uninstrumented dependencies named, duplicate rows ignored."""
from __future__ import annotations

import json

import pytest

import forensics
from forensics.detectors._calls import call_tables
from forensics.detectors._common import rows
from forensics.detectors.n_plus_one import detect_n_plus_one
from forensics.detectors.retry_storm import detect_retry_storm
from forensics.synth.builder import SpanBuilder

from conftest import BASE, build_retry_storm
from otel_shapes import flask_request, n_plus_one_orders, requests_call, sql_query, urllib3_retries


def _case(build, *, copies: int = 1, **kwargs) -> forensics.Case:
    b = SpanBuilder(BASE, seed=1, source_file="otel.jsonl")
    build(b, **kwargs)
    case = forensics.open_case()
    for _ in range(copies):
        b.insert(case)
    return case


def _targets(case: forensics.Case) -> list[tuple]:
    tables = call_tables(case)
    return [tuple(r.values()) for r in rows(case, f"""
SELECT k.target, k.target_operation, count(*) AS calls FROM {tables.calls} c JOIN {tables.keys} k USING (kid)
GROUP BY ALL ORDER BY ALL""")]


# -- double instrumentation (issue 16, item 4) ---------------------------------------------------
@pytest.mark.parametrize("double", [None, "siblings", "nested"])
def test_sqlalchemy_and_sqlite3_spans_of_one_query_count_once(double):
    """20 sequential queries through SQLAlchemy on sqlite, recorded once (sqlite3 only) or twice
    (SQLAlchemy + sqlite3, siblings nested in time or parent and child): always 20 sequential
    calls, an N+1 (not 40 overlapping ones)."""
    case = _case(n_plus_one_orders, requests=3, items=20, double=double)
    assert _targets(case) == [("shop.db (sqlite)", "SELECT id, sku, qty FROM order_lines WHERE order_id = ? "
                                                   "AND line_no = ?", 60)]
    (f,) = detect_n_plus_one(case).records()
    ev = f["evidence"]
    assert ev["shape"] == "sequential" and ev["calls_per_request"]["p50"] == 20 and ev["overlap_ratio_p50"] < 0.05
    assert f["operation"] == "GET /orders/<int:order_id>" and f["severity"] == "medium"  # ~55 ms per request


def test_parallel_calls_of_one_instrumentation_are_not_collapsed():
    """Two identical requests in flight at once from the same instrumentation (hedging), one
    inside the other in time: two calls, not a double recording."""
    def build(b: SpanBuilder) -> None:
        root = flask_request(b, "frontend", "/quote", "/quote", start_ms=0, duration_ms=60)
        requests_call(b, "frontend", root, "http://127.0.0.1:5002/price/7", start_ms=2, duration_ms=50)
        requests_call(b, "frontend", root, "http://127.0.0.1:5002/price/7", start_ms=3, duration_ms=20)
    assert _targets(_case(build)) == [("127.0.0.1", "GET /price/{id}", 2)]


# -- retries inside one client span (item 5) ---------------------------------------------------------
def test_urllib3_retries_inside_one_requests_span_one_trace():
    """One downloaded trace: one ``requests`` span holding three inventory server spans (503,
    503, 200). A retry storm in miniature: found at medium (one request is little evidence)."""
    case = _case(urllib3_retries, requests=1, failures=2)
    (f,) = detect_retry_storm(case).records()
    ev = f["evidence"]
    assert (f["service"], f["operation"], f["target"], f["target_operation"]) == (
        "frontend", "GET /checkout", "inventory", "GET /stock/<sku>")
    assert f["severity"] == "medium" and ev["evidence_cap"] == "medium"
    assert ev["retries_inside_client_spans"] is True and ev["retry_attributes"] is False
    assert (ev["retried_requests"], ev["calls"], ev["retries"]) == (1, 3, 2)
    assert ev["error_share_of_attempts"] == pytest.approx(2 / 3) and ev["backoff"] is False
    assert "retries GET /stock/<sku> on inventory in 1 of 1 GET /checkout requests" in f["summary"]


def test_urllib3_retries_in_many_requests_are_a_storm():
    case = _case(urllib3_retries, requests=40, failures=3, gap_s=3.0)
    (f,) = detect_retry_storm(case).records()
    assert f["severity"] == "critical" and f["evidence"]["evidence_cap"] is None
    assert f["evidence"]["attempts_per_retried_request"]["p50"] == 4


def test_one_retry_in_one_trace_is_low():
    case = _case(urllib3_retries, requests=1, failures=1)
    (f,) = detect_retry_storm(case).records()
    assert f["severity"] == "low" and f["evidence"]["retries"] == 1


def test_one_server_span_per_client_span_is_no_retry():
    case = _case(urllib3_retries, requests=30, failures=0)
    assert len(detect_retry_storm(case)) == 0


# -- uninstrumented dependencies (item 6) ---------------------------------------------------------
def test_uninstrumented_dependencies_are_named_not_unknown():
    """Calls whose callee is not traced: the target comes from the URL's host (old and new
    conventions), the address, or the database's name and system, before ``unknown``."""
    def build(b: SpanBuilder) -> None:
        root = flask_request(b, "frontend", "/home", "/home", start_ms=0, duration_ms=200)
        requests_call(b, "frontend", root, "https://api.github.com/repos/acme/shop/issues/42", start_ms=1,
                      duration_ms=30)
        requests_call(b, "frontend", root, "http://payments.internal:8443/v1/charges/ch_77", start_ms=40,
                      duration_ms=20, stable=True, method="POST")
        b.span("frontend", "SELECT shop", kind="client", parent=root, start_ms=70, duration_ms=3,
               attributes={"db.system": "postgresql", "db.name": "shop", "db.statement": "SELECT 1"})
        b.span("frontend", "GET", kind="client", parent=root, start_ms=80, duration_ms=3,
               attributes={"db.system": "redis", "db.statement": "GET session:91"})
        b.span("frontend", "orders publish", kind="producer", parent=root, start_ms=90, duration_ms=1,
               attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders"})
        b.span("frontend", "mystery", kind="client", parent=root, start_ms=95, duration_ms=1)
    assert [t[0] for t in _targets(_case(build))] == [
        "api.github.com", "payments.internal", "rabbitmq", "redis", "shop (postgresql)", "unknown"]


# -- legacy OpenTracing calls (item 3) --------------------------------------------------------------
def _jaeger_span(trace: str, sid: int, parent: int | None, name: str, start_us: int, dur_us: int, tags: dict) -> dict:
    def tag(k, v):
        kind = "bool" if isinstance(v, bool) else "int64" if isinstance(v, int) else "string"
        return {"key": k, "type": kind, "value": v}
    return {"traceID": trace, "spanID": f"{sid:016x}", "operationName": name, "flags": 1,
            "references": [] if parent is None else [{"refType": "CHILD_OF", "traceID": trace, "spanID": f"{parent:016x}"}],
            "startTime": start_us, "duration": dur_us, "tags": [tag(k, v) for k, v in tags.items()],
            "logs": [], "processID": "p1", "warnings": None}


def _opentracing_trace(path) -> None:
    """A Jaeger UI "Download JSON" trace of a Java service traced by jaeger-client: three
    handlers, each repeating one JDBC statement (9, 12, 14 times) whose spans carry no
    ``span.kind``: only OpenTracing-era tags, or the driver method as name."""
    trace = "5d8e1f0a2b3c4d5e"
    t0 = 1_771_408_800_000_000
    spans = [_jaeger_span(trace, 1, None, "GET /orders/{id}", t0, 400_000,
                          {"span.kind": "server", "http.method": "GET", "component": "spring-webmvc",
                           "http.url": "http://orders:8080/orders/7", "http.status_code": 200})]
    shapes = [  # (handler, repeats, name, tags)
        ("OrderRepository.findLines", 9, "HikariProxyPreparedStatement.executeQuery",
         {"component": "java-jdbc", "sql": "select * from order_line where order_id=? and line_no=?"}),
        ("CustomerRepository.findAddresses", 12, "query",
         {"component": "java-jdbc", "db.type": "sql", "db.instance": "customers",
          "db.statement": "SELECT street FROM address WHERE customer_id = 7 AND kind = 'ship'", "peer.hostname": "pg-1"}),
        ("StockClient.lookup", 14, "stock.lookup",
         {"component": "okhttp", "peer.service": "stock", "peer.hostname": "stock-svc", "peer.port": 8080}),
    ]
    sid, t = 2, t0 + 1_000
    for handler, repeats, name, tags in shapes:
        hid = sid
        spans.append(_jaeger_span(trace, hid, 1, handler, t, repeats * 8_500 + 500, {"component": "spring"}))
        sid += 1
        for i in range(repeats):
            spans.append(_jaeger_span(trace, sid, hid, name, t + 200 + i * 8_500, 7_800, tags))
            sid += 1
        t += repeats * 8_500 + 2_000
    doc = {"data": [{"traceID": trace, "spans": spans, "processes": {"p1": {
        "serviceName": "order-service", "tags": [{"key": "jaeger.version", "type": "string", "value": "Java-1.8.1"},
                                                 {"key": "hostname", "type": "string", "value": "orders-7c9f"}]}},
        "warnings": None}], "total": 0, "limit": 0, "offset": 0, "errors": None}
    path.write_text(json.dumps(doc))


def test_opentracing_spans_without_kind_are_calls(tmp_path):
    """Repeated JDBC statements and remote calls without ``span.kind`` (one downloaded Jaeger
    trace): each handler's repeats are an N+1, found at medium at most (one trace)."""
    path = tmp_path / "trace.json"
    _opentracing_trace(path)
    case = forensics.open_case()
    case.load(path, format="jaeger_json", strict=True)
    found = sorted(detect_n_plus_one(case).records(), key=lambda f: f["evidence"]["calls_per_request"]["p50"])
    assert [(f["operation"], f["target"], f["evidence"]["calls_per_request"]["p50"], f["severity"]) for f in found] == [
        ("OrderRepository.findLines", "jdbc", 9, "medium"),
        ("CustomerRepository.findAddresses", "pg-1", 12, "medium"),
        ("StockClient.lookup", "stock", 14, "medium")]
    assert found[1]["target_operation"] == "SELECT street FROM address WHERE customer_id = ? AND kind = ?"
    assert all(f["evidence"]["shape"] == "sequential" for f in found)


# -- duplicate span rows (item 8) -----------------------------------------------------------------
def _answers(found) -> list[tuple]:
    out = []
    for f in found.records():
        ev = {k: v for k, v in f["evidence"].items() if k not in ("source", "exemplar_trace_ids")}
        out.append((f["detector"], f["severity"], f["service"], f["operation"], f["target"], f["target_operation"],
                    round(f["score"], 6), f["summary"], json.dumps(ev, sort_keys=True, default=str)))
    return sorted(out)


@pytest.mark.parametrize("build, kwargs", [
    (n_plus_one_orders, {"requests": 4, "double": "siblings"}),
    (urllib3_retries, {"requests": 12, "failures": 2}),
    (build_retry_storm, {"minutes": 6, "per_minute": 25, "storm": (3, 5)}),
])
def test_duplicate_span_rows_change_no_answer(build, kwargs):
    """The same export loaded twice or three times (overlapping dumps): the call detectors give
    the same findings, near misses included."""
    once = _case(build, **kwargs)
    for copies in (2, 3):
        again = _case(build, copies=copies, **kwargs)
        for detect in (detect_n_plus_one, detect_retry_storm):
            assert _answers(detect(again, explain=True)) == _answers(detect(once, explain=True))
