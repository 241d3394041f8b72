"""n_plus_one and retry_storm on the realapp captures (spans made by the real OpenTelemetry SDK
and instrumentations, and by jaeger-client): each incident of issue #16 that is theirs is found
as truth.json says, and the healthy captures give nothing at medium or above."""
from __future__ import annotations

import pytest

import forensics
from forensics._duplicates import unique_spans
from forensics.detectors._calls import call_tables
from forensics.detectors._common import rows
from forensics.detectors.n_plus_one import detect_n_plus_one
from forensics.detectors.retry_storm import detect_retry_storm

from .helpers import DATA, loaded, truth, variants, with_copies

CALL_DETECTORS = (detect_n_plus_one, detect_retry_storm)


@pytest.mark.parametrize("variant", ["otlp", "jaeger", "otlp_json"])
def test_parallel_fan_out_in_one_trace(variant):
    """Item 1 and 2: one downloaded trace, 52 calls to GET /devices/<did> at once."""
    t = truth("single_trace_parallel_fanout")
    case, _ = loaded("single_trace_parallel_fanout", variant)
    (f,) = detect_n_plus_one(case).records()
    ev, inc = f["evidence"], t["incident"]
    assert (f["service"], f["operation"], f["target"], f["target_operation"]) == (
        inc["service"], inc["operation"], inc["target"], inc["target_operation"])
    assert ev["shape"] == inc["shape"] == "parallel"
    assert ev["calls_per_request"]["p50"] == inc["calls"] and ev["hit_requests"] == 1
    assert ev["peak_concurrency_p50"] == t["facts"]["max_concurrent_client_spans"]
    assert f["severity"] == "medium"  # one trace: not critical, whatever it costs
    assert ev["exemplar_trace_ids"] == [t["facts"]["trace_id"]]


def test_double_instrumented_sql_n_plus_one():
    """Item 4: 20 statements per request, each recorded by SQLAlchemy and sqlite3 (siblings, the
    sqlite3 span inside the SQLAlchemy one): 20 sequential calls, not 40 overlapping ones. The
    batched variant (one statement per request) gives nothing."""
    t = truth("sql_n_plus_one_double_instrumented")
    inc = t["incident"]
    case, _ = loaded("sql_n_plus_one_double_instrumented", "n_plus_one")
    (f,) = detect_n_plus_one(case).records()
    ev = f["evidence"]
    assert (f["service"], f["operation"]) == (inc["service"], inc["operation"])
    assert f["target"] == "inventory.db (sqlite)"  # the SQLAlchemy span names the database
    assert f["target_operation"] == "SELECT stock.sku, stock.qty FROM stock WHERE stock.sku = ?"
    assert ev["shape"] == "sequential" and ev["calls_per_request"]["max"] == inc["calls_per_request"]
    assert ev["hit_requests"] == ev["requests"] == t["facts"]["n_plus_one"]["requests"]
    calls = call_tables(case)
    db_calls = rows(case, f"SELECT count(*) AS n FROM {calls.calls} c JOIN {calls.keys} k USING (kid) "
                          "WHERE k.target_operation LIKE 'SELECT stock.sku%'")[0]["n"]
    assert db_calls == 5 * 20
    batched, _ = loaded("sql_n_plus_one_double_instrumented", "batched")
    assert len(detect_n_plus_one(batched)) == 0


def test_opentracing_jdbc_spans_without_kind():
    """Item 3: jaeger-client spans, JDBC statements without span.kind repeated 9, 12 and 14 times
    under OrderRepository.findLines."""
    inc = truth("opentracing_legacy")["incident"]
    case, _ = loaded("opentracing_legacy", "jaeger")
    (f,) = detect_n_plus_one(case).records()
    ev = f["evidence"]
    assert (f["service"], f["operation"], f["target"]) == (inc["service"], inc["operation"], inc["target"])
    assert f["target_operation"].startswith("select ol.id, ol.sku, ol.qty, ol.price from order_lines ol where")
    assert ev["shape"] == inc["shape"]
    assert (ev["calls_per_request"]["p50"], ev["calls_per_request"]["max"]) == (12, 14)
    assert ev["hit_requests"] == 3 and f["severity"] == "medium"  # ~120 ms per request, 3 requests
    # the older tags promoted at load time: ``sql`` is a statement, ``peer.address`` an address;
    # the audit insert (tags sql and database only, no kind) is a call to the ``audit`` database
    calls = call_tables(case)
    got = rows(case, f"""
SELECT k.target, k.target_operation, count(*) AS n FROM {calls.calls} c JOIN {calls.keys} k USING (kid)
WHERE k.target_operation LIKE 'insert into audit%' GROUP BY ALL""")
    assert got == [{"target": "audit", "target_operation": "insert into audit (order_id, at) values (?, ?)", "n": 3}]
    assert case.sql("SELECT count(*) FROM spans WHERE attributes['peer.address'] IS NOT NULL "
                    "AND server_address IS NULL").scalar() == 0


@pytest.mark.parametrize("variant", ["otlp", "zipkin"])
def test_urllib3_retries_inside_client_spans(variant):
    """Item 5: urllib3 Retry behind one requests span per call: 9 of 12 calls hold 2-4 server
    spans of pricing-service (503s then 200)."""
    t = truth("retries_in_client_span")
    inc = t["incident"]
    case, _ = loaded("retries_in_client_span", variant)
    (f,) = detect_retry_storm(case).records()
    ev = f["evidence"]
    assert (f["service"], f["operation"], f["target"], f["target_operation"]) == (
        inc["service"], inc["operation"], inc["target"], inc["target_operation"])
    servers = [c["server_spans"] for c in t["facts"]["otlp"]["calls"]]
    assert ev["retried_requests"] == inc["retried_calls"] == sum(n > 1 for n in servers)
    assert ev["calls"] == sum(servers) and ev["retries"] == sum(servers) - len(servers)
    assert ev["attempts_per_retried_request"] == {"p50": 3, "p90": 4, "max": 4}
    assert ev["retries_inside_client_spans"] is True
    assert f["severity"] == "medium" and ev["evidence_cap"] == "medium"  # 9 retried requests: under 10


@pytest.mark.parametrize("variant", ["old_semconv", "new_semconv", "dup_semconv"])
def test_uninstrumented_dependencies_keep_their_names(variant):
    """Item 6: two untraced external APIs named by the host of http.url / url.full, not merged
    into one 'unknown'."""
    t = truth("uninstrumented_dependency")
    case, _ = loaded("uninstrumented_dependency", variant)
    calls = call_tables(case)
    targets = {r["target"]: r["n"] for r in rows(case, f"""
SELECT k.target, count(*) AS n FROM {calls.calls} c JOIN {calls.keys} k USING (kid) GROUP BY ALL""")}
    assert "unknown" not in targets
    for host in t["incident"]["targets"]:
        assert targets[host] == t["facts"][variant]["external"][host]["client_spans"]


def test_overlapping_exports_count_each_call_once():
    """Item 8: three overlapping dumps hold the spans of two traces twice; in a case holding those
    copies (a load keeps them once: tests/realapp/test_captures.py) the call detectors see the
    calls of the dumps that hold each trace once (traces-1 and traces-3), and their findings."""
    t = truth("overlapping_exports")
    case = with_copies("overlapping_exports", "jaeger")
    assert case.sql("SELECT count(*) FROM spans").scalar() == t["facts"]["span_rows"]
    once = forensics.open_case()
    files = t["facts"]["files"]
    assert set(files["traces-1.json"]) | set(files["traces-3.json"]) == set(t["facts"]["traces"])
    once.load(DATA / "overlapping_exports" / "jaeger" / "traces-1.json",
              DATA / "overlapping_exports" / "jaeger" / "traces-3.json")
    assert once.sql("SELECT count(*) FROM spans").scalar() == t["facts"]["unique_spans"]

    def n_calls(c) -> int:
        with unique_spans(c):
            return rows(c, f"SELECT count(*) AS n FROM {call_tables(c).calls}")[0]["n"]
    assert n_calls(case) == n_calls(once) > 0
    for detect in CALL_DETECTORS:
        assert detect(case, explain=True).records() == detect(once, explain=True).records()


@pytest.mark.parametrize("scenario, variant", [(s, v) for s, v in variants() if truth(s)["healthy"]])
def test_healthy_captures_give_no_medium_finding(scenario, variant):
    """Item 7: a healthy app on a busy machine (CPU hogs, a no-op redeploy): nothing at medium
    or above from the call detectors."""
    case, _ = loaded(scenario, variant)
    for detect in CALL_DETECTORS:
        found = detect(case).at_least("medium")
        assert len(found) == 0, [f["summary"] for f in found.records()]
