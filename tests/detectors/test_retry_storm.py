"""retry_storm: retries after failures in traces, and outbound amplification over inbound."""
from __future__ import annotations

from datetime import timedelta

import pytest

from forensics.detectors.retry_storm import detect_retry_storm
from forensics.synth.builder import SpanBuilder

from conftest import BASE, build_normal_retries, build_orphans, build_retry_storm, case_from_arrow, inventory_call


@pytest.fixture(scope="module")
def storm_spans():
    b = SpanBuilder(BASE, seed=2, source_file="traces.json")
    build_retry_storm(b)
    return b.to_arrow()


@pytest.fixture
def storm_case(storm_spans):
    return case_from_arrow(storm_spans)


def test_storm_found_with_amplification(storm_case):
    found = detect_retry_storm(storm_case)
    assert len(found) == 1
    f = found[0]
    assert (f["service"], f["operation"], f["target"], f["target_operation"], f["version"]) == (
        "checkout-service", "POST /checkout", "payment-service", "POST /charge", "5.0.1")
    assert f["severity"] == "critical"
    ev = f["evidence"]
    assert ev["retried_requests"] == 90 and ev["requests"] == 90  # inside the retry window
    assert ev["window"]["start"].startswith("2026-02-18T10:05:00") and ev["window"]["end"].startswith("2026-02-18T10:08:00")
    assert ev["attempts_per_retried_request"] == {"p50": 4, "p90": 4, "max": 4}
    assert ev["error_share_of_attempts"] == pytest.approx(0.75)
    assert ev["gap_ms_p50"] == pytest.approx(1.0, abs=0.01) and ev["backoff"] is False
    amp = ev["amplification"]
    assert amp["amplification"] == pytest.approx(4.0) and amp["amplified_buckets"] == 3
    assert amp["window_start"].startswith("2026-02-18T10:05:00") and amp["window_end"].startswith("2026-02-18T10:08:00")
    assert f["start_time"] >= BASE + timedelta(minutes=5) and f["end_time"] <= BASE + timedelta(minutes=8, seconds=5)
    assert len(ev["exemplar_trace_ids"]) == 5 and ev["source"].startswith("traces.json:")
    assert "no backoff" in f["summary"] and "rose 4x" in f["summary"]


def test_retries_detected_from_error_siblings_without_attributes(make_case):
    def build(b: SpanBuilder) -> None:
        build_retry_storm(b, minutes=6, storm=(0, 6), attempts=3, gap_ms=250.0)
        for r in b.rows:
            r["attributes"] = [kv for kv in r["attributes"] if kv[0] != "http.request.resend_count"]
    f = detect_retry_storm(make_case(build))[0]
    ev = f["evidence"]
    assert ev["retry_attributes"] is False and ev["retries"] == 2 * 180
    assert ev["gap_ms_p50"] == pytest.approx(250.0) and ev["backoff"] is True
    assert ev["amplification"] is None  # retries all along: no rise over the baseline
    assert "fixed backoff" in f["summary"]


def test_normal_retries_with_backoff_are_not_flagged(make_case, clean_case, flagship_case):
    case = make_case(build_normal_retries)
    assert len(detect_retry_storm(case)) == 0
    (miss,) = [m for m in detect_retry_storm(case, explain=True) if m["evidence"].get("skipped") is None]
    assert miss["severity"] == "info"
    assert miss["evidence"]["failed"] == ["min_retry_share"]
    assert miss["evidence"]["backoff"] is True
    # the clean shapes (40 s of traffic) and the flagship N+1: no retries; with explain, only the
    # note that amplification was not judged for too little data
    for other in (clean_case, flagship_case):
        (note,) = detect_retry_storm(other, explain=True).records()
        assert note["severity"] == "info" and note["evidence"]["skipped"] == "too little data"


def test_near_threshold(make_case):
    case = make_case(build_normal_retries, requests=300, retried=30)  # 30 retried, 30/330 = 9.1 %
    assert len(detect_retry_storm(case)) == 0
    assert detect_retry_storm(case, explain=True)[0]["evidence"]["failed"] == ["min_retry_share"]
    found = detect_retry_storm(case, min_retry_share=0.09)
    assert len(found) == 1 and found[0]["severity"] == "medium"


def test_amplification_only(make_case):
    """No retries visible in traces (parallel hedged calls, a third failing) for 4 minutes, flat
    inbound: found by amplification alone. The same extra calls all succeeding are a fan-out
    change, reported only as a near miss."""
    def build(b: SpanBuilder) -> None:
        for m in range(10):
            for k in range(30):
                t = m * 60_000 + k * 2000.0
                root = b.span("catalog-service", "GET /search", kind="server", start_ms=t, duration_ms=500,
                              version="1.8.0", attributes={"http.route": "/search", "http.request.method": "GET"})
                for i in range(3 if 4 <= m < 8 else 1):
                    fail = i == 0 and 4 <= m < 8 and failing
                    inventory_call(b, root, t + 2, 4.0, 100 + i, version="1.8.0",
                                   status="error" if fail else "unset", http_status=503 if fail else 200)
    failing = True
    found = detect_retry_storm(make_case(build))
    assert len(found) == 1
    f = found[0]
    assert (f["service"], f["operation"], f["target"], f["target_operation"]) == (
        "catalog-service", None, "inventory-service", "GET /inventory/{id}")
    assert f["evidence"]["amplification"]["amplified_buckets"] == 4
    assert f["severity"] == "high" and len(f["evidence"]["exemplar_trace_ids"]) == 5
    assert f["start_time"] == BASE + timedelta(minutes=4) and f["end_time"] == BASE + timedelta(minutes=8)
    assert f["evidence"]["amplification"]["error_share"] == pytest.approx(1 / 3)
    assert len(detect_retry_storm(make_case(build), min_amplified_buckets=5)) == 0
    failing = False
    case = make_case(build)
    assert len(detect_retry_storm(case)) == 0
    miss = detect_retry_storm(case, explain=True)
    assert [m["evidence"]["failed"] for m in miss] == [["min_amplified_error_share"]]


def test_bad_or_missing_data(make_case, empty_case):
    assert len(detect_retry_storm(empty_case, explain=True)) == 0

    def only_skipped(found) -> bool:  # nothing but the note that amplification was not judged
        return [f["evidence"].get("skipped") for f in found] == ["too little data"]

    orphans = make_case(build_orphans, calls=20, status="error", http_status=503)
    assert len(detect_retry_storm(orphans)) == 0 and only_skipped(detect_retry_storm(orphans, explain=True))

    def one_call(b: SpanBuilder) -> None:
        root = b.span("a", "GET /", kind="server", duration_ms=10)
        b.span("a", "GET", kind="client", parent=root, duration_ms=5, status="error")
    assert only_skipped(detect_retry_storm(make_case(one_call), explain=True))
