"""Every figure: hostile telemetry stays data, empty cases draw an annotated empty figure, bad
options raise UsageError naming the parameter."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

import forensics
from forensics.viz import (latency_heatmap, red_panel, service_graph, service_graph_nx, timeline, version_compare,
                           waterfall)

from .conftest import BASE, HOSTILE

FIGURES = {
    "service_graph": lambda case, ids: service_graph(case),
    "waterfall": lambda case, ids: waterfall(case, ids["traces"][0] if ids else "0" * 32),
    "latency_heatmap": lambda case, ids: latency_heatmap(case),
    "timeline": lambda case, ids: timeline(case, findings=forensics.Findings.from_records([{
        "detector": "x", "severity": "high", "title": HOSTILE, "start_time": BASE, "end_time": BASE + timedelta(minutes=1),
        "score": 1.0, "evidence": {}, "summary": HOSTILE}]) if ids else None),
    "version_compare": lambda case, ids: version_compare(case, service="catalog-service"),
    "red_panel": lambda case, ids: red_panel(case, service="catalog-service"),
}


def _strings_outside_data(obj, path=()):
    """Yield (path, string) for every string in the figure JSON that is not inside a data array
    (x, y, text, customdata, ticktext...)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings_outside_data(v, path + (k,))
    elif isinstance(obj, list):
        if path and path[-1] in ("x", "y", "text", "customdata", "ticktext", "tickvals", "z"):
            return
        for v in obj:
            yield from _strings_outside_data(v, path)
    elif isinstance(obj, str):
        yield path, obj


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_hostile_telemetry_is_data_never_markup(hostile_case, name):
    case, ids = hostile_case
    fig = FIGURES[name](case, ids)
    as_json = fig.to_json()
    doc = json.loads(as_json)
    for path, text in _strings_outside_data(doc):
        assert "<script" not in text.lower(), (path, text)
    assert "<script>alert(1)" not in fig.to_html(include_plotlyjs=False, full_html=False)


def test_hostile_values_reach_the_figures(hostile_case):
    case, ids = hostile_case
    wf = json.loads(waterfall(case, ids["traces"][0]).to_json())
    hover = [row for t in wf["data"] for row in (t.get("customdata") or [])]
    assert any(HOSTILE in row for row in hover)  # as data in the hover rows (plotly escapes it)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in " ".join(wf["layout"]["yaxis"]["ticktext"])
    tl = json.loads(timeline(case).to_json())
    assert any(HOSTILE in row for t in tl["data"] for row in (t.get("customdata") or []))


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_empty_case_gives_annotated_empty_figure(empty_case, name):
    fig = FIGURES[name](empty_case, None)
    assert not fig.data
    assert fig.layout.annotations and fig.layout.annotations[0].text.startswith("No ")


def test_empty_graph_nx(empty_case):
    assert service_graph_nx(empty_case).number_of_nodes() == 0


@pytest.mark.parametrize("call, param", [
    (lambda c: latency_heatmap(c, bucket="2m"), "bucket"),
    (lambda c: red_panel(c, service="a", bucket=60), "bucket"),
    (lambda c: red_panel(c, service=""), "service"),
    (lambda c: red_panel(c, service=None), "service"),
    (lambda c: version_compare(c, service="a", kind="histogram"), "kind"),
    (lambda c: latency_heatmap(c, bins_per_decade=0), "bins_per_decade"),
    (lambda c: service_graph(c, start="yesterday-ish"), "start"),
    (lambda c: service_graph(c, start="2026-02-18T11:00Z", end="2026-02-18T10:00Z"), "end"),
    (lambda c: waterfall(c, "abc", logs="yes"), "logs"),
    (lambda c: timeline(c, change_points=1), "change_points"),
    (lambda c: service_graph(42), "Case"),
])
def test_bad_options_raise_usage_error_naming_the_parameter(empty_case, call, param):
    with pytest.raises(forensics.UsageError) as err:
        call(empty_case)
    assert param in str(err.value)


def test_bucket_error_lists_allowed_values(empty_case):
    with pytest.raises(forensics.UsageError, match=r"bucket must be one of '10s', '30s', '1m'.*got '2m'"):
        latency_heatmap(empty_case, bucket="2m")


def test_hostile_filter_values_are_bound_not_spliced(incident):
    case, _ = incident
    evil = "'; DROP TABLE spans; --"
    for fig in (red_panel(case, service=evil), latency_heatmap(case, service=evil, operation=evil),
                service_graph(case, version=evil), version_compare(case, service=evil), timeline(case, service=evil)):
        assert fig.layout.annotations[0].text.startswith("No ")
    assert case.sql("select count(*) from spans").scalar() == 200
