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


def _strings(obj, path=()):
    """Yield (path, string) for every string in the figure JSON."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, path + (k,))
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, path)
    elif isinstance(obj, str):
        yield path, obj


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_hostile_telemetry_is_escaped_text_never_markup(hostile_case, name):
    """plotly draws names, hover values, tick labels and titles as pseudo-HTML: every string a
    figure holds is escaped, only the figure's own hover templates carry markup (and no telemetry)."""
    case, ids = hostile_case
    doc = json.loads(FIGURES[name](case, ids).to_json())
    for path, text in _strings(doc):
        if path[-1] in ("hovertemplate", "texttemplate"):
            assert "script" not in text.lower(), (path, text)
            continue
        assert "<" not in text and ">" not in text, (path, text)


def test_hostile_values_reach_the_figures_escaped(hostile_case):
    case, ids = hostile_case
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    wf = json.loads(waterfall(case, ids["traces"][0]).to_json())
    hover = [cell for t in wf["data"] for row in (t.get("customdata") or []) for cell in row]
    assert escaped in hover  # shown literally in the hover label
    assert escaped in " ".join(wf["layout"]["yaxis"]["ticktext"])
    tl = json.loads(timeline(case).to_json())
    assert any(escaped in str(row) for t in tl["data"] for row in (t.get("customdata") or []))


def test_escape_figure_escapes_once_and_keeps_numbers():
    import plotly.graph_objects as go

    from forensics.viz._text import escape_figure

    fig = go.Figure(go.Bar(x=["<b>a</b>", "b&c"], y=[1, 2], name="<a href='x'>n</a>", customdata=[["<i>"], ["ok"]]))
    fig.update_layout(title={"text": "T <br>"}, annotations=[{"text": "<span style='color:red'>s</span>"}])
    escape_figure(fig)
    assert list(fig.data[0].x) == ["&lt;b&gt;a&lt;/b&gt;", "b&amp;c"] and list(fig.data[0].y) == [1, 2]
    assert fig.data[0].name == "&lt;a href='x'&gt;n&lt;/a&gt;"
    assert [list(r) for r in fig.data[0].customdata] == [["&lt;i&gt;"], ["ok"]]
    assert fig.layout.title.text == "T &lt;br&gt;"
    assert fig.layout.annotations[0].text.startswith("&lt;span")


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
