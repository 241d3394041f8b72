"""critical_path: hand-built traces with known critical paths, and the detector."""
from datetime import datetime, timedelta, timezone

import pytest

import forensics
from forensics.analysis.critical_path import critical_path, critical_path_by_operation
from forensics.detectors.critical_path import detect_critical_path
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def _path(b: SpanBuilder, trace_id: str) -> dict[str, float]:
    case = forensics.open_case()
    b.insert(case)
    rows = critical_path(case, trace_id).dicts()
    assert sum(r["self_ms"] for r in rows) == pytest.approx(rows[0]["root_ms"])
    return {r["name"]: r["self_ms"] for r in rows}


@pytest.mark.parametrize("children, expected", [
    pytest.param([("A", 0, 40), ("B", 40, 50)], {"root": 10, "A": 40, "B": 50}, id="sequential-touching"),
    pytest.param([("A", 10, 70), ("B", 20, 40)], {"root": 30, "A": 70}, id="parallel-last-finishing"),
    pytest.param([("A", 10, 20), ("B", 50, 20)], {"root": 60, "A": 20, "B": 20}, id="gaps-are-parent-self-time"),
])
def test_children_of_the_root(children, expected):
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=100)
    for name, start, dur in children:
        b.span("api", name, parent=root, start_ms=start, duration_ms=dur)
    assert _path(b, root.trace_id) == expected


def test_nested_overlapping_grandchildren_and_overflowing_child():
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=100)
    a = b.span("api", "A", parent=root, start_ms=10, duration_ms=80)
    b.span("db", "A1", parent=a, start_ms=20, duration_ms=30)
    b.span("db", "A2", parent=a, start_ms=40, duration_ms=45)
    assert _path(b, root.trace_id) == {"root": 20, "A": 35, "A2": 45}
    b2 = SpanBuilder(T0)
    root2 = b2.span("api", "root", kind="server", duration_ms=100)
    b2.span("api", "late", parent=root2, start_ms=50, duration_ms=70)  # ends 20 ms after its parent
    b2.span("api", "outside", parent=root2, start_ms=150, duration_ms=10)
    assert _path(b2, root2.trace_id) == {"root": 50, "late": 50}


def test_grandchildren_are_clipped_to_their_clipped_parent():
    """Async work: B ends 60 ms after the root; its child E and E's child F run past the root's
    end too, and D runs entirely after it. The root's 100 ms are the whole path: each span is
    clipped to its parent's *clipped* interval (shares never exceed 100%)."""
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=100)
    late = b.span("api", "B", parent=root, start_ms=50, duration_ms=110)  # 50-160: 50-100 counts
    b.span("db", "D", parent=late, start_ms=120, duration_ms=20)  # inside B, after the root ended
    deep = b.span("db", "E", parent=late, start_ms=55, duration_ms=80)  # 55-135, inside B: 55-100 counts
    b.span("db", "F", parent=deep, start_ms=60, duration_ms=70)  # 60-130, inside E: 60-100 counts
    assert _path(b, root.trace_id) == {"root": 50, "B": 5, "E": 5, "F": 40}


def test_orphan_subtree_is_walked_from_its_own_root_and_unknown_trace_is_empty():
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=100, trace_id="ab" * 16)
    orphan = b.span("svc", "orphan", kind="server", duration_ms=30, trace_id="ab" * 16)
    b.rows[-1]["parent_span_id"] = "f" * 16  # parent never exported
    b.span("svc", "leaf", parent=orphan, start_ms=5, duration_ms=10)
    case = forensics.open_case()
    b.insert(case)
    rows = critical_path(case, root.trace_id.upper()).dicts()
    by_root = {}
    for r in rows:
        by_root.setdefault(r["root_span_id"], 0.0)
        by_root[r["root_span_id"]] += r["self_ms"]
    assert sorted(by_root.values()) == [30, 100]
    assert len(critical_path(case, "0" * 32)) == 0
    with pytest.raises(forensics.UsageError):
        critical_path(case, "")


def _search_traces(n=100, slow=5, slow_ms=900.0):
    b = SpanBuilder(T0, seed=2)
    for i in range(n):
        inv = slow_ms if i < slow else 20.0 + i % 7
        total = inv + 80.0
        root = b.span("catalog-service", "GET /search", kind="server", start_ms=i * 1000, duration_ms=total)
        call = b.span("catalog-service", "GET", kind="client", parent=root, start_ms=i * 1000 + 40,
                      duration_ms=inv + 2, attributes={"peer.service": "inventory-service",
                                                       "http.request.method": "GET",
                                                       "url.template": "/inventory/{id}"})
        b.span("inventory-service", "GET /inventory/{id}", kind="server", parent=call,
               start_ms=i * 1000 + 41, duration_ms=inv)
    case = forensics.open_case()
    b.insert(case)
    return case


def test_aggregate_shares_and_detector_finds_dominating_dependency():
    case = _search_traces(n=200, slow=10)
    agg = {(r["service"], r["operation"]): r for r in critical_path_by_operation(case).dicts()}
    inv = agg[("inventory-service", "GET /inventory/{id}")]
    assert inv["traces"] == 200 and inv["slow_traces"] == 10
    assert inv["slow_share"] == pytest.approx(900 / 980)
    assert sum(r["share"] for r in agg.values()) == pytest.approx(1.0)
    f = detect_critical_path(case).records()
    assert [(r["service"], r["severity"]) for r in f] == [("inventory-service", "medium")]
    ev = f[0]["evidence"]
    assert ev["slow_traces"] == 10 and len(ev["exemplar_trace_ids"]) == 5 and ev["self_ratio"] > 5
    assert detect_critical_path(_search_traces(n=100, slow=5)).records()[0]["severity"] == "low"  # 5 slow traces
    assert ev["entry_operation"] == "GET /search" and ev["source"].startswith("builder:")
    assert f[0]["start_time"] == T0 + timedelta(milliseconds=41)  # the first slow trace's inventory span
    assert "inventory-service GET /inventory/{id} accounts for 92%" in f[0]["summary"]


def test_uniform_traces_give_no_medium_finding_and_thresholds_apply():
    case = _search_traces(slow=0)
    assert not [r for r in detect_critical_path(case).records() if r["severity"] != "low"]
    assert len(detect_critical_path(_search_traces(n=10, slow=1))) == 0  # below min_traces
    near = detect_critical_path(_search_traces(n=10, slow=1), explain=True).records()
    assert near and all(r["evidence"]["failed"] == ["min_traces"] for r in near)
    (skipped,) = [r for r in near if "skipped" in r["evidence"]]
    assert skipped["evidence"]["skipped"][0]["label"] == "catalog-service GET /search"
    assert skipped["summary"] == ("Not tested for too little data (fewer than 20 traces, min_traces): "
                                  "catalog-service GET /search (10).")


def test_duplicate_rows_from_overlapping_exports_change_nothing():
    """Three overlapping downloads of the same traces (every row loaded three times, from three
    files): same path, same shares (never above 100%), same findings."""
    case = _search_traces(n=60, slow=6)
    once = critical_path_by_operation(case).dicts()
    found = detect_critical_path(case, min_traces=20).records()
    trace_id = case.sql("SELECT min(trace_id) FROM spans").scalar()
    path = critical_path(case, trace_id).dicts()
    case.execute("INSERT INTO spans SELECT * REPLACE ('download-2.json' AS source_file) FROM spans")
    case.execute("INSERT INTO spans SELECT * REPLACE ('download-3.json' AS source_file) FROM spans "
                 "WHERE source_file = 'builder'")
    assert case.sql("SELECT count(*) FROM spans").scalar() == 3 * case.sql(
        "SELECT count(DISTINCT (trace_id, span_id)) FROM spans").scalar()
    assert critical_path(case, trace_id).dicts() == path
    thrice = critical_path_by_operation(case).dicts()
    assert thrice == once and max(r["slow_share"] for r in thrice) <= 1.0
    assert detect_critical_path(case, min_traces=20).records() == found


def test_bad_input_gives_empty_findings():
    assert len(detect_critical_path(forensics.open_case())) == 0
    b = SpanBuilder(T0)
    b.span("a", "op", kind="server", duration_ms=5)
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_critical_path(case, min_traces=1)) == 0
    case.execute("UPDATE spans SET end_time = NULL, duration_ms = NULL")
    assert len(detect_critical_path(case, min_traces=1)) == 0
    assert len(critical_path_by_operation(case)) == 0


@pytest.mark.slow
def test_synth_pool_wait_dominates_slow_traces(synth_case):
    case, _ = synth_case("bimodal_latency")
    medium = detect_critical_path(case).at_least("medium").records()
    assert medium and {r["service"] for r in medium} == {"catalog-service"}
    assert all(r["evidence"]["slow_share"] > 0.5 for r in medium)


@pytest.mark.slow
def test_synth_clean_scenario_critical_path_nothing_above_low(synth_case):
    case, _ = synth_case("clean")
    assert len(detect_critical_path(case).at_least("medium")) == 0
