"""Version comparison of one service: latency distributions and calls per request by dependency.

:func:`version_latency` and :func:`calls_per_request` are the statistics (SQL);
:func:`version_compare` draws them side by side.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..semantics import call_target_sql, is_call_sql
from ._sql import ENTRY_SPANS_SQL, SpanFilter, frame
from ._theme import (check_choice, check_int, check_text, check_window, empty_figure, resolve_case,
                     service_colors, style)

KINDS = ("violin", "box", "ecdf")

#: requests served by the service (entry spans), a deterministic sample per version
_LATENCY_SQL = """
, req AS ({entry})
SELECT coalesce(service_version, '(none)') AS version, duration_ms,
       count(*) OVER (PARTITION BY version) AS requests,
       min(start_time) OVER (PARTITION BY version) AS first_seen
FROM req
QUALIFY row_number() OVER (PARTITION BY version ORDER BY hash(span_id), span_id) <= $max_points
ORDER BY first_seen, version
"""

#: outbound calls (:func:`forensics.semantics.is_call_sql`) of the service in the requests' traces,
#: by dependency (:func:`forensics.semantics.call_target_sql`: the child span's service, else the
#: peer it names), per version of the request
_CALLS_SQL = f"""
, req AS ({{entry}}),
versions AS (
  SELECT coalesce(service_version, '(none)') AS version, count(*) AS requests, min(start_time) AS first_seen
  FROM req GROUP BY ALL
),
calls AS (
  SELECT coalesce(r.service_version, '(none)') AS version,
         {call_target_sql('c', 'k')} AS dependency, count(DISTINCT c.span_id) AS calls
  FROM req r
  JOIN spans c ON c.trace_id = r.trace_id AND c.service = r.service AND {is_call_sql('c')}
  LEFT JOIN spans k ON k.trace_id = c.trace_id AND k.parent_span_id = c.span_id AND k.service IS DISTINCT FROM c.service
  GROUP BY ALL
)
SELECT v.version, c.dependency, c.calls, v.requests, c.calls / v.requests AS calls_per_request
FROM calls c JOIN versions v USING (version)
ORDER BY v.first_seen, v.version, c.dependency
"""


def version_latency(case: Any, flt: SpanFilter, *, max_points: int = 5000) -> pd.DataFrame:
    """Durations (ms) of the service's requests per version (at most ``max_points`` per version,
    a deterministic hash sample), versions in order of first appearance."""
    return frame(case, flt.cte() + _LATENCY_SQL.format(entry=ENTRY_SPANS_SQL), {**flt.params, "max_points": max_points})


def calls_per_request(case: Any, flt: SpanFilter) -> pd.DataFrame:
    """Per (version, dependency): ``calls`` made by the service in the requests' traces,
    ``requests`` of that version, and ``calls_per_request``."""
    return frame(case, flt.cte() + _CALLS_SQL.format(entry=ENTRY_SPANS_SQL), flt.params)


def version_compare(case: Any, *, service: str, operation: str | None = None, start: Any = None, end: Any = None,
                    kind: str = "violin", max_points: int = 5000) -> go.Figure:
    """Compare the versions of a service: latency distribution and calls per request by dependency.

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    service:
        Service name; its requests are its entry spans (no parent, or a parent in another service).
    operation:
        Only requests with this span name (e.g. ``"GET /search"``).
    start, end:
        Time window (UTC datetime or ISO 8601 string).
    kind:
        Latency distribution style: ``violin``, ``box`` or ``ecdf``.
    max_points:
        Durations drawn per version (deterministic sample), 100..1,000,000.

    Returns
    -------
    plotly.graph_objects.Figure
        Left: request duration (ms, log) by version; right: calls per request to each dependency,
        one bar per version.
    """
    case = resolve_case(case)
    check_choice("kind", kind, KINDS)
    check_int("max_points", max_points, low=100, high=1_000_000)
    s, e = check_window(start, end)
    flt = SpanFilter(start=s, end=e, service=check_text("service", service, required=True),
                     operation=check_text("operation", operation))
    lat = version_latency(case, flt, max_points=max_points)
    title = f"Versions of {service}" + (f" {operation}" if operation else "")
    if lat.empty:
        return style(empty_figure("No requests for this service in this window."), title=title)
    calls = calls_per_request(case, flt)
    versions = list(dict.fromkeys(lat["version"]))
    colors = service_colors(versions)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.12,
                        subplot_titles=("request duration (ms)", "calls per request by dependency"))
    for v in versions:
        d = lat.loc[lat["version"] == v, "duration_ms"]
        common = {"name": v, "legendgroup": v, "marker": {"color": colors[v]}}
        if kind == "violin":
            fig.add_trace(go.Violin(x=[v] * len(d), y=d, box={"visible": True}, meanline={"visible": True},
                                    points=False, hoverinfo="y", **common), row=1, col=1)
        elif kind == "box":
            fig.add_trace(go.Box(x=[v] * len(d), y=d, boxpoints=False, **common), row=1, col=1)
        else:
            ys = d.sort_values().to_numpy()
            fig.add_trace(go.Scatter(x=ys, y=np.arange(1, len(ys) + 1) / len(ys), mode="lines",
                                     line={"shape": "hv", "color": colors[v]}, name=v, legendgroup=v,
                                     hovertemplate="%{x:.1f} ms: %{y:.1%}<extra></extra>"), row=1, col=1)
    for v in versions:
        part = calls[calls["version"] == v]
        if part.empty:
            continue
        fig.add_trace(go.Bar(x=part["dependency"], y=part["calls_per_request"], name=v, legendgroup=v,
                             showlegend=False, marker={"color": colors[v]},
                             customdata=part[["version", "dependency", "calls", "requests"]].values.tolist(),
                             hovertemplate=("%{customdata[0]} → %{customdata[1]}<br>%{y:.2f} calls/request"
                                            "<br>%{customdata[2]} calls in %{customdata[3]} requests<extra></extra>")),
                      row=1, col=2)
    if kind == "ecdf":
        fig.update_xaxes(type="log", title={"text": "ms"}, row=1, col=1)
        fig.update_yaxes(title={"text": "fraction of requests"}, row=1, col=1)
    else:
        fig.update_yaxes(type="log", row=1, col=1)
    fig.update_layout(barmode="group")
    return style(fig, title=title, height=460)
