"""version_regression: latency, error rate, new error types and call patterns between versions."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from forensics.detectors.version_regression import detect_version_regression
from forensics.synth.builder import SpanBuilder

from conftest import BASE
from tests.realapp.helpers import loaded, truth


def _service(b: SpanBuilder, versions: dict[str, dict], n: int = 60, seed: int = 5) -> list:
    """checkout-service POST /pay per version: latency (mean, sd) ms, error share, error message.

    Returns the refs of every request span (in order) so tests can attach logs.
    """
    rng = random.Random(seed)
    refs = []
    t = 0.0
    for version, spec in versions.items():
        for i in range(n):
            mean, sd = spec.get("latency", (100.0, 10.0))
            err = rng.random() < spec.get("errors", 0.0)
            msg = spec.get("message", "upstream timeout after 800ms") if err else None
            ref = b.span("checkout-service", "POST /pay", kind="server", start_ms=t, version=version,
                         duration_ms=max(1.0, rng.gauss(mean, sd)), status="error" if err else "ok",
                         status_message=msg, attributes={"http.route": "/pay", "http.request.method": "POST",
                                                         "http.response.status_code": 500 if err else 200})
            refs.append((version, ref, err))
            t += 500.0
    return refs


def test_flagship_latency_regression_with_call_pattern(flagship_case):
    found = detect_version_regression(flagship_case)
    assert len(found) == 1
    f = found[0]
    assert (f["service"], f["operation"], f["version"]) == ("catalog-service", "GET /search", "1.8.0")
    assert (f["target"], f["target_operation"]) == ("inventory-service", "GET /inventory/{id}")
    assert f["severity"] == "critical"
    ev = f["evidence"]
    assert ev["baseline_version"] == "1.7.9"
    assert ev["latency"]["regressed"] and ev["latency"]["mann_whitney_p"] < 1e-6
    assert ev["latency"]["base"]["p99_ms"] < 400 < 2000 < ev["latency"]["new"]["p99_ms"]
    assert ev["changed_calls"][0] == {"target": "inventory-service", "target_operation": "GET /inventory/{id}",
                                      "base_per_request": 0.0, "new_per_request": 50.0}
    assert {"target_operation": "POST /inventory/batch", "base_per_request": 1.0} .items() <= ev["changed_calls"][1].items()
    assert len(ev["exemplar_trace_ids"]) == 5 and ev["source"].startswith("traces.json:")
    assert f["summary"].startswith("catalog-service GET /search is slower in v1.8.0 than in v1.7.9: p99 ")
    assert ev["thresholds"]["alpha"] == 0.01


def test_error_rate_and_new_error_type(make_case):
    case = make_case(_service, versions={"2.3.0": {"errors": 0.0}, "2.4.0": {"errors": 0.2, "message": "card 4242 declined by gateway id=77"}})
    f = detect_version_regression(case)[0]
    assert f["version"] == "2.4.0" and f["evidence"]["errors"]["regressed"]
    assert not f["evidence"]["latency"]["regressed"]
    assert f["evidence"]["new_error_types"][0]["kind"] == "card ? declined by gateway id=?"
    assert f["severity"] in ("critical", "high")
    assert "failing more and failing differently" in f["summary"]


def test_new_log_template_only(make_case):
    """Same latency and error rate, but v2.4.0 logs a warning template never logged by v2.3.0."""
    holder = {}

    def build(b: SpanBuilder) -> None:
        holder["refs"] = _service(b, versions={"2.3.0": {}, "2.4.0": {}})
    case = make_case(build)
    logs = [(BASE + timedelta(milliseconds=r.start_ms), "checkout-service", "warn", r.trace_id, r.span_id,
             "retrying payment in <*> ms" if v == "2.4.0" else "payment ok")
            for v, r, _ in holder["refs"][::5]]
    for row in logs:
        case.execute("INSERT INTO logs (time, service, severity, trace_id, span_id, template, body) "
                     "VALUES (?, ?, ?, ?, ?, ?, 'x')", list(row))
    # logs without a trace: versioned by time (after 2.4.0 was first seen) or by their resource
    case.execute("INSERT INTO logs (time, service, severity, template, body) VALUES (?, ?, 'error', ?, 'x'), (?, ?, 'error', ?, 'x')",
                 [BASE + timedelta(seconds=40), "checkout-service", "ledger write failed for <*>"] * 2)
    case.execute("INSERT INTO logs (time, service, severity, template, body, resource_attributes) "
                 "VALUES (?, ?, 'error', 'disk <*> almost full', 'x', MAP {'service.version': '2.3.0'})",
                 [BASE + timedelta(seconds=41), "checkout-service"])
    f = detect_version_regression(case)[0]
    assert f["version"] == "2.4.0"
    kinds = f["evidence"]["new_error_types"]
    # "ledger write failed" twice in 60 requests (never in the baseline's 60) is within chance
    # (Fisher p = 0.25): only the template logged 12 times is new
    assert [(k["origin"], k["kind"], k["count"], k["operation"]) for k in kinds] == [
        ("log", "retrying payment in <*> ms", 12, "POST /pay")]
    assert kinds[0]["fisher_p"] < 0.001
    assert f["severity"] == "medium"
    case.execute("INSERT INTO logs (time, service, severity, template, body) "
                 "SELECT ?, ?, 'error', ?, 'x' FROM range(8)",
                 [BASE + timedelta(seconds=40), "checkout-service", "ledger write failed for <*>"])
    kinds = detect_version_regression(case)[0]["evidence"]["new_error_types"]
    assert [(k["kind"], k["count"]) for k in kinds] == [("retrying payment in <*> ms", 12),
                                                        ("ledger write failed for <*>", 10)]


def test_clean_and_unchanged_versions_give_nothing(clean_case, make_case):
    assert len(detect_version_regression(clean_case)) == 0  # one version only
    same = make_case(_service, versions={"2.3.0": {}, "2.4.0": {}, "2.5.0": {}})
    assert len(detect_version_regression(same)) == 0


@pytest.mark.parametrize("new_latency, kwargs, regressed, failed", [
    ((112.0, 2.0), {}, False, ["min_latency_increase_ms"]),          # +12 ms: significant, +12 %, < 20 ms
    ((125.0, 2.0), {}, True, None),                                  # +25 ms, +25 %
    ((125.0, 2.0), {"min_latency_increase_ms": 30.0}, False, ["min_latency_increase_ms"]),
    ((125.0, 2.0), {"min_latency_increase": 0.5}, False, ["min_latency_increase"]),
])
def test_latency_near_threshold(make_case, new_latency, kwargs, regressed, failed):
    case = make_case(_service, versions={"1.0.0": {"latency": (100.0, 2.0)}, "1.1.0": {"latency": new_latency}})
    found = detect_version_regression(case, explain=True, **kwargs)
    assert len(found) == 1
    f = found[0]
    if regressed:
        assert f["severity"] != "info" and f["evidence"]["latency"]["regressed"]
    else:
        assert f["severity"] == "info" and f["evidence"]["near_miss"]
        assert f["evidence"]["failed"] == failed
    assert len(detect_version_regression(case, **kwargs)) == (1 if regressed else 0)


def test_min_samples(make_case):
    case = make_case(_service, versions={"1.0.0": {}, "1.1.0": {"latency": (300.0, 10.0)}}, n=20)
    assert len(detect_version_regression(case, min_samples=30)) == 0
    assert len(detect_version_regression(case, min_samples=20)) == 1


def test_deploy_order_beats_first_seen(make_case):
    """A canary of 1.1.0 seen before 1.0.0's traffic: the deploy events give the real order."""
    case = make_case(_service, versions={"1.1.0": {"latency": (100.0, 5.0)}, "1.0.0": {"latency": (300.0, 5.0)}})
    assert detect_version_regression(case)[0]["version"] == "1.0.0"  # by first seen
    for v, minutes in (("1.0.0", -60), ("1.1.0", 0)):
        case.execute("INSERT INTO events (time, kind, service, version) VALUES (?, 'deploy', 'checkout-service', ?)",
                     [BASE + timedelta(minutes=minutes), v])
    assert len(detect_version_regression(case)) == 0  # 1.0.0 -> 1.1.0 got faster


def test_bad_or_missing_data(make_case, empty_case):
    assert len(detect_version_regression(empty_case, explain=True)) == 0

    def unversioned(b: SpanBuilder) -> None:
        _service(b, versions={None: {}, "": {}})
    assert len(detect_version_regression(make_case(unversioned), explain=True)) == 0

    def one_sample(b: SpanBuilder) -> None:
        _service(b, versions={"1.0.0": {}, "1.1.0": {"latency": (900.0, 1.0)}}, n=1)
    case = make_case(one_sample)
    assert len(detect_version_regression(case)) == 0
    assert len(detect_version_regression(case, min_samples=1)) == 0  # 1 vs 1 can never be significant
    miss = detect_version_regression(case, min_samples=1, explain=True)[0]
    assert miss["evidence"]["failed"] == ["alpha"]


def test_unversioned_spans_compared_before_and_after_deploy(make_case):
    """No service.version on spans: the deploy event splits them into two cohorts."""
    def build(b: SpanBuilder) -> None:
        _service(b, versions={"a": {"latency": (100.0, 5.0)}, "b": {"latency": (180.0, 5.0)}})
        for r in b.rows:
            r["service_version"] = None
    case = make_case(build)
    assert len(detect_version_regression(case)) == 0  # nothing to compare
    case.execute("INSERT INTO events (time, kind, service, version) VALUES (?, 'deploy', 'checkout-service', NULL)",
                 [BASE + timedelta(seconds=29.9)])  # between request 59 (29.5 s) and 60 (30 s)
    f = detect_version_regression(case)[0]
    assert f["version"] == "deploy@2026-02-18T10:00:29Z"
    assert f["evidence"]["baseline_version"] == "pre-deploy"
    assert f["evidence"]["requests"] == {"baseline": 60, "new": 60}
    assert "is slower in deploy@2026-02-18T10:00:29Z than in pre-deploy" in f["summary"]


def _stack(b: SpanBuilder, *, n: int = 80, slow_machine: float = 1.0, regress: float = 1.0, seed: int = 21) -> None:
    """api-gateway (1.0.0) -> catalog-service -> inventory-service (3.1.0) -> sqlite, shaped as the
    OpenTelemetry Python SDK writes Flask/requests/sqlite3 spans. catalog-service is redeployed
    from 2.0.0 to 2.0.1 halfway; in 2.0.1's window the whole machine is ``slow_machine`` times
    slower (every service's own work) and catalog's own work also ``regress`` times slower."""
    rng = random.Random(seed)
    http = lambda route: {"http.method": "GET", "http.route": route, "http.status_code": 200,  # noqa: E731
                          "http.scheme": "http", "http.flavor": "1.1"}
    for i in range(2 * n):
        new = i >= n
        f = slow_machine if new else 1.0
        t = i * 1000.0
        gw_own, cat_own, inv_own, db = (rng.gauss(m, m / 10) * f for m in (6.0, 25.0, 8.0, 4.0))
        cat_own *= regress if new else 1.0
        inv_d = inv_own + db
        cat_d = cat_own + inv_d + 2.0
        gw_d = gw_own + cat_d + 2.0
        gw = b.span("api-gateway", "GET /api/products/<sku>", kind="server", start_ms=t, duration_ms=gw_d,
                    version="1.0.0", attributes=http("/api/products/<sku>"))
        c1 = b.span("api-gateway", "GET", kind="client", parent=gw, start_ms=t + gw_own / 2, duration_ms=cat_d + 1.0,
                    version="1.0.0", attributes={"http.method": "GET", "http.status_code": 200,
                                                 "http.url": f"http://catalog-service:5001/products/SKU-{i:04d}"})
        cat = b.span("catalog-service", "GET /products/<sku>", kind="server", parent=c1, start_ms=t + gw_own / 2 + 0.5,
                     duration_ms=cat_d, version="2.0.1" if new else "2.0.0", attributes=http("/products/<sku>"))
        c2 = b.span("catalog-service", "GET", kind="client", parent=cat, start_ms=t + gw_own / 2 + 1 + cat_own / 2,
                    duration_ms=inv_d + 1.0, version="2.0.1" if new else "2.0.0",
                    attributes={"http.method": "GET", "http.status_code": 200,
                                "http.url": f"http://inventory-service:5002/stock/SKU-{i:04d}"})
        inv = b.span("inventory-service", "GET /stock/<sku>", kind="server", parent=c2,
                     start_ms=t + gw_own / 2 + 1.5 + cat_own / 2, duration_ms=inv_d, version="3.1.0",
                     attributes=http("/stock/<sku>"))
        b.span("inventory-service", "SELECT inventory.db", kind="client", parent=inv,
               start_ms=t + gw_own / 2 + 1.6 + cat_own / 2, duration_ms=db, version="3.1.0",
               attributes={"db.system": "sqlite", "db.name": "inventory.db",
                           "db.statement": "SELECT qty FROM stock WHERE sku = ?"})


def test_noop_redeploy_while_the_machine_slowed_is_not_a_regression(make_case):
    """#16: catalog-service 2.0.0 -> 2.0.1 changes nothing, but the whole machine is 1.8x slower in
    2.0.1's window: inventory-service (unchanged) slowed by the same factor (the control), so
    catalog's 1.8x is not blamed on 2.0.1. api-gateway is left out of the control: it calls
    catalog-service, so its latency includes catalog's."""
    case = make_case(_stack, slow_machine=1.8)
    assert len(detect_version_regression(case)) == 0
    (near,) = [r for r in detect_version_regression(case, explain=True).records() if r["service"] == "catalog-service"]
    lat = near["evidence"]["latency"]
    assert lat["p95_ratio_raw"] > 1.5 and lat["p95_ratio"] == pytest.approx(1.0, abs=0.15)
    control = lat["control"]
    assert control["method"] == "difference in differences" and control["factor"] == pytest.approx(1.8, rel=0.1)
    assert [(o["service"], o["operation"]) for o in control["operations"]] == [("inventory-service", "GET /stock/<sku>")]
    assert [(c["service"], c["operation"]) for c in control["excluded_callers"]] == [
        ("api-gateway", "GET /api/products/<sku>")]
    assert "net of the 1.8x slowdown of unchanged operations of other services" in near["summary"]


def test_regression_is_judged_net_of_the_control(make_case):
    """catalog's own work 3x slower in 2.0.1: found on a quiet machine (control ~1), and still
    found, with the smaller net effect, while the machine is also 1.5x slower."""
    quiet = detect_version_regression(make_case(_stack, regress=3.0)).records()
    (q,) = [r for r in quiet if r["service"] == "catalog-service"]
    assert q["version"] == "2.0.1" and q["evidence"]["latency"]["control"]["factor"] == pytest.approx(1.0, abs=0.1)
    busy = detect_version_regression(make_case(_stack, regress=3.0, slow_machine=1.5)).records()
    (r,) = [x for x in busy if x["service"] == "catalog-service"]
    lat = r["evidence"]["latency"]
    assert lat["regressed"] and lat["control"]["factor"] == pytest.approx(1.5, rel=0.1)
    assert lat["p95_ratio"] < lat["p95_ratio_raw"] and "net of the 1.5x slowdown" in r["summary"]
    # api-gateway's latency includes catalog's: it is not compared (one version only)
    assert {x["service"] for x in busy} == {"catalog-service"}


def test_small_versions_are_tested_and_skipped_ones_explained(make_case):
    """The tests decide from 5 requests per version (a 3x slowdown on 8 vs 8 is conclusive);
    below min_samples the pair is listed by explain."""
    case = make_case(_service, versions={"1.0.0": {}, "1.1.0": {"latency": (300.0, 10.0)}}, n=8)
    (f,) = detect_version_regression(case).records()
    assert f["version"] == "1.1.0" and f["evidence"]["latency"]["mann_whitney_p"] < 0.01
    tiny = make_case(_service, versions={"1.0.0": {}, "1.1.0": {"latency": (300.0, 10.0)}}, n=4)
    assert len(detect_version_regression(tiny)) == 0
    (skip,) = detect_version_regression(tiny, explain=True).records()
    assert skip["evidence"]["failed"] == ["min_samples"] and skip["evidence"]["skipped"][0]["count"] == 4
    assert "checkout-service POST /pay v1.1.0 vs v1.0.0 (4)" in skip["summary"]


def test_realapp_noop_redeploy_on_a_slowing_machine():
    """The real capture: catalog-service 1.7.9 -> 1.7.10 (no code change) while two CPU hogs
    slow the whole machine; its change lies within the unchanged services' (truth.json). No
    finding; explain shows the slowdown and the control that explains it."""
    facts = truth("healthy_noop_redeploy")["facts"]
    case, _ = loaded("healthy_noop_redeploy", "otlp")
    assert len(detect_version_regression(case)) == 0
    near = detect_version_regression(case, explain=True).records()
    assert near and all(r["severity"] == "info" and r["service"] == "catalog-service" for r in near)
    for r in near:
        control = r["evidence"]["latency"]["control"]
        assert control["groups"] >= 3 and control["factor"] >= facts["changed_p50_ratio"] * 0.9
        assert {c["service"] for c in control["excluded_callers"]} == {"api-gateway"}
        assert "net of the" in r["summary"]
