"""rank_causes on a traced shop with injected faults (tests/causes/faultapp.py), a healthy run, and bad input.

Each fault is injected into one service for the second half of a capture: the ranking must name
that service first and call it a strong candidate; on a healthy capture it must say that no
candidate is strong rather than name one.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import forensics
from forensics.causes import Causes, rank_causes
from forensics.errors import UsageError
from forensics.synth.builder import SpanBuilder

from .faultapp import BASE, capture

#: one (fault, target) per fault type; tests/causes/test_accuracy.py covers every target
CASES = [("network_delay", "payment"), ("cpu_contention", "catalog"), ("cpu_consumption", "cart"),
         ("exception", "payment"), ("return", "catalog")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{k}-{t}" for k, t in CASES])
def faulty(request):
    kind, target = request.param
    case, app = capture(kind, target, seed=11)
    return kind, target, case, app


def test_the_injected_service_ranks_first_and_strong(faulty):
    kind, target, case, app = faulty
    causes = rank_causes(case, window=(app.onset, None))
    top = causes.top
    assert top is not None, causes
    assert top["service"] == target, causes
    assert causes[1]["score"] < top["score"]
    assert top["summary"].startswith(f"{target} changed most: ")
    # evidence: the signals that moved, in natural units, with exemplar traces that exist
    ev = top["evidence"]
    assert ev["signals"] and all(s["z"] is not None for s in ev["signals"])
    assert ev["exemplar_trace_ids"]
    found = case.sql("SELECT count(DISTINCT trace_id) FROM spans WHERE trace_id IN (SELECT unnest(?::VARCHAR[]))",
                     [ev["exemplar_trace_ids"]]).scalar()
    assert found == len(ev["exemplar_trace_ids"])


#: the signal groups each fault moves at its service (the strongest comes first)
EXPECTED_GROUPS = {"network_delay": {"network"}, "cpu_contention": {"own time", "resources"},
                   "cpu_consumption": {"own time", "resources"}, "exception": {"errors", "logs"}, "return": {"calls", "logs"}}


def test_the_strongest_signals_are_the_ones_the_fault_moves(faulty):
    kind, target, case, app = faulty
    top = rank_causes(case, window=(app.onset, None)).top
    groups = top["signals"].split(", ")
    assert groups[0] in EXPECTED_GROUPS[kind]
    assert EXPECTED_GROUPS[kind] <= set(groups)


def test_runners_up_say_why_they_rank_lower(faulty):
    kind, target, case, app = faulty
    causes = rank_causes(case, window=(app.onset, None))
    second = causes[1]
    assert second["explain"].startswith("rank 2, score ")
    assert f"below {target} (score " in second["explain"]


def test_masked_wrong_values_count_for_the_callee_not_the_callers_that_log_them():
    case, app = capture("return", "cart", seed=5)
    causes = rank_causes(case, window=(app.onset, None))
    assert causes.top["service"] == "cart"
    checkout = next(r for r in causes if r["service"] == "checkout")
    assert "they follow from its callee cart" in checkout["explain"]


def test_a_masked_exception_counts_for_the_service_that_raised_it():
    case, app = capture("exception", "cart", seed=6)
    causes = rank_causes(case, window=(app.onset, None))
    assert causes.top["service"] == "cart"
    # checkout's "cart unavailable" lines follow failed calls to cart: they are cart's evidence
    keys = [s["key"] for s in causes.top["evidence"]["signals"]]
    assert any(k.startswith("checkout: cart of user") for k in keys), keys


# -- healthy ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def healthy():
    return capture(None, seed=21)


def test_a_healthy_capture_has_no_onset_and_says_so(healthy):
    case, app = healthy
    causes = rank_causes(case)
    assert len(causes) == 0 and causes.periods is None
    assert "nothing to explain" in causes.note
    assert causes.top is None


def test_a_healthy_capture_compared_at_a_given_time_names_no_strong_candidate(healthy):
    case, app = healthy
    causes = rank_causes(case, window=(app.onset, None))
    assert len(causes) > 0
    assert not any(r["strong"] for r in causes), causes
    assert causes.top is None
    assert causes.note.startswith("no strong candidate")


# -- the table ------------------------------------------------------------------------------------
def test_causes_converts_and_renders_escaped():
    case, app = capture("cpu_consumption", "payment", seed=3)
    causes = rank_causes(case, window=(app.onset.isoformat(), ""))
    df = causes.to_pandas()
    assert list(df.columns) == list(Causes.empty().to_arrow().column_names)
    assert df["rank"].tolist() == list(range(1, len(df) + 1))
    assert causes.to_arrow().num_rows == len(causes)
    html = causes._repr_html_()
    assert "<table>" in html and "payment" in html
    d = causes.to_dict()
    assert d["periods"]["how"] == "given" and d["causes"][0]["service"] == "payment"


def test_hostile_names_are_escaped_in_html():
    b = SpanBuilder(BASE, seed=2)
    evil = "<script>alert(1)</script>"
    for i in range(400):
        slow = i >= 200
        root = b.span(evil, "GET /x", kind="server", start_ms=i * 1000.0, duration_ms=80.0 if slow else 5.0,
                      attributes={"http.route": "/x", "http.method": "GET"})
        b.span(evil, "work", parent=root, start_ms=i * 1000.0 + 1, duration_ms=1.0)
    case = forensics.open_case()
    b.insert(case)
    causes = rank_causes(case, window=(BASE + timedelta(seconds=200), None))
    assert causes.top["service"] == evil
    html = causes._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- own time, not inherited time --------------------------------------------------------------------
def _chain(slow_at: str) -> forensics.Case:
    """gateway -> api -> db-service; from request 200 on, ``slow_at``'s own work takes 60 ms more."""
    b = SpanBuilder(BASE, seed=4)
    for i in range(400):
        t = i * 500.0
        extra = {s: (60.0 if (i >= 200 and s == slow_at) else 0.0) for s in ("gateway", "api", "store")}
        jitter = (i * 7919) % 5 * 0.3
        store_ms = 4.0 + jitter + extra["store"]
        api_ms = 3.0 + extra["api"] + store_ms + 1.0
        gw_ms = 2.0 + extra["gateway"] + api_ms + 1.0
        root = b.span("gateway", "GET /page", kind="server", start_ms=t, duration_ms=gw_ms,
                      attributes={"http.route": "/page", "http.method": "GET"})
        c1 = b.span("gateway", "GET", kind="client", parent=root, start_ms=t + 1 + extra["gateway"], duration_ms=api_ms,
                    attributes={"http.url": "http://api/items", "http.method": "GET"})
        s1 = b.span("api", "GET /items", kind="server", parent=c1, start_ms=t + 1.3 + extra["gateway"],
                    duration_ms=api_ms - 0.6, attributes={"http.route": "/items", "http.method": "GET"})
        c2 = b.span("api", "GET", kind="client", parent=s1, start_ms=t + 2 + extra["gateway"] + extra["api"],
                    duration_ms=store_ms + 0.6, attributes={"http.url": "http://store/rows", "http.method": "GET"})
        b.span("store", "GET /rows", kind="server", parent=c2, start_ms=t + 2.3 + extra["gateway"] + extra["api"],
               duration_ms=store_ms, attributes={"http.route": "/rows", "http.method": "GET"})
    case = forensics.open_case()
    b.insert(case)
    return case


@pytest.mark.parametrize("slow_at", ["gateway", "api", "store"])
def test_the_service_whose_own_time_grew_is_charged_not_its_callers(slow_at):
    causes = rank_causes(_chain(slow_at), window=(BASE + timedelta(seconds=100), None))
    assert causes.top["service"] == slow_at
    assert causes.top["signals"].startswith("own time")
    others = [r for r in causes if r["service"] != slow_at]
    assert all(not r["strong"] for r in others), causes


def test_the_onset_is_found_from_the_entry_points_latency():
    causes = rank_causes(_chain("store"))
    assert causes.periods.how == "onset"
    assert abs((causes.periods.window_start - (BASE + timedelta(seconds=100))).total_seconds()) < 10
    assert causes.top["service"] == "store"


# -- bad input --------------------------------------------------------------------------------------
def test_an_empty_case_is_a_usage_error():
    with pytest.raises(UsageError, match="holds no spans, logs or metrics"):
        rank_causes(forensics.open_case())


def test_a_window_outside_the_data_names_the_data_range(healthy):
    case, _ = healthy
    with pytest.raises(UsageError, match=r"outside the data \(the data runs from 2026-03-02T14:00"):
        rank_causes(case, window=("2030-01-01", "2030-01-02"))


def test_a_window_with_nothing_before_it_asks_for_a_baseline(healthy):
    case, _ = healthy
    with pytest.raises(UsageError, match="no data before the window .* pass baseline="):
        rank_causes(case, window=(BASE - timedelta(hours=1), BASE + timedelta(minutes=5)))


def test_bad_periods_are_usage_errors(healthy):
    case, app = healthy
    with pytest.raises(UsageError, match="expected START..END"):
        rank_causes(case, window="14:00")
    with pytest.raises(UsageError, match="is not an ISO 8601 time"):
        rank_causes(case, window="yesterday..today")
    with pytest.raises(UsageError, match="end .* is not after start"):
        rank_causes(case, window=(app.onset, app.onset - timedelta(seconds=1)))
    with pytest.raises(UsageError, match="baseline given without window"):
        rank_causes(case, baseline=(BASE, app.onset))
    with pytest.raises(UsageError, match="overlaps the window"):
        rank_causes(case, window=(app.onset, None), baseline=(BASE, app.onset + timedelta(minutes=1)))
    with pytest.raises(UsageError, match="buckets must be at least 2"):
        rank_causes(case, window=(app.onset, None), buckets=1)


def test_a_baseline_without_data_is_a_usage_error(healthy):
    case, app = healthy
    gap = datetime(2026, 3, 2, 13, 59, tzinfo=timezone.utc)
    with pytest.raises(UsageError, match="outside the data"):
        rank_causes(case, window=(app.onset, None), baseline=(gap - timedelta(hours=1), gap))


def test_docstring_examples_run():
    import doctest

    from forensics.causes import periods, result

    for module in (periods, result):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
