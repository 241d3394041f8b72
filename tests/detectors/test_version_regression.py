"""version_regression: latency, error rate, new error types and call patterns between versions."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from forensics.detectors.version_regression import detect_version_regression
from forensics.synth.builder import SpanBuilder

from conftest import BASE


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
    ledger = f["evidence"]["new_error_types"].pop()
    assert (ledger["kind"], ledger["count"], ledger["operation"]) == ("ledger write failed for <*>", 2, "POST /pay")
    assert f["evidence"]["new_error_types"] == [
        {"origin": "log", "kind": "retrying payment in <*> ms", "count": 12, "trace_id": f["evidence"]["new_error_types"][0]["trace_id"],
         "operation": "POST /pay"}]
    assert f["severity"] == "medium"


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
    assert len(detect_version_regression(case)) == 0
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
