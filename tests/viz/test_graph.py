"""Service graph: nodes, edges with counts/rates/error %, virtual peers, filters, layout."""
from __future__ import annotations

import math

import pytest

import forensics
from forensics.synth.builder import SpanBuilder
from forensics.viz import service_graph, service_graph_nx

from .conftest import BASE


def test_three_services_two_edges_with_counts():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=1)
    for t in range(4):
        root = b.span("gateway", "GET /search", kind="server", start_ms=t * 1000, duration_ms=100)
        c1 = b.span("gateway", "GET", kind="client", parent=root, start_ms=t * 1000 + 1, duration_ms=90)
        cat = b.span("catalog-service", "GET /search", kind="server", parent=c1, start_ms=t * 1000 + 2, duration_ms=80)
        for i in range(3):
            c2 = b.span("catalog-service", "GET /inventory", kind="client", parent=cat, start_ms=t * 1000 + 5 + 10 * i,
                        duration_ms=9 + i, status="error" if t == 0 and i == 0 else "unset")
            b.span("inventory-service", "GET /inventory", kind="server", parent=c2, start_ms=t * 1000 + 6 + 10 * i,
                   duration_ms=8)
    b.insert(case)
    g = service_graph_nx(case)
    assert sorted(g.nodes) == ["catalog-service", "gateway", "inventory-service"]
    assert sorted(g.edges) == [("catalog-service", "inventory-service"), ("gateway", "catalog-service")]
    e = g.edges["catalog-service", "inventory-service"]
    assert e["calls"] == 12 and e["virtual"] is False
    assert e["error_pct"] == pytest.approx(100 / 12)
    assert e["p95_ms"] == pytest.approx(11.0)  # client span durations 9, 10, 11
    assert g.edges["gateway", "catalog-service"]["calls"] == 4
    # window: first span at 0 s, last at 3.026 s -> rates per second
    assert e["rate_per_s"] == pytest.approx(12 / g.graph["window_seconds"])
    assert g.nodes["inventory-service"]["requests"] == 12
    assert g.nodes["gateway"]["requests"] == 4 and g.nodes["gateway"]["error_pct"] == 0
    fig = service_graph(case)
    nodes = [t for t in fig.data if t.name == "services"][0]
    assert sorted(nodes.text) == ["catalog-service", "gateway", "inventory-service"]
    calls = [t for t in fig.data if t.name == "calls" and t.customdata is not None][0]
    assert sorted((c[0], c[1], c[2]) for c in calls.customdata) == [
        ("catalog-service", "inventory-service", 12), ("gateway", "catalog-service", 4)]
    assert len(fig.layout.annotations) == 2  # one arrow per edge


def test_uninstrumented_peer_is_a_virtual_node(incident):
    case, _ = incident
    g = service_graph_nx(case)
    assert g.nodes["pg-0"]["virtual"] is True
    assert g.edges["catalog-service", "pg-0"]["calls"] == 20
    assert g.edges["catalog-service", "pg-0"]["virtual"] is True
    assert g.nodes["inventory-service"]["virtual"] is False
    fig = service_graph(case)
    peers = [t for t in fig.data if t.name == "uninstrumented peers"][0]
    assert list(peers.text) == ["pg-0"] and peers.marker.symbol == "diamond"


def test_version_and_time_filters(incident):
    case, _ = incident
    new = service_graph_nx(case, version="1.8.0")
    old = service_graph_nx(case, version="1.7.9")
    assert new.edges["catalog-service", "inventory-service"]["calls"] == 50
    assert old.edges["catalog-service", "inventory-service"]["calls"] == 10
    assert new.edges["gateway", "catalog-service"]["calls"] == 10
    late = service_graph_nx(case, start="2026-02-18T10:05:00Z", end=BASE.replace(minute=6))
    assert late.edges["gateway", "catalog-service"]["calls"] == 2
    assert late.graph["window_seconds"] == 60
    assert service_graph_nx(case, version="9.9.9").number_of_nodes() == 0


def test_layout_is_deterministic_and_layered(incident):
    case, _ = incident
    a, b = service_graph(case), service_graph(case)
    assert a.to_json() == b.to_json()
    nodes = [t for t in a.data if t.name == "services"][0]
    x = dict(zip([c[0] for c in nodes.customdata], nodes.x))
    assert x["gateway"] < x["catalog-service"] < x["inventory-service"]


def test_cycles_fall_back_to_seeded_spring_layout():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=2)
    a = b.span("a", "x", kind="server")
    bb = b.span("b", "y", kind="server", parent=a)
    b.span("a", "z", kind="server", parent=bb)
    b.insert(case)
    g = service_graph_nx(case)
    assert set(g.edges) == {("a", "b"), ("b", "a")}
    fig = service_graph(case)
    xs = [t for t in fig.data if t.name == "services"][0].x
    assert all(math.isfinite(v) for v in xs)
    assert fig.to_json() == service_graph(case).to_json()


def test_http_5xx_counts_as_an_error_even_with_unset_status():
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=12)
    for i in range(4):
        root = b.span("web", "GET /", kind="server", start_ms=i * 100, duration_ms=20,
                      attributes={"http.response.status_code": 503 if i == 0 else 200})
        b.span("api", "GET /x", kind="server", parent=root, start_ms=i * 100 + 1, duration_ms=10,
               attributes={"http.response.status_code": 503 if i == 0 else 200})
    b.insert(case)
    g = service_graph_nx(case)
    assert g.nodes["web"]["error_pct"] == pytest.approx(25.0)
    assert g.edges["web", "api"]["error_pct"] == pytest.approx(25.0)


def test_edges_named_by_findings_are_highlighted_and_labelled(incident):
    case, _ = incident
    findings = forensics.Findings.from_records([{
        "detector": "n_plus_one", "severity": "high", "title": "t", "service": "catalog-service",
        "target": "inventory-service", "score": 1.0, "evidence": {}, "summary": "s"}])
    fig = service_graph(case, highlight=findings)
    marked = [t for t in fig.data if t.name == "calls named by findings"]
    assert len(marked) == 1 and marked[0].line.width > 2 and len(marked[0].x) == 3
    labels = [a.text for a in fig.layout.annotations if a.text]
    assert any("calls/request" in t and "p95" in t for t in labels)
    assert not [t for t in service_graph(case).data if t.name == "calls named by findings"]


def test_one_colour_per_service_in_every_figure(incident):
    from forensics.viz import waterfall

    case, ids = incident
    graph = [t for t in service_graph(case).data if t.name == "services"][0]
    graph_colors = dict(zip([c[0] for c in graph.customdata], graph.marker.color))
    wf = waterfall(case, ids["traces"][19], collapse=None)
    for t in wf.data:
        if t.type == "bar" and t.name in graph_colors:
            assert t.marker.color == graph_colors[t.name]
