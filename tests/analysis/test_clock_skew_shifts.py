"""clock_skew analysis: shifts accumulate down the call tree; walk_down, the set-based walk."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

import forensics
from forensics.analysis._tree import walk_down
from forensics.analysis.clock_skew import adjust_clock_skew, edges_sql, span_shifts
from forensics.detectors._common import temp_table
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def _two_hops(n: int = 12) -> forensics.Case:
    """api-1 -> inventory on inv-2 (clock 50 ms ahead) -> pricing on pr-2 (80 ms ahead)."""
    b = SpanBuilder(T0, seed=8)
    for i in range(n):
        t = i * 1000.0
        root = b.span("api", "GET /items", kind="server", start_ms=t, duration_ms=100, host="api-1")
        call = b.span("api", "GET", kind="client", parent=root, start_ms=t + 10, duration_ms=60, host="api-1")
        srv = b.span("inventory", "GET /inventory", kind="server", parent=call, start_ms=t + 12 + 50,
                     duration_ms=56, host="inv-2")
        pc = b.span("inventory", "GET", kind="client", parent=srv, start_ms=t + 20 + 50, duration_ms=30, host="inv-2")
        b.span("pricing", "GET /price", kind="server", parent=pc, start_ms=t + 22 + 80, duration_ms=26, host="pr-2")
    case = forensics.open_case()
    b.insert(case)
    return case


def test_shifts_accumulate_across_two_skewed_hops():
    case = _two_hops()
    with temp_table(case, edges_sql()) as edges, span_shifts(case, edges) as shifts:
        got = case.sql(f"""SELECT s.host_name, min(t.shift_us), max(t.shift_us), count(*) FROM spans s
                           JOIN {shifts} t ON t.sid = hash(s.trace_id, s.span_id) GROUP BY 1 ORDER BY 1""").rows()
    assert got == [("inv-2", 50_000, 50_000, 24), ("pr-2", 80_000, 80_000, 12)]
    assert adjust_clock_skew(case) == 36
    bad = case.sql("""SELECT count(*) FROM spans c JOIN spans p ON p.span_id = c.parent_span_id
                      WHERE c.adj_start_time < p.adj_start_time OR c.adj_end_time > p.adj_end_time""").scalar()
    assert bad == 0
    # the walk stops at max_depth: pricing (depth 4) keeps its raw times
    assert adjust_clock_skew(case, max_depth=3) == 24


def test_detector_reports_offsets_against_the_root_clock():
    """pr-2 sticks out of its caller by 30 ms, but its caller is itself 50 ms ahead: judged
    against the caller's corrected times, pr-2 is 80 ms ahead."""
    from forensics.detectors.clock_skew import detect_clock_skew

    found = {r["evidence"]["host"]: r["evidence"]["offset_ms"] for r in detect_clock_skew(_two_hops()).records()}
    assert found == {"inv-2": pytest.approx(50.0), "pr-2": pytest.approx(80.0)}


def _forest(case: forensics.Case, rows: list[tuple]) -> None:
    case.execute("CREATE TABLE forest (sid BIGINT, anc BIGINT, val DOUBLE, label VARCHAR)")
    for row in rows:
        case.execute("INSERT INTO forest VALUES (?, ?, ?, ?)", list(row))


def test_walk_down_sums_depths_roots_and_carried_columns():
    case = forensics.open_case()
    _forest(case, [(1, None, 0, "r1"), (2, 1, 5, "a"), (3, 2, 7, "b"), (4, 1, -1, "c"),
                   (10, None, 1, "r2"), (11, 10, 2, "d"),
                   (20, 99, 3, "orphan"),                 # its parent is not a node
                   (30, 31, 1, "loop"), (31, 30, 1, "loop")])  # never reached from a root
    with walk_down(case, "forest", keep=("label",)) as walk:
        got = {r[0]: r[1:] for r in case.sql(f"SELECT sid, top, depth, total, label FROM {walk} w").rows()}
    assert got == {1: (1, 0, 0.0, "r1"), 2: (1, 1, 5.0, "a"), 3: (1, 2, 12.0, "b"), 4: (1, 1, -1.0, "c"),
                   10: (10, 0, 1.0, "r2"), 11: (10, 1, 3.0, "d")}
    with walk_down(case, "forest", max_depth=1) as walk:
        assert sorted(r[0] for r in case.sql(f"SELECT sid FROM {walk} w").rows()) == [1, 2, 4, 10, 11]


def test_walk_down_of_an_empty_forest_is_empty():
    case = forensics.open_case()
    _forest(case, [])
    with walk_down(case, "forest") as walk:
        assert case.sql(f"SELECT count(*) FROM {walk} w").scalar() == 0
