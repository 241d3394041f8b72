"""Service dependency graph: services as nodes, cross-service calls as edges.

Statistics (:func:`graph_nodes`, :func:`graph_edges`) are SQL over the filtered spans; the
networkx graph (:func:`service_graph_nx`) holds them as node/edge attributes and
:func:`service_graph` draws it with plotly.
"""
from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..semantics import call_target_sql, is_call_sql, is_error_sql
from ..units import fmt_ms, fmt_num
from ._sql import ENTRY_SPANS_SQL, SpanFilter, frame, window_seconds
from ._theme import (ERROR_COLOR, VIRTUAL_COLOR, case_service_colors, check_text, check_window, empty_figure,
                     resolve_case, style)

#: calls that findings name
HIGHLIGHT_COLOR = "#d9480f"

LAYOUT_SEED = 7

#: calls: a cross-service parent -> child pair (the parent is usually the client span), plus
#: outbound calls (:func:`forensics.semantics.is_call_sql`) with a known target
#: (:func:`forensics.semantics.call_target_sql`) that have no child span at all: calls to an
#: uninstrumented peer, drawn as a virtual node. The spans are first narrowed to what the calls
#: need (joining whole rows, attribute maps included, cost 3x the time at 1M spans)
_EDGES_SQL = f"""
, narrow AS MATERIALIZED (
  SELECT s.trace_id, s.span_id, s.parent_span_id, s.service, s.kind, s.duration_ms,
         {is_error_sql('s')} AS is_error,
         CASE WHEN {is_call_sql('s')} THEN {call_target_sql('s', None)} END AS target
  FROM sel s
), calls AS (
  SELECT p.service AS caller, c.service AS callee, FALSE AS virtual,
         CASE WHEN p.kind IN ('client', 'producer') THEN p.duration_ms ELSE c.duration_ms END AS duration_ms,
         (p.is_error OR c.is_error) AS is_error
  FROM narrow c JOIN narrow p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
  WHERE p.service IS DISTINCT FROM c.service
  UNION ALL
  SELECT s.service, s.target, TRUE, s.duration_ms, s.is_error
  FROM narrow s
  WHERE s.target <> 'unknown'
    AND NOT EXISTS (SELECT 1 FROM spans k WHERE k.trace_id = s.trace_id AND k.parent_span_id = s.span_id)
)
SELECT caller, callee, bool_and(virtual) AS virtual, count(*) AS calls,
       100.0 * avg(is_error::INT) AS error_pct,
       quantile_cont(duration_ms, 0.95) AS p95_ms
FROM calls GROUP BY caller, callee ORDER BY caller, callee
"""

_NODES_SQL = f"""
, entry AS ({ENTRY_SPANS_SQL})
SELECT service, count(*) AS requests, 100.0 * avg({is_error_sql('entry')}::INT) AS error_pct,
       quantile_cont(duration_ms, 0.95) AS p95_ms
FROM entry GROUP BY service ORDER BY service
"""


def graph_edges(case: Any, flt: SpanFilter) -> pd.DataFrame:
    """One row per (caller, callee): calls, error_pct (%), p95_ms, virtual (callee uninstrumented)."""
    cte = flt.cte(whole_traces=True)
    return frame(case, cte + _EDGES_SQL, flt.params)


def graph_nodes(case: Any, flt: SpanFilter) -> pd.DataFrame:
    """One row per instrumented service: requests served (entry spans), error_pct (%), p95_ms."""
    cte = flt.cte(whole_traces=True)
    return frame(case, cte + _NODES_SQL, flt.params)


def service_graph_nx(case: Any, *, start: Any = None, end: Any = None, version: str | None = None) -> nx.DiGraph:
    """The service dependency graph as a :class:`networkx.DiGraph`.

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    start, end:
        Time window (UTC datetime or ISO 8601 string) on span start times; ``None`` is open.
    version:
        Keep only traces in which some span has this ``service_version``.

    Returns
    -------
    networkx.DiGraph
        Nodes are services with ``requests``, ``rate_per_s`` (requests/s over the window),
        ``error_pct`` (%), ``p95_ms`` and ``virtual`` (True for an uninstrumented peer seen only
        from client spans). Edges caller -> callee carry ``calls``, ``rate_per_s``,
        ``error_pct`` (%), ``p95_ms`` (ms) and ``virtual``.
    """
    case = resolve_case(case)
    s, e = check_window(start, end)
    flt = SpanFilter(start=s, end=e, version=check_text("version", version))
    seconds = window_seconds(case, flt)
    g = nx.DiGraph(window_seconds=seconds)
    for row in graph_nodes(case, flt).to_dict("records"):
        g.add_node(row["service"], requests=int(row["requests"]), rate_per_s=row["requests"] / seconds,
                   error_pct=float(row["error_pct"]), p95_ms=float(row["p95_ms"]), virtual=False)
    for row in graph_edges(case, flt).to_dict("records"):
        for name in (row["caller"], row["callee"]):
            if name not in g:
                g.add_node(name, requests=0, rate_per_s=0.0, error_pct=0.0, p95_ms=float("nan"),
                           virtual=bool(row["virtual"]) and name == row["callee"])
        g.add_edge(row["caller"], row["callee"], calls=int(row["calls"]), rate_per_s=row["calls"] / seconds,
                   error_pct=float(row["error_pct"]), p95_ms=float(row["p95_ms"]), virtual=bool(row["virtual"]))
    return g


def graph_layout(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Deterministic positions: callers left of callees (layers by longest call depth) when
    the graph has no cycle, a seeded spring layout otherwise."""
    if g.number_of_nodes() == 0:
        return {}
    if nx.is_directed_acyclic_graph(g):
        layer: dict[str, int] = {}
        for node in nx.topological_sort(g):
            layer[node] = max((layer[p] + 1 for p in g.predecessors(node)), default=0)
        h = nx.DiGraph()
        h.add_nodes_from(sorted(g.nodes))
        nx.set_node_attributes(h, layer, "layer")
        pos = nx.multipartite_layout(h, subset_key="layer")
    else:
        pos = nx.spring_layout(g, seed=LAYOUT_SEED)
    return {n: (float(x), float(y)) for n, (x, y) in pos.items()}


def _node_sizes(rates: np.ndarray) -> np.ndarray:
    top = rates.max() if len(rates) and rates.max() > 0 else 1.0
    return 18 + 42 * np.sqrt(rates / top)


def highlighted_edges(findings: Any) -> set[tuple[str, str]]:
    """(caller, callee) pairs that findings name: a finding's service and its target."""
    if findings is None:
        return set()
    return {(f["service"], f["target"]) for f in findings.records()
            if isinstance(f.get("service"), str) and isinstance(f.get("target"), str) and f["service"] != f["target"]}


def service_graph(case: Any, *, start: Any = None, end: Any = None, version: str | None = None,
                  highlight: Any = None) -> go.Figure:
    """Service dependency graph figure: node size = request rate, node colour = the service's
    colour (the same in every figure), outline red and label with the error % when it fails;
    edges with hover rate, error % and p95; uninstrumented peers as grey diamonds.

    Parameters are those of :func:`service_graph_nx`, and ``highlight``: findings
    (:class:`forensics.Findings`) whose caller -> target calls are drawn thick and labelled with
    calls per request and p95.
    """
    case = resolve_case(case)
    g = service_graph_nx(case, start=start, end=end, version=version)
    marked = highlighted_edges(highlight)
    if g.number_of_nodes() == 0:
        return style(empty_figure("No spans in this window: nothing to draw."), title="Service graph")
    pos = graph_layout(g)
    fig = go.Figure()
    ex, ey, mx, my, mdata = [], [], [], [], []
    arrows = []
    for u, v, d in sorted(g.edges(data=True)):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
        mx.append(x0 + 0.55 * (x1 - x0))
        my.append(y0 + 0.55 * (y1 - y0))
        mdata.append([u, v, d["calls"], d["rate_per_s"], d["error_pct"], d["p95_ms"]])
        arrows.append({"x": x0 + 0.8 * (x1 - x0), "y": y0 + 0.8 * (y1 - y0), "ax": x0, "ay": y0,
                       "xref": "x", "yref": "y", "axref": "x", "ayref": "y", "text": "",
                       "showarrow": True, "arrowhead": 3, "arrowsize": 1.4, "arrowcolor": "#888"})
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#bbb", "width": 2},
                             hoverinfo="skip", showlegend=False, name="calls"))
    hx, hy = [], []
    for u, v, d in sorted(g.edges(data=True)):
        if (u, v) not in marked:
            continue
        (x0, y0), (x1, y1) = pos[u], pos[v]
        hx += [x0, x1, None]
        hy += [y0, y1, None]
        requests = g.nodes[u]["requests"]
        per_request = f"{fmt_num(d['calls'] / requests, 3)} calls/request, " if requests else ""
        arrows.append({"x": (x0 + x1) / 2, "y": (y0 + y1) / 2, "xref": "x", "yref": "y", "showarrow": False,
                       "text": f"{per_request}p95 {fmt_ms(d['p95_ms'])}", "bgcolor": "rgba(255,255,255,0.85)",
                       "font": {"size": 11, "color": HIGHLIGHT_COLOR}, "yshift": 12})
    if hx:
        fig.add_trace(go.Scatter(x=hx, y=hy, mode="lines", line={"color": HIGHLIGHT_COLOR, "width": 5},
                                 hoverinfo="skip", name="calls named by findings", showlegend=True))
    fig.add_trace(go.Scatter(
        x=mx, y=my, mode="markers", marker={"size": 9, "color": "#888", "symbol": "circle-open"},
        customdata=mdata, name="calls", showlegend=False,
        hovertemplate=("%{customdata[0]} → %{customdata[1]}<br>calls: %{customdata[2]}<br>"
                       "rate: %{customdata[3]:.2f}/s<br>errors: %{customdata[4]:.1f}%<br>"
                       "p95: %{customdata[5]:.1f} ms<extra></extra>")))
    nodes = sorted(g.nodes)
    attrs = [g.nodes[n] for n in nodes]
    colors = case_service_colors(case)
    real = [i for i, a in enumerate(attrs) if not a["virtual"]]
    virtual = [i for i, a in enumerate(attrs) if a["virtual"]]
    rates = np.array([a["rate_per_s"] for a in attrs], dtype=float)
    sizes = _node_sizes(rates)
    for idx, is_virtual in ((real, False), (virtual, True)):
        if not idx:
            continue
        failing = [attrs[i]["error_pct"] >= 1.0 for i in idx]
        marker: dict[str, Any] = {"size": sizes[idx].tolist(),
                                  "line": {"width": [4 if f else 1 for f in failing],
                                           "color": [ERROR_COLOR if f else "#333" for f in failing]}}
        if is_virtual:
            marker.update(symbol="diamond", color=VIRTUAL_COLOR)
        else:
            marker.update(color=[colors.get(nodes[i], colors[None]) for i in idx])
        fig.add_trace(go.Scatter(
            x=[pos[nodes[i]][0] for i in idx], y=[pos[nodes[i]][1] for i in idx], mode="markers+text",
            text=[nodes[i] + (f" ({fmt_num(attrs[i]['error_pct'], 2)}% errors)" if f else "")
                  for i, f in zip(idx, failing)], textposition="bottom center", marker=marker,
            name="uninstrumented peers" if is_virtual else "services", showlegend=is_virtual,
            customdata=[[nodes[i], attrs[i]["requests"], attrs[i]["rate_per_s"], attrs[i]["error_pct"],
                         attrs[i]["p95_ms"]] for i in idx],
            hovertemplate=("%{customdata[0]}<br>requests: %{customdata[1]}<br>rate: %{customdata[2]:.2f}/s"
                           "<br>errors: %{customdata[3]:.1f}%<br>p95: %{customdata[4]:.1f} ms<extra></extra>")))
    fig.update_layout(annotations=arrows, xaxis={"visible": False}, yaxis={"visible": False},
                      legend={"orientation": "h", "y": -0.05})
    return style(fig, title="Service graph (size: request rate; red outline: 1% errors or more)")
