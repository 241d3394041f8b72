"""bimodal_latency: a timeout mode on one host is found; unimodal latency is not."""
from datetime import datetime, timezone

import numpy as np
import pytest

import forensics
from forensics.detectors.bimodal_latency import detect_bimodal_latency
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def _case(durations_ms, *, slow_from=None, errors_when_slow=True, hosts=("web-1", "web-2", "web-3")):
    """One catalog-service GET /search server span per duration (each with a client child)."""
    b = SpanBuilder(T0, seed=1)
    slow_from = np.inf if slow_from is None else slow_from
    for i, d in enumerate(durations_ms):
        slow = d >= slow_from
        host = "web-7" if slow else hosts[i % len(hosts)]
        err = slow and errors_when_slow
        root = b.span("catalog-service", "GET /search", kind="server", start_ms=i * 50, duration_ms=float(d),
                      host=host, version="1.8.0", status="error" if err else "unset",
                      status_message="upstream request timeout" if err else None,
                      attributes={"http.route": "/search", "http.request.method": "GET",
                                  "http.response.status_code": 504 if err else 200})
        b.span("catalog-service", "GET", kind="client", parent=root, start_ms=i * 50 + 1,
               duration_ms=float(d) - 2, host=host, attributes={"peer.service": "inventory-service",
                                                                "http.request.method": "GET",
                                                                "url.template": "/inventory/{id}"})
    case = forensics.open_case()
    b.insert(case)
    return case


def _timeout_mix(n=400, share=0.15, seed=0):
    rng = np.random.default_rng(seed)
    k = int(n * share)
    return np.r_[rng.lognormal(np.log(80), 0.3, n - k), rng.normal(1003, 3, k)]


def test_timeout_mode_on_one_host_is_found():
    case = _case(_timeout_mix(), slow_from=900)
    f = detect_bimodal_latency(case).records()
    server = [r for r in f if r["evidence"]["side"] == "server"]
    assert len(server) == 1
    r = server[0]
    assert r["severity"] == "high"
    assert (r["service"], r["operation"]) == ("catalog-service", "GET /search")
    ev = r["evidence"]
    fast, slow = ev["modes"]
    assert fast["centre_ms"] == pytest.approx(80, rel=0.1)
    assert slow["centre_ms"] == pytest.approx(1003, rel=0.01)
    assert slow["share"] == pytest.approx(0.15, abs=0.005) and slow["error_share"] == 1.0
    assert ev["timeout_like"] and ev["at_round_timeout"] and ev["nearest_round_timeout_ms"] == 1000
    assert ev["dip_p"] < 0.01
    seps = {(s["dimension"], s["value"]) for s in ev["separated_by"]}
    assert ("host_name", "web-7") in seps
    assert len(ev["exemplar_trace_ids"]) == 5 and ev["source"].startswith("builder:")
    assert ev["thresholds"]["min_samples"] == 200
    assert "1.0 s timeout" in r["summary"] and "web-7" in r["summary"]
    # the client calls to inventory-service carry the same two modes
    client = [x for x in f if x["evidence"]["side"] == "client"]
    assert client and client[0]["target"] == "inventory-service"
    assert client[0]["target_operation"] == "GET /inventory/{id}"


def test_unimodal_lognormal_is_not_flagged_even_with_explain():
    rng = np.random.default_rng(2)
    case = _case(rng.lognormal(np.log(120), 0.5, 600))
    assert len(detect_bimodal_latency(case)) == 0
    assert len(detect_bimodal_latency(case, explain=True)) == 0


def test_slow_mode_without_errors_off_round_value_is_medium_not_timeout():
    rng = np.random.default_rng(3)
    d = np.r_[rng.lognormal(np.log(40), 0.2, 300), rng.lognormal(np.log(700), 0.25, 100)]
    r = detect_bimodal_latency(_case(d, slow_from=np.inf)).records()
    r = [x for x in r if x["evidence"]["side"] == "server"][0]
    assert r["severity"] == "medium" and not r["evidence"]["timeout_like"]


def test_minor_mode_below_share_threshold_is_a_near_miss():
    d = _timeout_mix(n=1000, share=0.03, seed=4)
    case = _case(d, slow_from=900)
    strict = detect_bimodal_latency(case, min_mode_share=0.05)
    assert len(strict) == 0
    loose = detect_bimodal_latency(case, min_mode_share=0.02)
    assert any(r["evidence"]["side"] == "server" for r in loose.records())
    near = [r for r in detect_bimodal_latency(case, min_mode_share=0.05, explain=True).records()
            if r["evidence"]["side"] == "server"]
    assert near and near[0]["severity"] == "info" and near[0]["evidence"]["near_miss"]
    assert near[0]["evidence"]["failed"] == ["min_mode_share"]


def test_too_few_samples_is_skipped():
    case = _case(_timeout_mix(n=150), slow_from=900)
    assert len(detect_bimodal_latency(case)) == 0
    assert len(detect_bimodal_latency(case, min_samples=100)) >= 1


def test_bad_input_gives_empty_findings():
    assert len(detect_bimodal_latency(forensics.open_case())) == 0
    b = SpanBuilder(T0)
    b.span("a", "op", kind="server", duration_ms=5)
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_bimodal_latency(case, min_samples=1)) == 0
    case.execute("UPDATE spans SET duration_ms = NULL")
    assert len(detect_bimodal_latency(case, min_samples=1)) == 0
    # zero and constant durations: nothing to fit
    case2 = _case(np.full(300, 50.0))
    assert len(detect_bimodal_latency(case2)) == 0


# -- synth scenarios ----------------------------------------------------------------------------
@pytest.mark.slow
def test_synth_bimodal_latency_scenario_finds_the_pool_timeout(synth_case):
    case, truth = synth_case("bimodal_latency")
    found = {(r["service"], r["operation"]): r for r in detect_bimodal_latency(case, min_samples=150).records()
             if r["evidence"]["side"] == "server"}
    for exp in truth.expected:
        r = found[(exp["service"], exp["operation"])]
        slow = r["evidence"]["modes"][1]
        assert slow["centre_ms"] == pytest.approx(exp["numbers"]["timeout_ms"], rel=0.05)
        assert r["evidence"]["nearest_round_timeout_ms"] == 1000 and slow["error_share"] > 0.5


@pytest.mark.slow
def test_synth_clean_scenario_has_no_bimodal_latency(synth_case):
    case, _ = synth_case("clean")
    assert len(detect_bimodal_latency(case, min_samples=150).at_least("medium")) == 0
