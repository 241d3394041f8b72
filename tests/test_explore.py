"""The ipywidgets explorer, driven headlessly: build the widget tree, set values, check updates."""
from __future__ import annotations

import json
from datetime import timedelta

import ipywidgets as widgets
import pytest

import forensics
from forensics.explore import ALL, Explorer, explore

from .viz.conftest import BASE, HOSTILE, make_incident_case

EVIL = "'; DROP TABLE spans; --"


def _case(hostile: bool = False):
    return make_incident_case(seed=11, hostile=hostile)


def _findings(summary="catalog-service calls inventory-service 5 times per /search"):
    return forensics.Findings.from_records([{
        "detector": "n_plus_one", "severity": "high", "title": "N+1", "service": "catalog-service",
        "operation": "GET /search", "target": "inventory-service", "version": "1.8.0",
        "start_time": BASE + timedelta(minutes=5), "end_time": BASE + timedelta(minutes=10), "score": 5.0,
        "evidence": {"exemplar_trace_ids": []}, "summary": summary}])


def _plotly(out: widgets.Output) -> dict:
    (output,) = out.outputs
    return output["data"]["application/vnd.plotly.v1+json"]


def test_widget_tree_and_initial_state():
    case, ids = _case()
    ex = explore(case, findings=_findings())
    assert isinstance(ex, Explorer) and isinstance(ex.widget, widgets.VBox)
    assert ex.service.options == ("catalog-service", "gateway", "inventory-service")
    assert ex.service.value == "catalog-service"  # the top finding's service
    assert ex.operation.options == (ALL, "GET /search")
    assert ex.version.options == (ALL, "1.7.9", "1.8.0")
    assert ex.window.value[0] == BASE and ex.window.value[1] == BASE + timedelta(minutes=10)
    assert len(ex.traces.options) == 20
    assert ex.traces.value is None and "waterfall" not in ex.figures  # drawn when a trace is selected
    assert ex.trace_table["duration_ms"].iloc[0] == 140.0  # slowest first
    assert {"red", "heatmap"} <= set(ex.figures)
    red = _plotly(ex.red_out)
    assert {t["name"] for t in red["data"]} == {"rate", "errors", "p50", "p95", "p99"}
    assert "N+1" not in ex.findings_html.value and "5 times per /search" in ex.findings_html.value
    assert "application/vnd.jupyter.widget-view+json" in ex._repr_mimebundle_()


def test_choices_update_figures_and_trace_list():
    case, ids = _case()
    ex = explore(case, findings=_findings())
    ex.version.value = "1.7.9"
    assert len(ex.traces.options) == 10 and ex.trace_table["duration_ms"].max() == 60.0
    rate = [t for t in ex.figures["red"].data if t.name == "rate"][0]
    assert len(rate.x) == 5
    ex.window.value = (BASE + timedelta(minutes=2), BASE + timedelta(minutes=4))
    assert len(ex.traces.options) == 4
    assert "No findings" in ex.findings_html.value  # the finding starts at minute 5
    ex.service.value = "inventory-service"
    assert ex.operation.options == (ALL, "GET /inventory") and ex.version.value == ALL
    assert ex.selection()["service"] == "inventory-service"
    assert len(ex.traces.options) == 4  # four requests in minutes 2..4, one inventory call each
    assert "No findings" in ex.findings_html.value
    ex.window.value = (BASE, BASE + timedelta(minutes=10))
    assert "5 times per /search" in ex.findings_html.value  # inventory-service is the finding's target


def test_selecting_a_trace_shows_its_waterfall():
    case, ids = _case()
    ex = explore(case, findings=forensics.Findings.empty())
    ex.traces.value = ids["traces"][19]
    fig = ex.figures["waterfall"]
    expanded = [t for t in fig.data if t.meta == "expanded" and t.type == "bar" and t.name != "critical path"]
    assert sum(len(t.y) for t in expanded) == 14  # every span in the expanded view (folded is shown first)
    shown = _plotly(ex.waterfall_out)
    assert ids["traces"][19] in shown["layout"]["title"]["text"]
    ex.show_trace(None)
    assert ex.waterfall_out.outputs == () and "waterfall" not in ex.figures


def test_hostile_filter_value_is_harmless():
    case, _ = _case()
    ex = explore(case, findings=forensics.Findings.empty())
    ex.service.options = list(ex.service.options) + [EVIL]
    ex.service.value = EVIL
    assert ex.operation.options == (ALL,)
    assert len(ex.traces.options) == 0 and "waterfall" not in ex.figures
    assert ex.figures["red"].layout.annotations[0].text.startswith("No requests")
    assert case.sql("select count(*) from spans").scalar() == 200


def test_hostile_telemetry_is_escaped_in_tables_and_figures():
    case, ids = _case(hostile=True)
    ex = explore(case, findings=_findings(summary=HOSTILE))
    assert HOSTILE not in ex.findings_html.value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ex.findings_html.value
    ex.traces.value = ids["traces"][0]
    payload = json.dumps(_plotly(ex.waterfall_out))
    assert HOSTILE not in payload  # plotly would draw it as markup: escaped, shown literally
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in payload
    assert "<script>alert(1)" not in ex.figures["waterfall"].to_html(include_plotlyjs=False)


def test_empty_case_builds():
    case = forensics.open_case()
    ex = explore(case, findings=forensics.Findings.empty())
    assert ex.service.value == ALL and len(ex.traces.options) == 0
    assert "no spans" in ex.status.value


def test_default_findings_come_from_detect(monkeypatch):
    import forensics.detectors

    case, _ = _case()
    seen = []
    monkeypatch.setattr(forensics.detectors, "detect", lambda c: seen.append(c) or _findings())
    ex = explore(case)
    assert seen == [case] and len(ex.findings) == 1
    assert "5 times per /search" in ex.findings_html.value


def test_bad_option():
    with pytest.raises(forensics.UsageError, match="max_traces"):
        explore(forensics.open_case(), findings=forensics.Findings.empty(), max_traces=0)


def test_findings_follow_the_version_filter_and_status_shows_work():
    case, _ = _case()
    ex = explore(case, findings=_findings())
    assert "5 times per /search" in ex.findings_html.value
    ex.version.value = "1.7.9"  # the finding is about 1.8.0
    assert ex.findings_html.value == "<p>No findings for this selection.</p>"
    ex.version.value = "1.8.0"
    assert "5 times per /search" in ex.findings_html.value
    seen = []
    ex.status.observe(lambda change: seen.append(change["new"]), names="value")
    ex.refresh()
    assert "computing" in seen[0] and ex.status.value == ""  # busy while it works, cleared after


def test_time_slider_labels_are_short_enough_to_read():
    case, _ = _case()
    ex = explore(case, findings=_findings())
    labels = [label for label, _ in ex.window.options]
    assert labels[0] == "10:00" and max(len(x) for x in labels) <= 11
    assert ex.window.style.description_width == "initial"


def test_each_selection_is_computed_once_and_waterfalls_only_on_selection(monkeypatch):
    import forensics.explore as module

    case, ids = _case()
    calls = []
    for name in ("red_panel", "latency_heatmap", "waterfall"):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **kw: calls.append(_name) or _real(*a, **kw))
    ex = explore(case, findings=_findings())
    assert calls == ["red_panel", "latency_heatmap"]
    ex.service.value = "inventory-service"
    ex.version.value = ex.version.options[-1]
    assert "waterfall" not in calls and ex.traces.value is None
    drawn = len(calls)
    ex.version.value = ALL
    ex.service.value = "catalog-service"  # both seen before: nothing recomputed
    assert len(calls) == drawn and ex.figures["red"].layout.title.text == "RED: catalog-service"
    ex.traces.value = ids["traces"][3]
    ex.traces.value = ids["traces"][4]
    ex.traces.value = ids["traces"][3]
    assert calls.count("waterfall") == 2 and ids["traces"][3] in ex.figures["waterfall"].layout.title.text
    ex.refresh(force=True)  # e.g. after loading more data into the case
    assert calls[-2:] == ["red_panel", "latency_heatmap"]
