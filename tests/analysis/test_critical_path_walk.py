"""critical_path: the set-based walk against a direct, per-trace implementation of Jaeger's walk.

Random traces with integer-millisecond times provoke the hard cases: siblings that touch, that
end at the same time, that overlap their parent or lie outside it, long sequential chains
(longer than a power of two, for the pointer doubling) and orphans.
"""
from __future__ import annotations

import importlib
import random
from datetime import datetime, timezone

import pytest

import forensics
from forensics.analysis.critical_path import critical_path, critical_path_by_operation
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)
cp_module = importlib.import_module("forensics.analysis.critical_path")  # the package exports the function


def _reference(rows: list[dict]) -> dict[str, float]:
    """Self time (ms) of every span on a critical path, computed trace by trace in Python."""
    by_id = {r["span_id"]: r for r in rows}
    kids: dict[str, list[dict]] = {}
    for r in rows:
        if r["parent_span_id"] in by_id:
            kids.setdefault(r["parent_span_id"], []).append(r)
    ms = lambda t: (t - T0).total_seconds() * 1000  # noqa: E731
    out: dict[str, float] = {}

    def walk(span: dict, start: float, end: float, depth: int) -> None:
        # children are clipped to their parent's clipped interval (start/end: the part of the
        # span inside its own parent, and so on up to the root), so nothing sticks out (#16)
        s0, s1 = start, end
        clipped = [(max(ms(k["start_time"]), s0), min(ms(k["end_time"]), s1), k) for k in kids.get(span["span_id"], [])]
        clipped = [c for c in clipped if c[1] > c[0]]
        key = lambda c: (c[1], c[0], c[2]["span_id"])  # noqa: E731 (ends last, then starts last, then id)
        chain, t = [], s1
        while True:
            eligible = [c for c in clipped if c[1] <= t and c not in chain]
            if not eligible:
                break
            best = max(eligible, key=key)
            chain.append(best)
            t = best[0]
        out[span["span_id"]] = (end - start) - sum(c[1] - c[0] for c in chain)
        if depth < cp_module.MAX_DEPTH:
            for cs, ce, k in chain:
                walk(k, cs, ce, depth + 1)

    for r in rows:
        if r["parent_span_id"] not in by_id:
            walk(r, ms(r["start_time"]), ms(r["end_time"]), 0)
    return out


def _random_trace(b: SpanBuilder, rng: random.Random, *, fan: int, depth: int) -> str:
    root = b.span("api", "root", kind="server", start_ms=0, duration_ms=rng.randint(50, 400))

    def grow(parent, p_start: int, p_len: int, level: int) -> None:
        if level >= depth:
            return
        t = p_start + rng.randint(-3, 5)
        for _ in range(rng.randint(0, fan)):
            if rng.random() < 0.5:  # sequential, maybe touching the previous one
                start = t + rng.choice([0, 0, 1, 2])
            else:  # parallel with an earlier start
                start = p_start + rng.randint(-2, max(1, p_len))
            length = rng.choice([0, 1, 5, 10, rng.randint(1, max(2, p_len))])
            child = b.span("svc", f"op{level}", parent=parent, start_ms=start, duration_ms=length)
            t = start + length
            grow(child, start, length, level + 1)

    grow(root, 0, int((b.rows[0]["end_time"] - b.rows[0]["start_time"]).total_seconds() * 1000), 1)
    return root.trace_id


@pytest.mark.parametrize("seed", range(12))
def test_random_traces_match_the_reference_walk(seed):
    rng = random.Random(seed)
    b = SpanBuilder(T0, seed=seed)
    first = len(b.rows)
    trace = _random_trace(b, rng, fan=rng.choice([3, 6, 12]), depth=rng.choice([2, 3, 5]))
    if seed % 3 == 0:  # an orphan subtree: its parent was never exported
        orphan = b.span("svc", "orphan", kind="server", trace_id=trace, start_ms=10, duration_ms=30)
        b.rows[-1]["parent_span_id"] = "f" * 16
        b.span("svc", "leaf", parent=orphan, start_ms=12, duration_ms=5)
    rows = b.rows[first:]
    case = forensics.open_case()
    b.insert(case)
    got = {r["span_id"]: r["self_ms"] for r in critical_path(case, trace).dicts()}
    want = _reference(rows)
    assert got.keys() == want.keys()
    for span_id, self_ms in want.items():
        assert got[span_id] == pytest.approx(self_ms, abs=1e-6), span_id


def test_long_sequential_chain_is_followed_to_its_start():
    """37 touching sequential children: a chain longer than 2**5, found by doubling."""
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=400)
    for i in range(37):
        b.span("db", f"q{i}", kind="client", parent=root, start_ms=10 + i * 10, duration_ms=10)
    case = forensics.open_case()
    b.insert(case)
    rows = critical_path(case, root.trace_id).dicts()
    assert len(rows) == 38 and {r["name"]: r["self_ms"] for r in rows}["root"] == pytest.approx(30)
    assert [r["depth"] for r in rows] == [0] + [1] * 37


def test_siblings_ending_together_the_later_start_then_larger_id_is_critical():
    b = SpanBuilder(T0)
    root = b.span("api", "root", kind="server", duration_ms=100)
    b.span("a", "early", parent=root, start_ms=10, duration_ms=80)
    b.span("a", "late", parent=root, start_ms=50, duration_ms=40)  # ends with "early", started later
    case = forensics.open_case()
    b.insert(case)
    names = {r["name"] for r in critical_path(case, root.trace_id).dicts()}
    assert names == {"root", "late"}
    b2 = SpanBuilder(T0, seed=3)
    root2 = b2.span("api", "root", kind="server", duration_ms=100)
    twins = [b2.span("a", f"twin{i}", parent=root2, start_ms=20, duration_ms=50) for i in range(2)]
    case2 = forensics.open_case()
    b2.insert(case2)
    crit = {r["span_id"] for r in critical_path(case2, root2.trace_id).dicts()}
    assert crit == {root2.span_id, max(t.span_id for t in twins)}


def test_depth_bound_and_cycles():
    b = SpanBuilder(T0)
    parent = b.span("api", "d0", kind="server", duration_ms=100)
    for d in range(1, 6):
        parent = b.span("api", f"d{d}", parent=parent, start_ms=d, duration_ms=100 - 2 * d)
    loop_a = b.span("x", "loop-a", trace_id=parent.trace_id, duration_ms=5)
    loop_b = b.span("x", "loop-b", parent=loop_a, duration_ms=5)
    b.rows[-2]["parent_span_id"] = loop_b.span_id  # a parent cycle is never reached from a root
    case = forensics.open_case()
    b.insert(case)
    with cp_module.critical_spans(case, max_depth=3) as cp:
        names = [r[0] for r in case.sql(f"SELECT name FROM {cp} ORDER BY depth").rows()]
    assert names == ["d0", "d1", "d2", "d3"]


def test_by_operation_with_a_selection_only_counts_those_traces():
    b = SpanBuilder(T0, seed=5)
    for i in range(30):
        root = b.span("api", "GET /a", kind="server", start_ms=i * 1000, duration_ms=100,
                      version="2" if i % 3 == 0 else "1")
        b.span("db", "SELECT", kind="client", parent=root, start_ms=i * 1000 + 10, duration_ms=60,
               attributes={"db.system": "postgresql", "db.statement": "SELECT 1"})
    case = forensics.open_case()
    b.insert(case)
    every = {r["service"]: r for r in critical_path_by_operation(case).dicts()}
    some = {r["service"]: r for r in critical_path_by_operation(case, ("service_version = ?", ["2"])).dicts()}
    assert every["db"]["traces"] == 30 and some["db"]["traces"] == 10
    assert some["db"]["share"] == pytest.approx(0.6) and some["api"]["self_ms"] == pytest.approx(400)
    assert len(some["db"]["exemplar_trace_ids"]) == 5 and some["db"]["source"].startswith("builder:")
    with pytest.raises(forensics.UsageError):
        critical_path_by_operation(case, slow_quantile=1.5)
