"""clock_skew: a host 50 ms ahead is found and corrected; synchronized hosts are not flagged."""
from datetime import datetime, timezone

import pytest

import forensics
from forensics.analysis.clock_skew import adjust_clock_skew
from forensics.errors import CaseError
from forensics.detectors.clock_skew import detect_clock_skew
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def _case(n=20, skew_ms=50.0, lead_ms=2.0):
    """api-1 calls inventory on inv-1 (even traces) or inv-2 (odd, clock ``skew_ms`` ahead);
    inventory queries its DB in-process and calls pricing on pr-1 (synchronized)."""
    b = SpanBuilder(T0, seed=4)
    for i in range(n):
        t = i * 1000.0
        host, skew = ("inv-2", skew_ms) if i % 2 else ("inv-1", 0.0)
        root = b.span("api", "GET /items", kind="server", start_ms=t, duration_ms=100, host="api-1")
        call = b.span("api", "GET", kind="client", parent=root, start_ms=t + 10, duration_ms=50, host="api-1",
                      attributes={"peer.service": "inventory"})
        srv = b.span("inventory", "GET /inventory", kind="server", parent=call, start_ms=t + 10 + lead_ms + skew,
                     duration_ms=46, host=host)
        b.span("inventory", "SELECT items", kind="client", parent=srv, start_ms=t + 15 + skew, duration_ms=10,
               host=host, attributes={"db.system": "postgresql"})
        pc = b.span("inventory", "GET", kind="client", parent=srv, start_ms=t + 30 + skew, duration_ms=20,
                    host=host, attributes={"peer.service": "pricing"})
        b.span("pricing", "GET /price", kind="server", parent=pc, start_ms=t + 31, duration_ms=18, host="pr-1")
    case = forensics.open_case()
    b.insert(case)
    return case


def test_skewed_host_is_found_with_its_offset():
    f = detect_clock_skew(_case()).records()
    assert [r["evidence"]["host"] for r in f] == ["inv-2"]
    r = f[0]
    assert r["severity"] == "medium" and r["service"] == "inventory"
    ev = r["evidence"]
    assert ev["offset_ms"] == pytest.approx(50.0) and ev["violations"] == 10 and ev["pairs"] == 10
    assert ev["caller_host"] == "api-1" and len(ev["exemplar_trace_ids"]) == 5
    assert "50 ms ahead" in r["summary"]
    # pr-1 sticks out of its (skewed) caller inv-2 by 50 ms, but is judged against the caller's
    # corrected times, so it is not blamed


def test_adjust_clock_skew_moves_the_skewed_subtree_and_keeps_raw_times():
    case = _case()
    assert adjust_clock_skew(case) == 10 * 3  # server, db and pricing-client spans of inv-2 traces
    rows = case.sql("""SELECT host_name, name, epoch_ms(start_time) - epoch_ms(adj_start_time) AS moved_ms
                       FROM spans WHERE host_name IN ('inv-2', 'pr-1')""").dicts()
    assert {r["moved_ms"] for r in rows if r["host_name"] == "inv-2"} == {50}
    assert {r["moved_ms"] for r in rows if r["host_name"] == "pr-1"} == {0}
    bad = case.sql("""SELECT count(*) FROM spans c JOIN spans p ON p.span_id = c.parent_span_id
                      WHERE c.adj_start_time < p.adj_start_time OR c.adj_end_time > p.adj_end_time""").scalar()
    assert bad == 0
    assert len(detect_clock_skew(case)) == 1  # the detector still reads the raw times
    assert adjust_clock_skew(case) == 30  # idempotent


def test_synchronized_hosts_and_tolerance():
    assert len(detect_clock_skew(_case(skew_ms=0.0))) == 0
    slight = _case(skew_ms=0.0, lead_ms=-0.5)  # every server span starts 0.5 ms early
    assert len(detect_clock_skew(slight)) == 0
    strict = {r["evidence"]["host"]: r for r in detect_clock_skew(slight, tolerance_ms=0.1).records()}
    assert {"inv-1", "inv-2"} <= set(strict)
    assert strict["inv-1"]["evidence"]["offset_ms"] == pytest.approx(-2.5)  # midpoint: 0.5 early, 4.5 short
    assert adjust_clock_skew(slight) == 0
    few = detect_clock_skew(_case(n=4), min_violations=3, explain=True).records()
    assert few[0]["severity"] == "info" and few[0]["evidence"]["failed"] == ["min_violations"]


def test_bad_input():
    empty = forensics.open_case()
    assert len(detect_clock_skew(empty)) == 0
    assert adjust_clock_skew(empty) == 0
    b = SpanBuilder(T0)
    b.span("a", "op", kind="server", duration_ms=5)
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_clock_skew(case)) == 0 and adjust_clock_skew(case) == 0
    with pytest.raises(forensics.UsageError):
        adjust_clock_skew(case, tolerance_ms=-1)


def test_adjust_on_read_only_case_is_a_clear_error(tmp_path):
    path = tmp_path / "c.duckdb"
    with forensics.open_case(path) as case:
        b = SpanBuilder(T0)
        b.span("a", "op", kind="server", duration_ms=5)
        b.insert(case)
    with forensics.open_case(path, read_only=True) as ro:
        assert len(detect_clock_skew(ro)) == 0  # detection only reads
        with pytest.raises(CaseError, match="open the case writable"):
            adjust_clock_skew(ro)


@pytest.mark.slow
def test_synth_clock_skew_scenario_finds_the_pod(synth_case):
    case, truth = synth_case("clock_skew", traces=400)
    exp = truth.expected[0]
    f = detect_clock_skew(case).records()
    assert [r["evidence"]["host"] for r in f] == [exp["numbers"]["host"]]
    assert f[0]["service"] == exp["service"]
    assert f[0]["evidence"]["offset_ms"] == pytest.approx(exp["numbers"]["skew_ms"], rel=0.1)


@pytest.mark.slow
def test_synth_clean_scenario_has_no_clock_skew(synth_case):
    case, _ = synth_case("clean")
    assert len(detect_clock_skew(case)) == 0
