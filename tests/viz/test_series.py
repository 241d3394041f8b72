"""Time-series figures: RED panel, latency heatmap, incident timeline."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

import forensics
from forensics.viz import latency_heatmap, red_panel, timeline

from .conftest import BASE


def test_red_panel_rate_errors_and_percentiles(incident):
    case, _ = incident
    fig = red_panel(case, service="inventory-service")
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"rate", "errors", "p50", "p95", "p99"}
    assert len(by_name["rate"].x) == 10  # 10 one-minute buckets
    # minute 0: two traces x 1 inventory call; minute 9: 2 x 5 calls, one failed
    assert by_name["rate"].y[0] == pytest.approx(2 / 60)
    assert by_name["rate"].y[-1] == pytest.approx(10 / 60)
    assert by_name["errors"].y[-1] == pytest.approx(10.0)
    assert by_name["errors"].y[0] == 0
    assert by_name["p99"].y[0] == pytest.approx(16.0)
    coarse = red_panel(case, service="inventory-service", bucket="5m")
    assert len([t for t in coarse.data if t.name == "rate"][0].x) == 2


def test_red_panel_counts_entry_spans_only(incident):
    case, _ = incident
    fig = red_panel(case, service="catalog-service", version="1.8.0")
    rate = [t for t in fig.data if t.name == "rate"][0]
    # only the server span of each request counts, not its 6 client spans
    assert [c[0] for c in rate.customdata] == [2, 2, 2, 2, 2]
    p50 = [t for t in fig.data if t.name == "p50"][0]
    assert set(p50.y) == {140.0}


def test_latency_heatmap_bins(incident):
    case, _ = incident
    fig = latency_heatmap(case, service="catalog-service", bins_per_decade=10)
    hm = fig.data[0]
    z = np.asarray(hm.z)
    assert z.sum() == 20  # every request counted once
    y = np.asarray(hm.y)
    # 60 ms -> bin floor(log10(60) * 10) = 17; 140 ms -> 21
    assert z[list(y).index(1.7)].tolist() == [2, 2, 2, 2, 2, 0, 0, 0, 0, 0]
    assert z[list(y).index(2.1)].tolist() == [0] * 5 + [2] * 5
    assert z.shape == (5, 10)  # bins 17..21 filled in, 10 minutes
    op = latency_heatmap(case, service="catalog-service", operation="no such op")
    assert not op.data


def test_timeline_events_series_findings_and_change_point(incident):
    case, _ = incident
    findings = forensics.Findings.from_records([{
        "detector": "n_plus_one", "severity": "high", "title": "N+1 calls", "service": "catalog-service",
        "start_time": BASE + timedelta(minutes=5), "end_time": BASE + timedelta(minutes=10), "score": 5.0,
        "evidence": {}, "summary": "catalog-service calls inventory-service 5 times per request"}])
    fig = timeline(case, findings=findings)
    names = [t.name for t in fig.data]
    # every mark is in the legend: changes by kind, the deploy lines, the series, change points, findings
    assert names == ["deploy", "k8s", "deploy (across the figure)", "error %", "p99", "p99 shift (change point)",
                     "findings"]
    deploy = fig.data[0]
    assert list(deploy.text) == ["catalog-service 1.8.0"]  # labelled with service and version
    assert deploy.customdata[0][0].startswith("deploy catalog-service") and deploy.customdata[0][0].endswith("1.8.0")
    p99 = [t for t in fig.data if t.name == "p99"][0]
    assert p99.y[0] == pytest.approx(70.0) and p99.y[-1] == pytest.approx(150.0)
    shapes = [(s.type, s.line.dash) for s in fig.layout.shapes]
    assert ("line", "dash") in shapes  # the deploy
    assert ("line", "dot") in shapes  # change point of p99 at 10:05
    cp = [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dot"][0]
    assert str(cp.x0).startswith("2026-02-18 10:05")
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 1 and rects[0].yref == "paper"
    svc = timeline(case, service="inventory-service", change_points=False)
    assert [t.name for t in svc.data][:2] == ["k8s", "error %"]  # the catalog deploy is filtered out
    ticks = list(fig.layout.yaxis3.ticktext)
    assert ticks and all(t.endswith(" ms") or t.endswith(" s") for t in ticks)  # readable log-axis ticks
    assert not [s for s in svc.layout.shapes if s.line.dash == "dot"]


def test_timeline_rejects_a_non_findings_value(incident):
    case, _ = incident
    with pytest.raises(forensics.UsageError, match="findings must be a forensics.Findings"):
        timeline(case, findings=[{"title": "x"}])


def test_timeline_marks_error_rate_shift_and_ignores_noise():
    from forensics.synth.builder import SpanBuilder

    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=21)
    rng = np.random.default_rng(0)
    for minute in range(30):
        for k in range(10):
            failing = minute >= 20 and k < 6  # 60% errors from minute 20
            b.span("api", "GET /", kind="server", start_ms=minute * 60_000 + k * 5000,
                   duration_ms=float(rng.lognormal(4, 0.3)), status="error" if failing else "ok")
    b.insert(case)
    fig = timeline(case)
    red_lines = [s for s in fig.layout.shapes if s.type == "line" and s.line.color == "#d62728"]
    assert [str(s.x0)[11:16] for s in red_lines] == ["10:20"]
    purple = [s for s in fig.layout.shapes if s.type == "line" and s.line.color == "#9467bd"]
    assert purple == []  # p99 noise alone is not a change
    with pytest.raises(forensics.UsageError, match="change_penalty must be a number from 1 to 100; got 0"):
        timeline(case, change_penalty=0)
