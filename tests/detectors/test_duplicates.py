"""Duplicate span rows (overlapping exports) change no detector's answer (#16, item 8)."""
from __future__ import annotations

import pytest

import forensics
from forensics._duplicates import count_duplicate_rows, unique_spans
from forensics.detectors import detectors
from forensics.synth.builder import SpanBuilder

from conftest import BASE, case_from_arrow

#: synth incidents that, together, give every registered detector findings (explain: near misses too)
SCENARIOS = ("n_plus_one", "retry_storm", "bimodal_latency", "clock_skew")


def _copy(case: forensics.Case, times: int) -> forensics.Case:
    """A new case holding ``case``'s spans ``times`` times over (and its events and logs once)."""
    spans = case.sql("SELECT * FROM spans").to_arrow()
    out = case_from_arrow(spans)
    for _ in range(times - 1):
        out.con.register("_again", spans)
        out.execute("INSERT INTO spans BY NAME SELECT * FROM _again")
        out.con.unregister("_again")
    for table in ("events", "logs"):
        out.con.register("_t", case.sql(f"SELECT * FROM {table}").to_arrow())
        out.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _t")
        out.con.unregister("_t")
    return out


@pytest.mark.slow
def test_every_detector_gives_the_same_findings_on_duplicated_rows(synth_case):
    seen = set()
    for name in SCENARIOS:
        case, _ = synth_case(name, traces=300, seed=3)
        once = forensics.detect(_copy(case, 1), explain=True).records()
        twice = _copy(case, 2)
        assert count_duplicate_rows(twice) == case.sql("SELECT count(*) FROM spans").scalar()
        assert forensics.detect(twice, explain=True).records() == once, name
        seen |= {f["detector"] for f in once}
    assert seen == set(detectors()), f"no finding (not even a near miss) from {set(detectors()) - seen}"


def test_each_detector_called_directly_sees_each_span_once():
    """Calling a detector function (not through forensics.detect) hides repeated rows too."""
    from forensics.detectors.error_origin import detect_error_origin

    b = SpanBuilder(BASE, source_file="download-1.json")
    for i in range(4):
        root = b.span("web", "GET /checkout", kind="server", start_ms=i * 1000, duration_ms=80, status="error")
        b.span("payments", "POST /charge", kind="server", parent=root, start_ms=i * 1000 + 5, duration_ms=60,
               status="error", status_message="card declined")
    case = forensics.open_case()
    b.insert(case)
    once = detect_error_origin(case).records()
    case.execute("INSERT INTO spans SELECT * REPLACE ('download-2.json' AS source_file) FROM spans")
    assert detect_error_origin(case).records() == once
    assert once[0]["evidence"]["failing_traces"] == 4


def test_unique_spans_keeps_the_complete_row_and_zipkin_shared_halves():
    b = SpanBuilder(BASE)
    root = b.span("web", "GET /", kind="server", duration_ms=50)
    b.span("web", "GET", kind="client", parent=root, start_ms=5, duration_ms=30)
    case = forensics.open_case()
    b.insert(case)
    # a Zipkin shared span: the server half has the client's span id (another kind: not a duplicate)
    case.execute("INSERT INTO spans SELECT * REPLACE ('api' AS service, 'server' AS kind) FROM spans "
                 "WHERE kind = 'client'")
    # a partial flush of the root: same span, no end time
    case.execute("INSERT INTO spans SELECT * REPLACE (NULL AS end_time, NULL AS duration_ms, 'late.json' AS "
                 "source_file) FROM spans WHERE parent_span_id IS NULL")
    assert count_duplicate_rows(case) == 1
    with unique_spans(case) as hidden:
        assert hidden == 1
        rows = case.sql("SELECT service, kind, duration_ms FROM spans ORDER BY service, kind").rows()
        with unique_spans(case) as nested:  # nested use keeps the outer view
            assert nested == 0 and case.sql("SELECT count(*) FROM spans").scalar() == 3
    assert rows == [("api", "server", 30.0), ("web", "client", 30.0), ("web", "server", 50.0)]
    assert case.sql("SELECT count(*) FROM spans").scalar() == 4  # the table itself is untouched


def test_read_only_case_file_with_duplicates(tmp_path):
    path = tmp_path / "dup-case.duckdb"
    b = SpanBuilder(BASE)
    b.span("web", "GET /", kind="server", duration_ms=50)
    with forensics.open_case(path) as case:
        b.insert(case)
        b.insert(case)
    with forensics.open_case(path, read_only=True) as case:
        with unique_spans(case) as hidden:
            assert hidden == 1 and case.sql("SELECT count(*) FROM spans").scalar() == 1
        assert case.sql("SELECT count(*) FROM spans").scalar() == 2
