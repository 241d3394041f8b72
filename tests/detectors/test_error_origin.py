"""error_origin: the first failing span of each trace, propagated or masked."""
from datetime import datetime, timezone

import pytest

import forensics
from forensics.detectors.error_origin import detect_error_origin, origins_sql
from forensics.synth.builder import SpanBuilder
from tests.realapp.helpers import loaded, truth

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def _checkout(b: SpanBuilder, i: int, mode: str) -> str:
    """One checkout trace; mode: ok | bank_down (propagated) | recs_down (masked by the root)."""
    t = i * 100
    bank_err = mode == "bank_down"
    root = b.span("api", "POST /checkout", kind="server", start_ms=t, duration_ms=90,
                  status="error" if bank_err else "unset",
                  attributes={"http.route": "/checkout", "http.request.method": "POST",
                              "http.response.status_code": 502 if bank_err else 200})
    pay = b.span("api", "POST", kind="client", parent=root, start_ms=t + 5, duration_ms=60,
                 status="error" if bank_err else "unset",
                 attributes={"peer.service": "payment-service", "http.request.method": "POST",
                             "url.template": "/charge"})
    charge = b.span("payment-service", "POST /charge", kind="server", parent=pay, start_ms=t + 6,
                    duration_ms=58, version="2.4.1", status="error" if bank_err else "unset",
                    attributes={"http.response.status_code": 500 if bank_err else 200})
    b.span("payment-service", "POST", kind="client", parent=charge, start_ms=t + 10 + (i % 3),
           duration_ms=40, version="2.4.1", status="error" if bank_err else "unset",
           status_message=f"connection refused by bank-gw-{i % 4}:443 after {100 + i} ms" if bank_err else None,
           attributes={"peer.service": "bank", "http.request.method": "POST", "url.template": "/v1/auth"})
    recs_err = mode == "recs_down"
    b.span("api", "GET", kind="client", parent=root, start_ms=t + 70, duration_ms=15,
           status="error" if recs_err else "unset",
           status_message="deadline exceeded" if recs_err else None,
           attributes={"peer.service": "recommendations", "http.request.method": "GET",
                       "url.template": "/recs"})
    return root.trace_id


def _case(modes):
    b = SpanBuilder(T0, seed=3)
    ids = {m: [] for m in set(modes)}
    for i, m in enumerate(modes):
        ids[m].append(_checkout(b, i, m))
    case = forensics.open_case()
    b.insert(case)
    return case, ids


def test_propagated_and_masked_origins():
    case, ids = _case(["bank_down"] * 20 + ["recs_down"] * 10 + ["ok"] * 70)
    f = {r["target"]: r for r in detect_error_origin(case).records()}
    assert set(f) == {"bank", "recommendations"}
    bank = f["bank"]
    assert (bank["service"], bank["operation"], bank["version"]) == ("payment-service", "POST /v1/auth", "2.4.1")
    assert bank["severity"] == "high" and bank["score"] == pytest.approx(0.2)
    ev = bank["evidence"]
    assert ev["template"] == "connection refused by bank-gw-?:? after ? ms"
    assert (ev["origin_traces"], ev["failing_traces"], ev["propagated_traces"], ev["masked_traces"]) == (20, 30, 20, 0)
    assert set(ev["exemplar_trace_ids"]) <= set(ids["bank_down"]) and ev["source"].startswith("builder:")
    assert "propagates to the root in 100%" in bank["summary"]
    recs = f["recommendations"]["evidence"]
    assert recs["masked_share"] == 1.0 and recs["masked_by"] == "api POST /checkout"
    assert "masked in 100%" in f["recommendations"]["summary"]


def test_clean_traces_and_thresholds():
    case, _ = _case(["ok"] * 30)
    assert len(detect_error_origin(case, explain=True)) == 0
    case, _ = _case(["bank_down"] * 2 + ["ok"] * 300)
    (two,) = detect_error_origin(case).records()
    assert two["severity"] == "low"  # 2 < min_traces_medium: anecdotal, whatever the rate
    assert len(detect_error_origin(case, min_traces=3)) == 0
    near = detect_error_origin(case, min_traces=3, explain=True).records()
    assert [r["evidence"]["failed"] for r in near] == [["min_traces"]]
    assert near[0]["severity"] == "info"
    case, _ = _case(["bank_down"] * 3 + ["ok"] * 27)
    assert detect_error_origin(case).records()[0]["severity"] == "high"  # 3 of 30 traces fail there


def _flask_failed_trace(b: SpanBuilder, t: float = 0.0) -> tuple[str, str]:
    """The realapp's single failed trace as the OpenTelemetry Python SDK (Flask, requests, sqlite3
    instrumentations) exported it: pricing-service divides by zero and answers 500; catalog-service
    and api-gateway turn the 500 into their own 500 (raise_for_status); inventory-service answered
    fine. Status messages as the loaders read them from the exception events."""
    http = lambda route, code: {"http.method": "GET", "http.route": route, "http.status_code": code,  # noqa: E731
                                "http.scheme": "http", "http.flavor": "1.1"}
    get = lambda url, code: {"http.method": "GET", "http.url": url, "http.status_code": code}  # noqa: E731
    gw = b.span("api-gateway", "GET /api/products/<sku>", kind="server", start_ms=t, duration_ms=331.177,
                status="error", status_message="HTTPError: 500 Server Error: INTERNAL SERVER ERROR for url: "
                "http://catalog-service:38429/products/SKU-0666", attributes=http("/api/products/<sku>", 500))
    c1 = b.span("api-gateway", "GET", kind="client", parent=gw, start_ms=t + 4.456, duration_ms=323.855, status="error",
                attributes=get("http://catalog-service:38429/products/SKU-0666", 500))
    cat = b.span("catalog-service", "GET /products/<sku>", kind="server", parent=c1, start_ms=t + 20.381,
                 duration_ms=304.086, status="error",
                 status_message="HTTPError: 500 Server Error: INTERNAL SERVER ERROR for url: "
                 "http://pricing-service:42121/prices/SKU-0666", attributes=http("/products/<sku>", 500))
    c2 = b.span("catalog-service", "GET", kind="client", parent=cat, start_ms=t + 29.66, duration_ms=86.211,
                attributes=get("http://inventory-service:40213/stock/SKU-0666", 200))
    inv = b.span("inventory-service", "GET /stock/<sku>", kind="server", parent=c2, start_ms=t + 48.786,
                 duration_ms=44.043, attributes=http("/stock/<sku>", 200))
    b.span("inventory-service", "SELECT inventory.db", kind="client", parent=inv, start_ms=t + 67.108,
           duration_ms=24.875, attributes={"db.system": "sqlite", "db.name": "inventory.db",
                                           "db.statement": "SELECT qty FROM stock WHERE sku = ?"})
    c3 = b.span("catalog-service", "GET", kind="client", parent=cat, start_ms=t + 116.958, duration_ms=120.139,
                status="error", attributes=get("http://pricing-service:42121/prices/SKU-0666", 500))
    b.span("pricing-service", "GET /prices/<sku>", kind="server", parent=c3, start_ms=t + 145.095,
           duration_ms=17.141, status="error", status_message="ZeroDivisionError: float division by zero",
           attributes=http("/prices/<sku>", 500))
    return gw.trace_id, b.rows[-1]["span_id"]


def test_one_failed_trace_gives_its_origin():
    """#16: one downloaded trace that failed: where it starts failing and that it propagates
    (Sentry opens an issue on one event); low severity, one trace being anecdotal."""
    b = SpanBuilder(T0, seed=8, source_file="5cea34caefd4087911070e926fc618b2.json")
    trace, origin = _flask_failed_trace(b)
    case = forensics.open_case()
    b.insert(case)
    (r,) = detect_error_origin(case).records()
    assert (r["service"], r["operation"], r["severity"]) == ("pricing-service", "GET /prices/<sku>", "low")
    ev = r["evidence"]
    assert (ev["failing_traces"], ev["origin_traces"], ev["propagated_traces"], ev["masked_traces"]) == (1, 1, 1, 0)
    assert ev["exemplar_trace_ids"] == [trace] and ev["template"] == "ZeroDivisionError: float division by zero"
    assert r["summary"] == ('The failing trace starts failing at pricing-service GET /prices/<sku> with '
                            '"ZeroDivisionError: float division by zero"; it propagates to the root.')


def test_missing_parent_and_single_error_span():
    b = SpanBuilder(T0)
    b.span("svc", "work", kind="internal", status="error", status_message="boom")
    b.rows[-1]["parent_span_id"] = "1" * 16  # parent never exported: the walk stops there
    b.span("svc", "alone", kind="server", status="error", trace_id="c" * 32)
    case = forensics.open_case()
    b.insert(case)
    r = {x["operation"]: x for x in detect_error_origin(case, min_traces=1).records()}
    assert r["work"]["evidence"]["propagated_traces"] == 0 and r["work"]["evidence"]["masked_traces"] == 0
    assert r["alone"]["evidence"]["template"] == "(no message)"
    assert r["alone"]["evidence"]["propagated_traces"] == 1


def test_empty_case():
    assert len(detect_error_origin(forensics.open_case())) == 0


@pytest.mark.slow
def test_synth_pool_timeouts_originate_in_catalog_service(synth_case):
    case, truth = synth_case("bimodal_latency")
    message = truth.expected[0]["numbers"]["error_message"]
    top = detect_error_origin(case).records()[0]
    assert top["service"] == "catalog-service" and top["evidence"]["share"] > 0.5
    assert top["evidence"]["template"] == message.replace("1000", "?")
    assert top["evidence"]["propagated_traces"] == top["evidence"]["origin_traces"]


@pytest.mark.slow
def test_synth_clean_scenario_has_nothing_above_low(synth_case):
    case, _ = synth_case("clean")
    assert len(detect_error_origin(case).at_least("medium")) == 0


def test_deep_origin_masked_by_nearest_succeeding_ancestor():
    """root (ok) <- gw (ok) <- svc (error) <- load (error) <- SELECT (error, origin): the walk goes
    all the way up (4 hops) and names the nearest ancestor that succeeded (gw, 3 hops up)."""
    b = SpanBuilder(T0, seed=5)
    for i in range(6):
        t = i * 100
        root = b.span("edge", "GET /page", kind="server", start_ms=t, duration_ms=90,
                      attributes={"http.route": "/page", "http.request.method": "GET"})
        gw = b.span("gateway", "proxy", kind="internal", parent=root, start_ms=t + 1, duration_ms=80)
        svc = b.span("orders", "GET /orders", kind="server", parent=gw, start_ms=t + 2, duration_ms=70,
                     status="error", attributes={"http.route": "/orders", "http.request.method": "GET"})
        load = b.span("orders", "load", kind="internal", parent=svc, start_ms=t + 3, duration_ms=60, status="error")
        b.span("orders", "SELECT", kind="client", parent=load, start_ms=t + 4, duration_ms=50, status="error",
               status_message=f"timeout after {1000 + i} ms", attributes={"db.system": "postgresql"})
    case = forensics.open_case()
    b.insert(case)
    (r,) = detect_error_origin(case).records()
    assert (r["service"], r["target"]) == ("orders", "postgresql")
    ev = r["evidence"]
    assert ev["template"] == "timeout after ? ms" and ev["origin_traces"] == 6
    assert ev["masked_traces"] == 6 and ev["masked_by"] == "gateway proxy" and ev["propagated_traces"] == 0
    walks = case.sql(f"SELECT hops, masked, reached_root FROM ({origins_sql()})").rows()
    assert walks == [(4, True, True)] * 6
    short = case.sql(f"SELECT hops, masked, masked_by, reached_root FROM ({origins_sql(max_depth=2)})").rows()
    assert short == [(2, False, None, False)] * 6


@pytest.mark.parametrize("variant", ["otlp", "jaeger"])
def test_realapp_single_failed_trace(variant):
    """The real OpenTelemetry SDK capture of one failed request (OTLP bodies, and the Jaeger UI's
    Download JSON of the same trace): its origin, and that it propagates to the root."""
    t = truth("single_failed_trace")
    case, _ = loaded("single_failed_trace", variant)
    (r,) = detect_error_origin(case).records()
    assert (r["service"], r["operation"]) == (t["expected_finding"]["service"], t["expected_finding"]["operation"])
    assert r["severity"] == "low" and r["evidence"]["exemplar_trace_ids"] == [t["facts"]["trace_id"]]
    assert r["evidence"]["propagated_traces"] == 1 and "float division by zero" in r["evidence"]["template"]
    assert r["summary"].startswith("The failing trace starts failing at pricing-service GET /prices/<sku>")
