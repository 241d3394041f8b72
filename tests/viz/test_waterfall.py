"""Waterfall: one bar per span in tree order, depth, errors, critical path, logs."""
from __future__ import annotations

import pytest

import forensics
from forensics.synth.builder import SpanBuilder
from forensics.viz import waterfall
from forensics.viz.waterfall import trace_spans

from .conftest import BASE


def _bars(fig):
    return [t for t in fig.data if t.type == "bar" and t.name != "critical path"]


def test_one_bar_per_span_in_tree_order(incident):
    case, ids = incident
    tid = ids["traces"][19]
    fig = waterfall(case, tid, collapse=None)
    assert sum(len(t.y) for t in _bars(fig)) == 14  # 3 + SELECT + 5 x (client + server)
    assert sorted(t.name for t in _bars(fig)) == ["catalog-service", "gateway", "inventory-service"]
    spans = trace_spans(case, tid)
    assert spans["depth"].tolist()[:4] == [0, 1, 2, 3]
    assert spans["depth"].tolist()[4:] == [3, 4] * 5
    # children ordered by start; offsets from the trace start
    assert spans["offset_ms"].iloc[0] == 0
    assert spans["offset_ms"].is_monotonic_increasing
    ticks = fig.layout.yaxis.ticktext
    assert ticks[0] == "gateway: GET /search" and ticks[2].endswith("catalog-service: GET /search")
    assert ticks[2].startswith("\u00a0" * 4)


def test_errors_marked_and_logs_on_their_span_row(incident):
    case, ids = incident
    fig = waterfall(case, ids["traces"][19], collapse=None)
    errors = [t for t in fig.data if t.name == "error"][0]
    assert len(errors.x) == 2  # the failed client call and its server span
    assert list(errors.y) == [12, 13]
    logs = [t for t in fig.data if t.name == "logs"][0]
    assert list(logs.y) == [2]  # the catalog server span's row
    assert logs.customdata[0][0] == "error"
    assert logs.x[0] == pytest.approx(50.0)  # logged 50 ms after the trace started
    no_logs = waterfall(case, ids["traces"][19], logs=False, critical_path=False, collapse=None)
    assert not [t for t in no_logs.data if t.name in ("logs", "critical path")]


def test_critical_path_takes_sequential_calls_and_last_finisher():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=5)
    root = b.span("api", "GET /", kind="server", start_ms=0, duration_ms=100)
    a = b.span("api", "a", parent=root, start_ms=5, duration_ms=30)       # sequential before b
    early = b.span("api", "early", parent=root, start_ms=1, duration_ms=3)   # ends before a starts
    par = b.span("api", "parallel", parent=root, start_ms=6, duration_ms=10)  # overlaps a: not critical
    bb = b.span("api", "b", parent=root, start_ms=40, duration_ms=55)      # ends last
    inner = b.span("db", "q", parent=bb, start_ms=50, duration_ms=20)
    b.insert(case)
    spans = trace_spans(case, root.trace_id)
    path = set(spans.loc[spans["critical"], "span_id"])
    assert path == {root.span_id, bb.span_id, inner.span_id, a.span_id, early.span_id}
    assert par.span_id not in path
    fig = waterfall(case, root.trace_id)
    cp = [t for t in fig.data if t.name == "critical path"][0]
    assert len(cp.y) == 5
    assert sum(row[2] for row in cp.customdata) == pytest.approx(100.0)  # self times add up to the root


def test_orphans_and_short_ids():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=6)
    root = b.span("api", "GET /", kind="server", trace_id="00000000000000000000000000000abc", duration_ms=10)
    b.insert(case)
    case.execute("UPDATE spans SET parent_span_id = 'ffffffffffffffff'")  # parent never exported
    fig = waterfall(case, "ABC")
    assert sum(len(t.y) for t in _bars(fig)) == 1
    assert root.trace_id.endswith("abc")


def test_unknown_trace_gives_annotated_empty_figure(incident):
    case, _ = incident
    fig = waterfall(case, "0" * 32)
    assert not fig.data and "No spans" in fig.layout.annotations[0].text


def test_max_spans_truncates_in_tree_order_with_a_note(incident):
    case, ids = incident
    fig = waterfall(case, ids["traces"][19], max_spans=4, collapse=None)
    assert sum(len(t.y) for t in _bars(fig)) == 4
    assert list(fig.layout.yaxis.ticktext)[-1].endswith("catalog-service: SELECT items")
    assert fig.layout.annotations[0].text == "showing the first 4 of 14 spans (max_spans)"
    assert "14 spans" in fig.layout.title.text
    assert [t for t in fig.data if t.name == "logs"][0].y == (2,)  # its span is still drawn
    with pytest.raises(forensics.UsageError, match="max_spans"):
        waterfall(case, ids["traces"][19], max_spans=0)


def test_repeated_sibling_calls_fold_into_one_row_that_expands(incident):
    case, ids = incident
    fig = waterfall(case, ids["traces"][19])  # 5 inventory calls, each with its server span
    folded = [t for t in fig.data if t.meta == "folded"]
    expanded = [t for t in fig.data if t.meta == "expanded"]
    assert all(t.visible for t in folded) and not any(t.visible for t in expanded)
    ticks = list(fig.layout.yaxis.ticktext)
    assert len(ticks) == 5  # gateway x2, catalog, SELECT, one folded row
    assert ticks[-1].strip("\u00a0").startswith("x5 catalog-service: GET /inventory, ") and ticks[-1].endswith(" total")
    bars = [t for t in folded if t.type == "bar" and t.name == "catalog-service"][0]
    assert sorted(bars.y).count(4) == 5  # every call still drawn, on the folded row
    assert not [t for t in folded if t.name == "inventory-service"]  # what is below is hidden
    (menu,) = fig.layout.updatemenus
    labels = [b.label for b in menu.buttons]
    assert labels == ["fold repeated calls", "expand every span"]
    expand = menu.buttons[1].args
    assert sum(expand[0]["visible"]) == len(expanded) and len(expand[1]["yaxis.ticktext"]) == 14
    assert fig.layout.xaxis.side == "top"  # the time ruler on top, as in Jaeger


def test_no_fold_without_repeats_and_option_checked(incident):
    case, ids = incident
    fig = waterfall(case, ids["traces"][0])  # one inventory call
    assert not fig.layout.updatemenus and all(t.meta == "expanded" for t in fig.data)
    with pytest.raises(forensics.UsageError, match="collapse"):
        waterfall(case, ids["traces"][0], collapse=1)
