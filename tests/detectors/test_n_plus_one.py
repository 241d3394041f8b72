"""n_plus_one: repeated sequential calls to one dependency operation under one parent span."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import forensics
from forensics.detectors import detectors
from forensics.detectors.n_plus_one import detect_n_plus_one
from forensics.synth.builder import SpanBuilder

from conftest import BASE, build_flagship, build_orphans, case_from_arrow, inventory_call


def test_flagship_found_with_version_comparison(flagship_case):
    findings = detect_n_plus_one(flagship_case)
    assert len(findings) == 1
    f = findings[0]
    assert (f["service"], f["operation"], f["target"], f["target_operation"], f["version"]) == (
        "catalog-service", "GET /search", "inventory-service", "GET /inventory/{id}", "1.8.0")
    assert f["severity"] == "critical"
    ev = f["evidence"]
    assert ev["calls_per_request"]["p50"] == 50 and ev["calls_per_request"]["max"] == 50
    assert ev["hit_share"] == 1.0 and ev["baseline_version"] == "1.7.9"
    base = next(v for v in ev["by_version"] if v["version"] == "1.7.9")
    assert base["target_calls_p50"] == 1 and base["calls_p50"] == 0
    assert len(ev["exemplar_trace_ids"]) == 5 and all(len(t) == 32 for t in ev["exemplar_trace_ids"])
    assert ev["source"].startswith("traces.json:")
    assert ev["thresholds"] == {"min_calls": 5, "max_overlap_ratio": 0.25, "min_parallel_calls": 5,
                                "min_total_ms": 0.0, "min_requests_for_critical": 3}
    assert ev["shape"] == "sequential" and ev["parallel_hit_requests"] == 0
    assert "v1.8.0 makes ~50 sequential GET /inventory/{id} calls to inventory-service" in f["summary"]
    assert "(v1.7.9 made 1 call to inventory-service)" in f["summary"]
    assert "p99" in f["summary"]
    assert f["start_time"] >= BASE + timedelta(seconds=40)


def test_registered_and_runs_through_detect(flagship_case):
    assert "n_plus_one" in detectors()
    found = forensics.detect(flagship_case, only="n_plus_one")
    assert [r["target"] for r in found] == ["inventory-service"]


def test_clean_shapes_give_no_medium_finding(clean_case):
    """Fan-out to different dependencies, 3-query batch: nothing. 20 parallel price look-ups of
    ~25 ms per request: a parallel N+1 (20x the load on price-service, as Sentry's N+1 API Calls
    would say), but it costs each request only the slowest call: low."""
    found = detect_n_plus_one(clean_case)
    assert len(found.at_least("medium")) == 0
    (f,) = found.records()
    assert (f["severity"], f["target"], f["target_operation"]) == ("low", "price-service", "GET /prices/{id}")
    assert f["evidence"]["shape"] == "parallel" and f["evidence"]["peak_concurrency_p50"] >= 15
    assert "fans out ~20 parallel GET /prices/{id} calls to price-service" in f["summary"]


def test_explain_reports_near_misses_with_failed_threshold(clean_case):
    found = detect_n_plus_one(clean_case, explain=True)
    assert set(found.to_pandas()["severity"]) == {"info", "low"}
    by_target = {r["target"]: r["evidence"] for r in found if r["severity"] == "info"}
    assert set(by_target) == {"postgresql"}
    assert by_target["postgresql"]["failed"] == ["min_calls"]
    check = next(c for c in by_target["postgresql"]["checks"] if c["name"] == "min_calls")
    assert (check["observed"], check["required"]) == (3, 5)
    assert all(e["near_miss"] for e in by_target.values())
    assert "payment-service" not in by_target  # one call per dependency is not even a candidate


def _sequential(b: SpanBuilder, n: int, duration_ms: float, gap_ms: float = 0.5) -> None:
    root = b.span("catalog-service", "GET /search", kind="server", duration_ms=n * (duration_ms + gap_ms) + 5,
                  version="1.8.0", attributes={"http.route": "/search", "http.request.method": "GET"})
    s = 1.0
    for i in range(n):
        inventory_call(b, root, s, duration_ms, 1000 + i, version="1.8.0")
        s += duration_ms + gap_ms


@pytest.mark.parametrize("n, dur, kwargs, severity", [
    (5, 12.0, {}, "medium"),                     # exactly min_calls, 60 ms total: one request, medium
    (4, 15.0, {}, None),                         # one call short
    (5, 10.0, {}, "medium"),                     # 50 ms: the medium cut
    (5, 9.9, {}, "low"),                         # 49.5 ms: a cheap loop is still a loop
    (5, 0.2, {}, "low"),                         # 1 ms of fast calls
    (4, 15.0, {"min_calls": 4}, "medium"),       # lowered threshold
    (8, 10.0, {"min_total_ms": 100.0}, None),    # 80 ms < 100 ms (Sentry's cut)
    (8, 12.5, {"min_total_ms": 100.0}, "medium"),
])
def test_near_threshold(make_case, n, dur, kwargs, severity):
    case = make_case(_sequential, n=n, duration_ms=dur)
    found = detect_n_plus_one(case, **kwargs)
    assert [f["severity"] for f in found] == ([severity] if severity else [])
    if severity:
        assert found[0]["evidence"]["calls_per_request"]["p50"] == n


def test_overlap_threshold(make_case):
    """Pairs of concurrent calls: overlap ratio 0.5 fails the default 0.25 (a loop) and two at
    once is no fan-out of 5: a near miss naming both; passes with max_overlap_ratio 0.6."""
    def build(b: SpanBuilder) -> None:
        root = b.span("catalog-service", "GET /search", kind="server", duration_ms=200, version="1.8.0")
        for i in range(10):
            inventory_call(b, root, 1 + (i // 2) * 20, 20, 500 + i, version="1.8.0")
    case = make_case(build)
    assert len(detect_n_plus_one(case)) == 0
    (miss,) = detect_n_plus_one(case, explain=True).records()
    assert miss["evidence"]["failed"] == ["max_overlap_ratio", "min_parallel_calls"]
    assert "up to 2 at once" in miss["summary"]
    found = detect_n_plus_one(case, max_overlap_ratio=0.6)
    assert len(found) == 1
    assert found[0]["evidence"]["overlap_ratio_p50"] == pytest.approx(0.5, abs=0.01)
    assert len(detect_n_plus_one(case, min_parallel_calls=2)) == 1  # or: a fan-out of two


def test_bad_or_missing_data(make_case, empty_case):
    assert len(detect_n_plus_one(empty_case)) == 0
    assert len(detect_n_plus_one(empty_case, explain=True)) == 0

    def roots_only(b: SpanBuilder) -> None:
        for i in range(10):
            b.span("catalog-service", "GET /search", kind="server", start_ms=i * 10, duration_ms=5)
    assert len(detect_n_plus_one(make_case(roots_only), explain=True)) == 0

    assert len(detect_n_plus_one(make_case(build_orphans, version="1.8.0"))) == 0

    def no_versions(b: SpanBuilder) -> None:  # one sample, no service.version anywhere
        root = b.span("catalog-service", "GET /search", kind="server", duration_ms=300)
        for i in range(6):
            inventory_call(b, root, 1 + i * 41, 40, i, version=None)
    found = detect_n_plus_one(make_case(no_versions))
    assert len(found) == 1 and found[0]["version"] is None
    assert found[0]["evidence"]["baseline_version"] is None
    assert "costing ~" in found[0]["summary"]


def test_deploy_event_splits_unversioned_spans(make_case):
    """Spans without service.version: cohorts before/after the deploy event are compared."""
    def build(b: SpanBuilder) -> None:
        build_flagship(b, requests_per_version=20)
        for r in b.rows:
            r["service_version"] = None
    case = make_case(build)
    case.execute("INSERT INTO events (time, kind, service, version) VALUES (?, 'deploy', ?, ?)",
                 [BASE + timedelta(seconds=19.5), "catalog-service", "1.8.0"])
    f = detect_n_plus_one(case)[0]
    assert f["version"] == "1.8.0"
    assert f["evidence"]["baseline_version"] == "pre-deploy"
    assert "(pre-deploy made 1 call to inventory-service)" in f["summary"]


def test_repeated_db_statements_jaeger_shaped(make_case):
    """Jaeger-style DB spans (db.statement with literals, internal kind, no peer.service)."""
    def build(b: SpanBuilder) -> None:
        for r in range(5):
            root = b.span("order-service", "HTTP GET /orders", kind="server", start_ms=r * 1000, duration_ms=900,
                          version="4.1.0", attributes={"http.method": "GET", "http.route": "/orders"})
            for i in range(30):
                b.span("order-service", "SELECT", kind="client", parent=root, start_ms=r * 1000 + 2 + i * 6,
                       duration_ms=5.5, version="4.1.0",
                       attributes={"db.type": "sql", "db.instance": "orders",
                                   "db.statement": f"SELECT * FROM order_lines WHERE order_id = {9000 + i} AND state = 'open'"})
    found = detect_n_plus_one(make_case(build))
    assert len(found) == 1
    f = found[0]
    assert f["target"] == "orders (sql)"  # db.instance names the database, db.type its system
    assert f["target_operation"] == "SELECT * FROM order_lines WHERE order_id = ? AND state = ?"
    assert f["evidence"]["calls_per_request"]["p50"] == 30


DATA = Path(__file__).parent.parent / "data" / "detectors"


def test_hundred_calls_sharing_a_path_zipkin_file():
    """Zipkin v2 export (B3 shared client/server halves): 120 ``get`` client spans whose
    ``http.path`` differ only by product id; the operation comes from the path, the target from
    the remote endpoint."""
    case = forensics.open_case()
    case.load(DATA / "zipkin_n_plus_one.json", format="zipkin_json", strict=True)
    found = detect_n_plus_one(case)
    assert len(found) == 1
    f = found[0]
    assert (f["service"], f["operation"], f["target"], f["target_operation"], f["version"]) == (
        "frontend", "GET /cart", "productcatalog", "GET /api/products/{id}", None)
    ev = f["evidence"]
    assert ev["calls_per_request"]["max"] == 120 and ev["overlap_ratio_p50"] == 0.0
    assert ev["exemplar_trace_ids"] == ["463ac35c9f6413ad48485a3953bb6124"]
    assert "zipkin_n_plus_one.json@" in ev["source"]  # file and record offset of an exemplar call
    assert f["summary"].startswith("frontend makes ~120 sequential GET /api/products/{id} calls to productcatalog")


def test_repeated_db_statements_jaeger_file():
    """Jaeger /api/traces export from an OpenTelemetry Java app: 30 JDBC spans per request with
    literal ids in ``db.statement``; target from ``net.peer.name``, version from process tags."""
    case = forensics.open_case()
    case.load(DATA / "jaeger_repeated_db.json", format="jaeger_json", strict=True)
    found = detect_n_plus_one(case)
    assert len(found) == 1
    f = found[0]
    assert (f["service"], f["operation"], f["target"], f["version"]) == (
        "order-service", "GET /orders/{id}", "orders-db", "4.1.0")
    assert f["target_operation"] == "SELECT id, sku, qty FROM order_lines WHERE order_id = ? AND line_no = ?"
    ev = f["evidence"]
    assert ev["requests"] == 3 and ev["calls_per_request"]["p50"] == 30
    assert len(ev["exemplar_trace_ids"]) == 3


def test_failing_calls_with_different_ids_are_not_retries(make_case):
    """Every fifth per-item call fails (503): the next call asks for another item, so it is
    still part of the N+1, not a retry."""
    def build(b: SpanBuilder) -> None:
        root = b.span("catalog-service", "GET /search", kind="server", duration_ms=1100, version="1.8.0")
        for i in range(50):
            bad = i % 5 == 0
            inventory_call(b, root, 1 + i * 21, 20, 7000 + i, version="1.8.0",
                           status="error" if bad else "unset", http_status=503 if bad else 200)
    f = detect_n_plus_one(make_case(build))[0]
    assert f["evidence"]["calls_per_request"]["p50"] == 50


def test_results_follow_new_spans(make_case):
    """The shared calls table is rebuilt when spans change."""
    case = make_case(_sequential, n=4, duration_ms=20)
    assert len(detect_n_plus_one(case)) == 0
    b = SpanBuilder(BASE, seed=99)
    _sequential(b, n=9, duration_ms=20)
    b.insert(case)
    assert [f["evidence"]["calls_per_request"]["max"] for f in detect_n_plus_one(case)] == [9]


def test_cli_detect_json(tmp_path, flagship_spans):
    """`forensics detect CASE --only n_plus_one --format json` prints one JSON array only."""
    import orjson
    from click.testing import CliRunner

    from forensics.cli import cli

    path = tmp_path / "incident.duckdb"
    with forensics.open_case(path) as case:
        case.con.register("_flagship", flagship_spans)
        case.execute("INSERT INTO spans BY NAME SELECT * FROM _flagship")
    res = CliRunner().invoke(cli, ["detect", str(path), "--only", "n_plus_one", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = orjson.loads(res.stdout)
    assert [(f["detector"], f["target"], f["version"]) for f in out] == [("n_plus_one", "inventory-service", "1.8.0")]


def test_exemplars_among_equal_requests_are_deterministic(make_case):
    """Twelve identical N+1 requests: the five exemplars are the greatest trace ids (ties are
    broken by trace id, so every run and engine reports the same traces)."""
    def build(b: SpanBuilder) -> None:
        for _ in range(12):
            _sequential(b, 6, 20.0)
    case = make_case(build)
    (f,) = detect_n_plus_one(case).records()
    traces = sorted(r[0] for r in case.sql("SELECT DISTINCT trace_id FROM spans").rows())
    assert f["evidence"]["exemplar_trace_ids"] == traces[::-1][:5]
    assert f["evidence"]["source"] is not None and f["evidence"]["source"].startswith("traces.json:")


def _devices_fanout(b: SpanBuilder, *, workers: int = 8, calls: int = 52, seed: int = 4) -> None:
    """One dashboard request fetching 52 devices through a pool of ``workers`` threads (a
    ``requests`` span per device, old conventions, callee not traced): the next call starts when
    a worker is free, a few tenths of a millisecond later on a busy host."""
    import heapq
    import random

    from otel_shapes import flask_request, requests_call

    rng = random.Random(seed)
    durs = [rng.uniform(18, 45) for _ in range(calls)]
    free = [2.0 + rng.uniform(0, 1.5) for _ in range(workers)]  # when each worker is free
    heapq.heapify(free)
    spans = []
    for i, d in enumerate(durs):
        start = heapq.heappop(free) + rng.uniform(0.1, 0.6)
        spans.append((start, d, i))
        heapq.heappush(free, start + d)
    root = flask_request(b, "dashboard", "/devices", "/devices", start_ms=0,
                         duration_ms=max(s + d for s, d, _ in spans) + 4)
    for start, d, i in spans:
        requests_call(b, "dashboard", root, f"http://10.0.3.7:9000/devices/{4100 + i}", start_ms=start, duration_ms=d)


def test_parallel_fan_out_in_one_downloaded_trace(make_case):
    """Issue 16, items 1 and 2: one trace with 52 parallel ``GET /devices/{id}`` calls under one
    parent (8 at a time): a parallel N+1, found from the single trace, not critical."""
    (f,) = detect_n_plus_one(make_case(_devices_fanout)).records()
    ev = f["evidence"]
    assert (f["service"], f["operation"], f["target"], f["target_operation"]) == (
        "dashboard", "GET /devices", "10.0.3.7", "GET /devices/{id}")
    assert ev["shape"] == "parallel" and ev["peak_concurrency_p50"] == 8 and ev["hit_requests"] == 1
    assert ev["calls_per_request"]["p50"] == 52 and ev["overlap_ratio_p50"] > 0.8
    assert f["severity"] == "medium"  # ~200 ms waited: high by cost, one trace caps it at medium
    assert f["summary"].startswith("dashboard fans out ~52 parallel GET /devices/{id} calls to 10.0.3.7 per "
                                   "GET /devices request (up to 8 at once): 52x the load on 10.0.3.7")
    assert len(detect_n_plus_one(make_case(_devices_fanout, workers=3))) == 0  # 3 at once: neither shape
    assert len(detect_n_plus_one(make_case(_devices_fanout, workers=3), min_parallel_calls=3)) == 1


def test_one_trace_of_the_flagship(flagship_spans):
    """One downloaded v1.8.0 trace: the loop of 50 sequential calls is unambiguous; a finding
    without a baseline, at most medium however costly (one request is little evidence)."""
    case = case_from_arrow(flagship_spans)
    last = case.sql("SELECT trace_id FROM spans WHERE service_version = '1.8.0' ORDER BY start_time DESC LIMIT 1").scalar()
    case.execute("DELETE FROM spans WHERE trace_id <> ?", [last])
    (f,) = detect_n_plus_one(case).records()
    assert (f["severity"], f["evidence"]["hit_requests"], f["evidence"]["baseline_version"]) == ("medium", 1, None)
    assert f["evidence"]["shape"] == "sequential" and f["evidence"]["calls_per_request"]["p50"] == 50
    assert f["summary"].startswith("catalog-service v1.8.0 makes ~50 sequential GET /inventory/{id} calls to "
                                   "inventory-service per GET /search request, costing ~")
