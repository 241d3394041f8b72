"""Version comparison and BubbleUp compare bars."""
from __future__ import annotations

import pandas as pd
import pytest

import forensics
from forensics.synth.builder import SpanBuilder
from forensics.viz import compare_bars, version_compare

from .conftest import BASE


@pytest.mark.parametrize("kind", ["violin", "box", "ecdf"])
def test_version_compare_distributions_and_calls_per_request(incident, kind):
    case, _ = incident
    fig = version_compare(case, service="catalog-service", operation="GET /search", kind=kind)
    dists = [t for t in fig.data if t.type != "bar"]
    assert [t.name for t in dists] == ["1.7.9", "1.8.0"]  # order of first appearance
    values = dists[0].x if kind == "ecdf" else dists[0].y
    assert sorted(set(values)) == [60.0]
    bars = {t.name: dict(zip(t.x, t.y)) for t in fig.data if t.type == "bar"}
    assert bars == {"1.7.9": {"inventory-service": 1.0, "pg-0": 1.0},
                    "1.8.0": {"inventory-service": 5.0, "pg-0": 1.0}}


def test_version_compare_sampling_is_bounded_and_deterministic():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=9)
    for i in range(300):
        b.span("api", "GET /", kind="server", start_ms=i, duration_ms=1 + i, version="1")
    b.insert(case)
    a = version_compare(case, service="api", max_points=100)
    assert len(a.data[0].y) == 100
    assert a.to_json() == version_compare(case, service="api", max_points=100).to_json()


def test_compare_bars_from_analysis_result():
    from forensics.analysis import compare

    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=10)
    for i in range(10):
        b.span("api", "GET /x", kind="server", duration_ms=900 if i < 3 else 50, host="h1" if i < 3 else "h2")
    b.insert(case)
    result = compare(case, ("duration_ms > ?", [500]), columns=["host_name"])
    fig = compare_bars(result)
    sel = [t for t in fig.data if t.name == "selection"][0]
    base = [t for t in fig.data if t.name == "baseline"][0]
    rows = {c[1]: (s, bl) for c, s, bl in zip(sel.customdata, sel.x, base.x)}
    assert rows == {"h1": (100.0, 0.0), "h2": (0.0, 100.0)}
    assert set(fig.layout.yaxis.ticktext) == {"host_name = h1", "host_name = h2"}


def test_compare_bars_top_and_order():
    df = pd.DataFrame({"dimension": ["a", "b", "c"], "value": ["1", "2", "3"],
                       "selection_pct": [50.0, 90.0, 10.0], "baseline_pct": [40.0, 10.0, 12.0]})
    fig = compare_bars(df, top=2)
    assert list(fig.layout.yaxis.ticktext) == ["a = 1", "b = 2"]  # largest difference drawn on top (last)
    with pytest.raises(forensics.UsageError, match="lacks column"):
        compare_bars(df.drop(columns=["value"]))
    with pytest.raises(forensics.UsageError, match="compare_result must be"):
        compare_bars([1, 2])
