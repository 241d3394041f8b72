"""compare: values over-represented in a selection of spans."""
from datetime import datetime, timezone

import pytest

import forensics
from forensics.analysis import compare
from forensics.analysis._select import as_predicate
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def case():
    """100 requests; the 20 slow ones ran on host-7 and mostly for tenant 'acme'."""
    b = SpanBuilder(T0, seed=6)
    for i in range(100):
        slow = i < 20
        b.span("api", "GET /x", kind="server", start_ms=i * 10, duration_ms=1500 if slow else 50,
               host="host-7" if slow else f"host-{i % 3}", version="2.0" if i % 2 else "1.9",
               attributes={"tenant": "acme" if (slow and i < 15) or i == 50 else "other",
                           "http.route": "/x"},
               resource_attributes={"k8s.node.name": "node-b" if slow else "node-a"})
    case = forensics.open_case()
    b.insert(case)
    return case


def test_compare_ranks_over_represented_values(case):
    res = compare(case, ("duration_ms > ?", [1000]))
    assert res.columns == ["dimension", "value", "selection_pct", "baseline_pct", "diff_pct", "lift",
                           "selection_count", "baseline_count"]
    rows = {(r["dimension"], r["value"]): r for r in compare(case, ("duration_ms > ?", [1000]), top=None).dicts()}
    host = rows[("host_name", "host-7")]
    assert (host["selection_pct"], host["baseline_pct"], host["diff_pct"]) == (100, 0, 100)
    assert host["lift"] == float("inf") and (host["selection_count"], host["baseline_count"]) == (20, 0)
    acme = rows[("attributes.tenant", "acme")]
    assert acme["selection_pct"] == 75 and acme["baseline_pct"] == pytest.approx(1.25)
    assert acme["lift"] == pytest.approx(60)
    assert ("resource.k8s.node.name", "node-b") in rows
    # promoted attribute keys are compared once, as their column
    assert ("attributes.http.route", "/x") not in rows and ("http_route", "/x") in rows
    assert ("resource.service.name", "api") not in rows
    top = compare(case, ("duration_ms > ?", [1000]), top=3).dicts()
    assert len(top) == 3 and abs(top[0]["diff_pct"]) >= abs(top[2]["diff_pct"])
    assert abs(rows[("service_version", "2.0")]["diff_pct"]) < 1


def test_explicit_baseline_columns_and_trace_ids(case):
    res = compare(case, "duration_ms > 1000", ("duration_ms < ? AND host_name = ?", [100, "host-1"]),
                  columns=["host_name", "attributes.tenant"], top=None).dicts()
    assert {r["dimension"] for r in res} == {"host_name", "attributes.tenant"}
    h1 = next(r for r in res if r["value"] == "host-1")
    assert h1["baseline_pct"] == 100 and h1["selection_pct"] == 0 and h1["diff_pct"] == -100
    ids = [t for (t,) in case.sql("SELECT trace_id FROM spans WHERE duration_ms > 1000").rows()]
    by_ids = compare(case, ids, columns=["host_name"]).dicts()
    assert by_ids[0]["value"] == "host-7" and by_ids[0]["selection_count"] == 20


def test_telemetry_values_stay_parameters(case):
    evil = "x'); DROP TABLE spans; --"
    assert len(compare(case, ("host_name = ?", [evil]))) >= 0
    assert case.sql("SELECT count(*) FROM spans").scalar() == 100
    assert as_predicate(["ABC"]).params == [["abc"]]


@pytest.mark.parametrize("bad", [42, "", "   ", [1, 2], {"a": 1}])
def test_bad_selection_is_a_usage_error(case, bad):
    with pytest.raises(forensics.UsageError):
        compare(case, bad)


def test_bad_options_and_empty_case():
    empty = forensics.open_case()
    assert len(compare(empty, "true")) == 0
    assert len(compare(empty, [])) == 0
    with pytest.raises(forensics.UsageError, match="unknown dimension"):
        compare(empty, "true", columns=["nope"])
    with pytest.raises(forensics.UsageError):
        compare(empty, "true", top=0)


def test_sampling_large_sides_keeps_shares(case):
    full = {(r["dimension"], r["value"]): r for r in compare(case, ("duration_ms > ?", [1000]), top=None,
                                                             columns=["host_name"]).dicts()}
    sampled = compare(case, ("duration_ms > ?", [1000]), top=None, columns=["host_name"], max_spans=40).dicts()
    assert sum(r["baseline_count"] for r in sampled) < 80  # the 80 baseline spans were sampled
    host7 = next(r for r in sampled if r["value"] == "host-7")
    assert host7["selection_pct"] == 100 and host7["baseline_pct"] == 0
    assert full[("host_name", "host-7")]["selection_count"] == 20 == host7["selection_count"]
