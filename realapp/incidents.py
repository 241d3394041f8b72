"""Scenarios of issue #16: one incident each (fan-out, SQL N+1, retries, untraced dependencies,
a failed trace, clock skew, OpenTracing-era spans). Registered in :data:`realapp.scenarios.SCENARIOS`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .capture import Capture
from .otlp import Span, by_trace, jaeger_ui_download, read_spans
from .scenarios import (children, keep, max_overlap, one, otlp_json_variant, scenario, servers, window,
                        write_json)
from .stack import Options, Stack, iso


# ------------------------------------------------------------------------------ issue 16
@scenario("single_trace_parallel_fanout")
def parallel_fanout(cap: Capture, work: Path) -> dict[str, Any]:
    """One request: fleet-service asks device-api about 52 devices at once (ThreadPoolExecutor)."""
    opt = Options(services=("api-gateway", "fleet-service", "device-api"),
                  knobs={"fleet-service": {"fleet_size": 52, "workers": 64}, "device-api": {"device_ms": 250.0}})
    with Stack(work, opt) as st:
        st.get("/api/fleets/fleet-7/status").raise_for_status()
    d = cap.variant("otlp", "OTLP/HTTP protobuf bodies as POSTed by each service, and the JSON logs")
    files = cap.traces(st, d)
    cap.logs(st, d)
    spans = read_spans(files)
    traces = by_trace(spans)
    assert len(traces) == 1, f"expected one trace, got {len(traces)}"
    trace_id = spans[0].trace_id
    parent = one(spans, service="fleet-service", kind="server")
    calls = children(spans, parent, "client")
    assert len(calls) == 52, len(calls)
    servers = [s for s in spans if s.service == "device-api" and s.kind == "server"]
    starts = sorted(c.start_ns for c in calls)
    write_json(cap.variant("jaeger", "the same trace as the Jaeger UI's Download JSON (/api/traces envelope)")
               / f"{trace_id}.json", jaeger_ui_download([spans]))
    otlp_json_variant(cap, files, "the same spans as the Collector's file exporter writes them (OTLP/JSON lines)")
    return {
        "issue": 16,
        "healthy": False,
        "description": "One downloaded trace: fleet-service's GET /fleets/<fid>/status asks device-api "
                       "GET /devices/<did> for each of 52 devices at once (ThreadPoolExecutor with 64 workers, "
                       "context carried by the threading instrumentation; each device answers after ~250 ms, so "
                       "that the calls overlap even when starting 52 threads takes a busy machine 100+ ms).",
        "incident": {"kind": "parallel_fanout", "service": "fleet-service", "operation": "GET /fleets/<fid>/status",
                     "target": "device-api", "target_operation": "GET /devices/<did>", "calls": 52,
                     "shape": "parallel"},
        "expected_finding": {"detector": "n_plus_one", "shape": "parallel", "service": "fleet-service",
                             "target": "device-api", "calls_per_request": 52,
                             "note": "one trace: the pattern is unambiguous (52 calls to one endpoint template "
                                     "under one parent, started within a few ms)"},
        "window": window(spans),
        "facts": {"trace_id": trace_id, "spans": len(spans), "parent_span_id": parent.span_id,
                  "client_spans_under_parent": len(calls), "device_api_server_spans": len(servers),
                  "max_concurrent_client_spans": max_overlap(calls),
                  "client_start_spread_ms": round((starts[-1] - starts[0]) / 1e6, 3),
                  "parent_duration_ms": round(parent.duration_ms, 3),
                  "client_p50_ms": round(sorted(c.duration_ms for c in calls)[26], 3),
                  "client_http_url_example": calls[0].attributes.get("http.url")},
    }


def _search_run(work: Path, stock_query: str, requests: int) -> tuple[Stack, list[str]]:
    opt = Options(services=("api-gateway", "catalog-service", "inventory-service", "pricing-service"),
                  knobs={"inventory-service": {"stock_query": stock_query}})
    queries = [f"lamp-{i}" for i in range(requests)]
    with Stack(work, opt) as st:
        for q in queries:
            st.get(f"/api/search?q={q}&limit=20").raise_for_status()
    return st, queries


def _db_pairs(spans: list[Span], server: Span) -> list[tuple[Span, Span]]:
    """(SQLAlchemy span, the sqlite3 span of the same statement) for each statement under
    ``server``. Both are children of the server span (the SQLAlchemy instrumentation does not
    make its span current): the sqlite3 span lies within the SQLAlchemy span's time."""
    kids = children(spans, server)
    outer = [s for s in kids if s.scope.endswith("sqlalchemy") and "db.statement" in s.attributes]
    inner = [s for s in kids if s.scope.endswith("sqlite3") and "db.statement" in s.attributes
             and not str(s.attributes["db.statement"]).startswith("PRAGMA")]
    pairs = []
    for o in outer:
        inside = [i for i in inner if o.start_ns <= i.start_ns and i.end_ns <= o.end_ns]
        assert len(inside) == 1, (o.name, len(inside))
        pairs.append((o, inside[0]))
    return sorted(pairs, key=lambda p: p[0].start_ns)


@scenario("sql_n_plus_one_double_instrumented")
def sql_n_plus_one(cap: Capture, work: Path) -> dict[str, Any]:
    """inventory-service looks stock up one sku at a time (20 SELECTs per request), each traced
    by both the SQLAlchemy and the sqlite3 instrumentation; baseline: one batched SELECT."""
    facts: dict[str, Any] = {}
    windows = {}
    for variant, mode, text in (
            ("n_plus_one", "per_item", "inventory-service v3.1.0 selects each of the 20 skus on its own"),
            ("batched", "batched", "baseline: one SELECT ... WHERE sku IN (...) per request")):
        st, queries = _search_run(work / variant, mode, 5)
        spans = keep(cap, st, variant, text)
        per_request = []
        for srv in servers(spans, "inventory-service"):
            pairs = _db_pairs(spans, srv)
            statements = {o.attributes.get("db.statement") for o, _ in pairs}
            same = all(o.attributes.get("db.statement") == i.attributes.get("db.statement") for o, i in pairs)
            sequential = all(a[0].end_ns <= b[0].start_ns for a, b in zip(pairs, pairs[1:]))
            per_request.append({"trace_id": srv.trace_id, "server_span_id": srv.span_id,
                                "statements": len(pairs), "db_spans": 2 * len(pairs),
                                "distinct_statements": len(statements), "same_statement_in_pair": same,
                                "sequential": sequential, "server_duration_ms": round(srv.duration_ms, 3),
                                "db_time_ms": round(sum(o.duration_ms for o, _ in pairs), 3)})
        facts[variant] = {"requests": len(per_request), "per_request": per_request,
                          "outer_span_name": pairs[0][0].name, "inner_span_name": pairs[0][1].name,
                          "statement": pairs[0][0].attributes.get("db.statement")}
        windows[variant] = window(spans)
    return {
        "issue": 16,
        "healthy": False,
        "description": "5 GET /api/search requests. api-gateway -> catalog-service -> inventory-service GET /stock "
                       "(20 skus). In variant n_plus_one, inventory-service runs one SELECT per sku (20 sequential "
                       "statements), and each is traced twice: a SQLAlchemy span and, inside its time, a sqlite3 span "
                       "with the same db.statement (opentelemetry-instrument enables both). Both are children of the "
                       "inventory server span (the SQLAlchemy instrumentation does not make its span current), so "
                       "the 40 spans look like overlapping calls. Variant batched is the baseline.",
        "incident": {"kind": "n_plus_one", "variant": "n_plus_one", "service": "inventory-service",
                     "operation": "GET /stock", "target": "sqlite", "calls_per_request": 20,
                     "shape": "sequential", "double_instrumented": True},
        "expected_finding": {"detector": "n_plus_one", "variant": "n_plus_one", "service": "inventory-service",
                             "operation": "GET /stock", "calls_per_request": 20,
                             "note": "20 statements, not 40: the sqlite3 span nested in the SQLAlchemy span of the "
                                     "same statement is the same call. Variant batched: no n_plus_one finding."},
        "window": windows,
        "facts": facts,
    }


@scenario("retries_in_client_span")
def retries_in_client_span(cap: Capture, work: Path) -> dict[str, Any]:
    """catalog-service's pricing session retries 503s with urllib3 Retry; pricing-service sheds
    the first 1-3 attempts of some requests: one requests client span, 2-4 server spans."""
    plan = [0, 1, 2, 3, 0, 1, 2, 3, 1, 2, 0, 3]
    facts: dict[str, Any] = {}
    windows = {}
    for variant, exporter, text in (("otlp", "otlp", "OTLP/HTTP protobuf bodies and JSON logs"),
                                    ("zipkin", "zipkin", "the same kind of run exported by the Zipkin JSON exporter "
                                                         "(Zipkin v2 bodies as POSTed)")):
        opt = Options(services=("api-gateway", "catalog-service", "inventory-service", "pricing-service"),
                      exporter=exporter, knobs={"catalog-service": {"retries": {"pricing-service": [3, 0.01]}}})
        with Stack(work / variant, opt) as st:
            for i, k in enumerate(plan):
                st.get(f"/api/products/SKU-{i + 10:04d}", baggage={"realapp.fail_first": str(k)} if k else None
                       ).raise_for_status()
        d = cap.variant(variant, text)
        if exporter == "zipkin":
            cap.traces(st, d, signal="zipkin")
            cap.logs(st, d)
            facts[variant] = {"requests": len(plan), "failed_first_attempts": plan}
            continue
        spans = read_spans(cap.traces(st, d))
        cap.logs(st, d)
        calls = []
        for cl in sorted((s for s in spans if s.service == "catalog-service" and s.kind == "client"
                          and "/prices/" in str(s.attributes.get("http.url"))), key=lambda s: s.start_ns):
            servers = sorted(children(spans, cl, "server"), key=lambda s: s.start_ns)
            calls.append({"trace_id": cl.trace_id, "client_span_id": cl.span_id, "server_spans": len(servers),
                          "server_status_codes": [s.attributes.get("http.status_code") for s in servers],
                          "client_status_code": cl.attributes.get("http.status_code"),
                          "client_duration_ms": round(cl.duration_ms, 3)})
        assert [c["server_spans"] for c in calls] == [k + 1 for k in plan], calls
        facts[variant] = {"requests": len(plan), "failed_first_attempts": plan, "calls": calls}
        windows[variant] = window(spans)
    return {
        "issue": 16,
        "healthy": False,
        "description": "12 GET /api/products/<sku> requests. catalog-service calls pricing-service GET /prices/<sku> "
                       "through a requests Session with urllib3 Retry(total=3, status_forcelist=502/503/504). "
                       "pricing-service answers 503 to the first k attempts of a trace (k from the W3C baggage entry "
                       "realapp.fail_first: 0,1,2,3,0,1,2,3,1,2,0,3). The requests instrumentation makes one client "
                       "span per call; urllib3 retries inside it, so one client span holds k+1 server spans.",
        "incident": {"kind": "retries", "service": "catalog-service", "operation": "GET /products/<sku>",
                     "target": "pricing-service", "target_operation": "GET /prices/<sku>",
                     "retried_calls": sum(1 for k in plan if k), "calls": len(plan)},
        "expected_finding": {"detector": "retry_storm", "service": "catalog-service", "target": "pricing-service",
                             "note": "more than one server span under one client span is a retry (transport "
                                     "retries hidden inside the client span); 9 of 12 calls retried, 2-4 attempts"},
        "window": windows,
        "facts": facts,
    }


@scenario("uninstrumented_dependency")
def uninstrumented_dependency(cap: Capture, work: Path) -> dict[str, Any]:
    """api-gateway calls two external APIs that are not traced: only its client spans show them,
    and only their URL says which is which. Three runs: the requests instrumentation's old
    conventions (the default), the stable ones, and both (OTEL_SEMCONV_STABILITY_OPT_IN)."""
    facts: dict[str, Any] = {}
    windows = {}
    for variant, semconv, text in (
            ("old_semconv", None, "instrumentations' default: old HTTP conventions (http.url, http.method, "
                                  "http.status_code)"),
            ("new_semconv", "http", "OTEL_SEMCONV_STABILITY_OPT_IN=http: stable conventions (url.full, "
                                    "http.request.method, http.response.status_code, server.address)"),
            ("dup_semconv", "http/dup", "OTEL_SEMCONV_STABILITY_OPT_IN=http/dup: both")):
        opt = Options(services=("api-gateway", "inventory-service", "pricing-service", "payments-provider", "geoip"),
                      semconv=semconv)
        with Stack(work / variant, opt) as st:
            for i in range(6):
                st.request("POST", "/api/checkout", json={"items": [{"sku": f"SKU-{i + 20:04d}", "qty": 1 + i % 3}],
                                                          "ip": f"198.51.100.{i + 7}"}).raise_for_status()
        spans = keep(cap, st, variant, text)
        ext = {}
        ids = {s.parent_span_id for s in spans}
        for host in ("api.payments.example", "geoip.example"):
            calls = [s for s in spans if s.kind == "client" and host in str(
                s.attributes.get("http.url") or s.attributes.get("url.full"))]
            ext[host] = {"client_spans": len(calls), "with_children": sum(1 for c in calls if c.span_id in ids),
                         "attribute_keys": sorted(calls[0].attributes), "span_name": calls[0].name}
        facts[variant] = {"requests": 6, "external": ext, "spans": len(spans)}
        windows[variant] = window(spans)
    return {
        "issue": 16,
        "healthy": False,
        "description": "6 POST /api/checkout requests. api-gateway calls pricing-service and inventory-service "
                       "(traced) and two external APIs that are not traced: payments-provider "
                       "(http://api.payments.example:PORT/v1/charges) and geoip (http://geoip.example:PORT/v1/lookup). "
                       "Their only trace is the gateway's requests client span; with the old conventions it carries "
                       "http.method, http.url, http.status_code and user_agent.original, nothing naming the peer.",
        "incident": {"kind": "uninstrumented_dependency", "service": "api-gateway", "operation": "POST /api/checkout",
                     "targets": ["api.payments.example", "geoip.example"]},
        "expected_finding": {"note": "the two external dependencies stay apart, named by the host of http.url / "
                                     "url.full (or server.address), never merged into one 'unknown' target"},
        "window": windows,
        "facts": facts,
    }


@scenario("single_failed_trace")
def single_failed_trace(cap: Capture, work: Path) -> dict[str, Any]:
    """One request failing deep down: pricing-service raises ZeroDivisionError for one sku; the
    500 propagates through catalog-service and api-gateway."""
    opt = Options(services=("api-gateway", "catalog-service", "inventory-service", "pricing-service"),
                  knobs={"pricing-service": {"poison_sku": "SKU-0666"}})
    with Stack(work, opt) as st:
        r = st.get("/api/products/SKU-0666")
        assert r.status_code == 500, r.status_code
    d = cap.variant("otlp", "OTLP/HTTP protobuf bodies and JSON logs (with the exceptions' tracebacks)")
    files = cap.traces(st, d)
    cap.logs(st, d)
    spans = read_spans(files)
    assert len(by_trace(spans)) == 1
    write_json(cap.variant("jaeger", "the same trace as the Jaeger UI's Download JSON") / f"{spans[0].trace_id}.json",
               jaeger_ui_download([spans]))
    origin = one(spans, service="pricing-service", kind="server")
    errors = sorted((s for s in spans if s.status == 2), key=lambda s: s.start_ns)
    exc = [(s.service, s.name, a.get("exception.type")) for s in spans for _, n, a in s.events if n == "exception"]
    return {
        "issue": 16,
        "healthy": False,
        "description": "One GET /api/products/SKU-0666 request. pricing-service's discount rule for SKU-0666 divides "
                       "by zero: ZeroDivisionError, 500. catalog-service's client gets the 500, raise_for_status() "
                       "raises HTTPError, catalog answers 500; api-gateway does the same. Error status and an "
                       "exception event on each server span, error status on each client span that got a 500.",
        "incident": {"kind": "error", "service": "pricing-service", "operation": "GET /prices/<sku>",
                     "exception": "ZeroDivisionError", "propagated_to": ["catalog-service", "api-gateway"]},
        "expected_finding": {"detector": "error_origin", "service": "pricing-service", "operation": "GET /prices/<sku>",
                             "note": "one trace: where the error starts (pricing-service) and that it propagates "
                                     "(500 at catalog-service and api-gateway)"},
        "window": window(spans),
        "facts": {"trace_id": origin.trace_id, "spans": len(spans), "origin_span_id": origin.span_id,
                  "error_spans": [{"service": s.service, "name": s.name, "kind": s.kind,
                                   "http_status_code": s.attributes.get("http.status_code")} for s in errors],
                  "exception_events": [list(e) for e in exc]},
    }


@scenario("clock_skew_pair")
def clock_skew_pair(cap: Capture, work: Path) -> dict[str, Any]:
    """pricing-service's host clock is 66 ms ahead: its server spans (and log lines) start 66 ms
    later than its callers' clocks say they could."""
    offset = 66.0
    facts: dict[str, Any] = {}
    windows = {}
    for variant, n, text in (("one_trace", 1, "one trace: one catalog-service -> pricing-service pair"),
                             ("few_traces", 5, "5 traces: 5 catalog-service -> pricing-service pairs")):
        opt = Options(services=("api-gateway", "catalog-service", "inventory-service", "pricing-service"),
                      clock_offsets_ms={"pricing-service": offset})
        with Stack(work / variant, opt) as st:
            for i in range(n):
                st.get(f"/api/products/SKU-{i + 40:04d}").raise_for_status()
        spans = keep(cap, st, variant, text)
        pairs = []
        for srv in servers(spans, "pricing-service"):
            cl = one(spans, span_id=srv.parent_span_id)
            before = (srv.start_ns - cl.start_ns) / 1e6
            after = (cl.end_ns - srv.end_ns) / 1e6
            pairs.append({"trace_id": srv.trace_id, "client_span_id": cl.span_id, "server_span_id": srv.span_id,
                          "client_duration_ms": round(cl.duration_ms, 3), "server_duration_ms": round(srv.duration_ms, 3),
                          "server_start_minus_client_start_ms": round(before, 3),
                          "client_end_minus_server_end_ms": round(after, 3),
                          "skew_estimate_ms": round((before - after) / 2, 3)})
        facts[variant] = {"pairs": pairs, "traces": len(by_trace(spans))}
        windows[variant] = window(spans)
    return {
        "issue": 16,
        "healthy": False,
        "description": f"pricing-service runs on a host whose clock is {offset:g} ms ahead (time.time and the SDK's "
                       "time_ns shifted in that process only; its JSON log times too). catalog-service's client span "
                       "to GET /prices/<sku> lasts a few ms, and pricing-service's server span under it starts "
                       f"~{offset:g} ms after the client span started, ending after the client span ended.",
        "incident": {"kind": "clock_skew", "service": "pricing-service", "offset_ms": offset,
                     "pair": ["catalog-service", "pricing-service"]},
        "expected_finding": {"detector": "clock_skew", "service": "pricing-service", "offset_ms": offset,
                             "note": "one pair in one trace is unambiguous (server span outside its client span by "
                                     "far more than timestamp resolution); skew_estimate_ms is the NTP-style "
                                     "midpoint estimate ((s.start-c.start) - (c.end-s.end)) / 2"},
        "window": windows,
        "facts": facts,
    }


@scenario("opentracing_legacy")
def opentracing_legacy(cap: Capture, work: Path) -> dict[str, Any]:
    """OpenTracing-era spans from the real jaeger-client: JDBC spans without span.kind, repeated
    9, 12 and 14 times under one parent, as three Jaeger UI downloads."""
    from . import legacy

    batches, _ = legacy.run()
    d = cap.variant("jaeger", "three Jaeger UI downloads (one trace each) of jaeger-client (Python) spans")
    roots = [s for s in batches[0].spans if not s.parentSpanId]
    traces = []
    for root, repeats in zip(sorted(roots, key=lambda s: s.startTime), legacy.REPEATS):
        t = legacy.ui_trace(batches, root.traceIdLow)
        write_json(d / f"{t['traceID']}.json", {"data": [t], "total": 0, "limit": 0, "offset": 0, "errors": None})
        parents = {s["spanID"]: s for s in t["spans"]}
        jdbc = [s for s in t["spans"] if s["operationName"] == "HikariProxyPreparedStatement.executeQuery"]
        parent_ids = {s["references"][0]["spanID"] for s in jdbc}
        assert len(jdbc) == repeats and len(parent_ids) == 1, (len(jdbc), parent_ids)
        traces.append({"trace_id": t["traceID"], "spans": len(t["spans"]), "execute_query_spans": len(jdbc),
                       "parent_span_id": parent_ids.pop(), "parent_operation": "OrderRepository.findLines",
                       "server_span_operation": "GET /orders/{id}",
                       "sequential": all(a["startTime"] + a["duration"] <= b["startTime"]
                                         for a, b in zip(jdbc, jdbc[1:])),
                       "services": sorted({t["processes"][s["processID"]]["serviceName"] for s in t["spans"]})})
        assert parents
    all_spans = [s for b in batches for s in b.spans]
    t0 = min(s.startTime for s in all_spans)
    t1 = max(s.startTime + s.duration for s in all_spans)
    return {
        "issue": 16,
        "healthy": False,
        "produced_by": "jaeger-client (Python) 4.8.0 Tracers with a const sampler; its own Thrift conversion "
                       "(thrift.make_process / make_jaeger_batch, what its reporter sends to the agent); rendered as "
                       "the Jaeger query service's /api/traces JSON by realapp/legacy.py (no Jaeger backend ran). "
                       "The JDBC tag vocabulary follows a Java opentracing-jdbc export (issue #16); the process tags "
                       "are jaeger-client's own (jaeger.version Python-4.8.0, hostname, ip).",
        "description": "Three GET /orders/{id} requests. web-frontend (span.kind server, then client) calls "
                       "orders-service over HTTP (uber-trace-id header). orders-service's server span has an "
                       "OrderRepository.findLines child holding 9, 12 and 14 sequential "
                       "HikariProxyPreparedStatement.executeQuery spans (no span.kind; component=java-jdbc, db.type=sql, "
                       "db.instance=orders, db.statement, db.user, peer.service=mysql, peer.hostname, peer.address, "
                       "peer.port), and an AuditLog.insert span with the older tags sql and database. "
                       "64-bit trace ids, flags 1, sampler.type/sampler.param on the root spans.",
        "incident": {"kind": "n_plus_one", "service": "orders-service", "operation": "OrderRepository.findLines",
                     "target": "mysql", "target_operation": "HikariProxyPreparedStatement.executeQuery",
                     "calls_per_request": list(legacy.REPEATS), "shape": "sequential"},
        "expected_finding": {"detector": "n_plus_one", "service": "orders-service", "target": "mysql",
                             "note": "a repeated database operation under one parent is an N+1 candidate whatever "
                                     "its kind tag: recognise it from db.type/db.statement/component=java-jdbc/"
                                     "peer.service"},
        "window": {"start": iso(t0 * 1000), "end": iso(t1 * 1000)},
        "facts": {"traces": traces, "statement": legacy.STATEMENT},
    }
