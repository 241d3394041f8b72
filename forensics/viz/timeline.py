"""Incident timeline: deploys and Kubernetes events, error rate and p99 per time bucket, findings
as shaded windows and change points of the p99 series.

:func:`timeline_series` and :func:`timeline_events` are the statistics (SQL);
:func:`timeline` draws them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import UsageError
from ..findings import Findings
from ..semantics import is_error_sql
from ..units import fmt_ms
from ._sql import ENTRY_SPANS_SQL, SpanFilter, frame
from ._theme import (BUCKETS, ERROR_COLOR, case_service_colors, check_bool, check_choice, check_text, check_window,
                     empty_figure, resolve_case, style)

_SERIES_SQL = """
, req AS ({requests})
SELECT time_bucket({interval}, start_time) AS bucket, count(*) AS requests,
       100.0 * avg({is_error}::INT) AS error_pct,
       quantile_cont(duration_ms, 0.99) AS p99_ms
FROM req GROUP BY bucket ORDER BY bucket
"""

#: requests of the whole system: root spans (no parent in the case)
_ROOTS_SQL = """
SELECT s.* FROM sel s LEFT JOIN spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
WHERE p.span_id IS NULL
"""

SEVERITY_FILL = {"critical": "rgba(214,39,40,0.18)", "high": "rgba(255,127,14,0.16)",
                 "medium": "rgba(255,187,51,0.14)", "low": "rgba(31,119,180,0.10)", "info": "rgba(150,150,150,0.08)"}


def timeline_series(case: Any, flt: SpanFilter, *, bucket: str = "1m") -> pd.DataFrame:
    """Per bucket: ``requests``, ``error_pct`` (%) and ``p99_ms`` of the service's entry spans
    (``flt.service`` set) or of root spans (the whole system's requests)."""
    check_choice("bucket", bucket, list(BUCKETS))
    requests = ENTRY_SPANS_SQL if flt.service else _ROOTS_SQL
    q = flt.cte() + _SERIES_SQL.format(requests=requests, interval=BUCKETS[bucket], is_error=is_error_sql("req"))
    return frame(case, q, flt.params)


def timeline_events(case: Any, flt: SpanFilter) -> pd.DataFrame:
    """Changes in the window (:func:`forensics.changes.change_events`: one row per deploy with its
    rollout's records merged), about ``flt.service`` (or any service)."""
    from ..changes import change_events

    ev = change_events(case, start=flt.start, end=flt.end)
    if flt.service is not None:
        ev = ev[ev["service"].isna() | ev["service"].eq(flt.service)]
    return ev.reset_index(drop=True)


#: series searched for change points: column, transform before the search, line colour
CHANGE_SERIES = (("p99_ms", "log10", "#9467bd"), ("error_pct", "identity", ERROR_COLOR))


def series_change_points(series: pd.DataFrame, *, penalty: float = 12.0) -> dict[str, list[int]]:
    """Indices where p99 (on a log scale) and the error rate shift, by column
    (:func:`forensics.stats.change_points`; fewer than 6 buckets give none)."""
    from ..stats import change_points

    out: dict[str, list[int]] = {}
    for column, transform, _ in CHANGE_SERIES:
        values = np.nan_to_num(series[column].to_numpy(dtype=float), nan=0.0)
        if transform == "log10":
            values = np.log10(np.maximum(values, 1e-3))
        out[column] = change_points(values, penalty=penalty) if len(values) >= 6 else []
    return out


def _findings_frame(findings: Any) -> pd.DataFrame:
    if findings is None:
        return pd.DataFrame(columns=["severity", "title", "detector", "start_time", "end_time", "summary"])
    if isinstance(findings, Findings):
        return findings.to_pandas()
    raise UsageError(f"findings must be a forensics.Findings (e.g. forensics.detect(case)) or None; "
                     f"got {type(findings).__name__}")


def timeline(case: Any, *, findings: Findings | None = None, incidents: Any = None, service: str | None = None,
             start: Any = None, end: Any = None, bucket: str = "1m", change_points: bool = True,
             change_penalty: float = 12.0) -> go.Figure:
    """Incident timeline.

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    findings:
        Findings to shade as windows (``start_time``..``end_time``), e.g. ``forensics.detect(case)``
        (ignored when ``incidents`` is given).
    incidents:
        :func:`forensics.incidents` result: each incident drawn as a labelled band from its onset
        to its end (or the end of the data), with a legend entry.
    service:
        Error rate and p99 of this service's requests (default: root spans, the system's requests);
        events about this service (and events without a service).
    start, end:
        Time window (UTC datetime or ISO 8601 string).
    bucket:
        Time bucket of the series: one of ``10s, 30s, 1m, 5m, 15m, 1h``.
    change_points:
        Mark where the p99 series (log10, purple) and the error rate (red) shift, by binary
        segmentation (:func:`forensics.stats.change_points`), with dotted vertical lines.
    change_penalty:
        Penalty of the change point search (1..100); larger finds fewer. The default ignores
        the minute-to-minute noise of p99 over a few dozen requests.

    Returns
    -------
    plotly.graph_objects.Figure
        Row 1: changes (:func:`forensics.changes.change_events`: a rollout's deploy and
        Kubernetes records are one marker), coloured by service, deploys labelled with service and
        version and drawn as dashed lines across the figure; row 2: error %; row 3: p99 (ms, log
        axis with 1-2-5 ticks). Every mark has a legend entry.
    """
    case = resolve_case(case)
    s, e = check_window(start, end)
    check_bool("change_points", change_points)
    if isinstance(change_penalty, bool) or not isinstance(change_penalty, (int, float)) or not 1 <= change_penalty <= 100:
        raise UsageError(f"change_penalty must be a number from 1 to 100; got {change_penalty!r}")
    flt = SpanFilter(start=s, end=e, service=check_text("service", service))
    series = timeline_series(case, flt, bucket=bucket)
    events = timeline_events(case, flt)
    found = _findings_frame(None if incidents is not None else findings)
    if series.empty and events.empty and found.empty:
        return style(empty_figure("No requests, events or findings in this window."), title="Incident timeline")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.2, 0.4, 0.4],
                        subplot_titles=("events", "errors (%)", "p99 (ms)"))
    _draw_changes(fig, events, case_service_colors(case))
    if not series.empty:
        fig.add_trace(go.Scatter(x=series["bucket"], y=series["error_pct"], name="error %", mode="lines+markers",
                                 line={"color": ERROR_COLOR}, customdata=series[["requests"]].values,
                                 hovertemplate="%{y:.2f}% of %{customdata[0]} requests<extra>errors</extra>"),
                      row=2, col=1)
        fig.add_trace(go.Scatter(x=series["bucket"], y=series["p99_ms"], name="p99", mode="lines+markers",
                                 hovertemplate="%{y:.1f} ms<extra>p99</extra>"), row=3, col=1)
        if change_points:
            found_cp = series_change_points(series, penalty=float(change_penalty))
            for column, _, color in CHANGE_SERIES:
                for i in found_cp[column]:
                    t = series["bucket"].iloc[i]
                    _across(fig, "line", t, t, line={"color": color, "dash": "dot", "width": 2})
                if found_cp[column]:
                    _legend_line(fig, f"{'p99' if column == 'p99_ms' else 'error-rate'} shift (change point)",
                                 {"color": color, "dash": "dot", "width": 2}, series["bucket"].iloc[0])
        _log_ticks(fig, series["p99_ms"])
    _shade_findings(fig, found)
    if incidents is not None:
        end_of_data = series["bucket"].max() if not series.empty else None
        _incident_bands(fig, incidents, end_of_data)
    fig.update_yaxes(type="log", row=3, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    fig.update_layout(legend={"orientation": "h", "y": -0.08, "yanchor": "top", "x": 0})
    return style(fig, title="Incident timeline", height=660)


def _legend_line(fig: go.Figure, name: str, line: dict[str, Any], at: Any) -> None:
    """A legend entry for marks drawn as shapes (dashed deploy lines, change points); ``at`` is
    any time of the figure (an empty point keeps the axis a date axis)."""
    fig.add_trace(go.Scatter(x=[at], y=[None], mode="lines", name=name, line=line, hoverinfo="skip"), row=3, col=1)


def _draw_changes(fig: go.Figure, events: pd.DataFrame, colors: dict) -> None:
    """One marker per change, coloured by service, symbol by kind; deploys labelled and drawn as
    dashed lines across the figure."""
    if events.empty:
        return
    for kind, part in events.groupby(events["kind"].fillna("event"), sort=True):
        labelled = kind in ("deploy", "rollback", "config")
        text = [" ".join(str(v) for v in (svc, ver) if isinstance(v, str)) for svc, ver in zip(part["service"], part["version"])]
        fig.add_trace(go.Scatter(
            x=part["time"], y=[kind] * len(part), mode="markers+text" if labelled else "markers", name=kind,
            text=text if labelled else None, textposition="top right", textfont={"size": 11},
            marker={"size": 12, "symbol": {"deploy": "triangle-up", "rollback": "triangle-down", "config": "diamond"}
                    .get(kind, "circle"), "color": [colors.get(svc, colors[None]) for svc in part["service"]],
                    "line": {"width": 1, "color": "#333"}},
            customdata=part[["label", "records", "message"]].astype(object).where(part[["label", "records", "message"]].notna(), "")
            .values.tolist(),
            hovertemplate="%{x}<br>%{customdata[0]}<br>%{customdata[1]} record(s)<br>%{customdata[2]}<extra></extra>"),
            row=1, col=1)
    deploys = events.loc[events["kind"].isin(["deploy", "rollback"]), "time"]
    for t in deploys:
        _across(fig, "line", t, t, line={"color": "#555", "dash": "dash", "width": 1})
    if len(deploys):
        _legend_line(fig, "deploy (across the figure)", {"color": "#555", "dash": "dash", "width": 1}, deploys.iloc[0])


def _log_ticks(fig: go.Figure, values: pd.Series) -> None:
    """1-2-5 ticks labelled with units (``200 ms``, ``1 s``) on the p99 log axis."""
    v = values[values > 0]
    if v.empty:
        return
    lo, hi = np.floor(np.log10(v.min())), np.ceil(np.log10(v.max()))
    ticks = [m * 10 ** d for d in np.arange(lo, hi + 1) for m in (1, 2, 5) if v.min() / 2 <= m * 10 ** d <= v.max() * 2]
    fig.update_yaxes(tickvals=ticks, ticktext=[fmt_ms(t) for t in ticks], row=3, col=1)


def _incident_bands(fig: go.Figure, incidents: Any, end_of_data: Any) -> None:
    """A labelled band per incident from its onset, with a legend entry."""
    for inc in incidents:
        if inc["onset"] is None:
            continue
        x1 = inc["end_time"] or end_of_data or inc["onset"]
        fill = SEVERITY_FILL.get(inc["severity"], SEVERITY_FILL["info"])
        name = f"{inc['incident_id']}: {inc['title']}"
        fig.add_shape(type="rect", x0=inc["onset"], x1=x1, xref="x", yref="paper", y0=0, y1=1, line_width=0,
                      layer="below", fillcolor=fill, showlegend=True, name=name if len(name) < 90 else name[:89] + "…",
                      label={"text": inc["incident_id"], "textposition": "top left", "font": {"size": 11}})


def _across(fig: go.Figure, kind: str, x0: Any, x1: Any, **shape: Any) -> None:
    """A vertical line or band over the whole height of the figure (all rows)."""
    fig.add_shape(type=kind, x0=x0, x1=x1, xref="x", yref="paper", y0=0, y1=1, **shape)


def _shade_findings(fig: go.Figure, found: pd.DataFrame) -> None:
    """Shaded rectangles (no text) per finding window, and an invisible hover point per finding."""
    found = found.dropna(subset=["start_time"])
    if found.empty:
        return
    ends = found["end_time"].fillna(found["start_time"])
    for (_, f), end_time in zip(found.iterrows(), ends):
        _across(fig, "rect", f["start_time"], end_time, line_width=0, layer="below",
                fillcolor=SEVERITY_FILL.get(f["severity"], SEVERITY_FILL["info"]))
    mid = found["start_time"] + (ends - found["start_time"]) / 2
    cols = ["severity", "detector", "title", "summary"]
    fig.add_trace(go.Scatter(x=mid, y=["findings"] * len(found), mode="markers", name="findings",
                             marker={"symbol": "square", "size": 10, "color": "rgba(214,39,40,0.6)"},
                             customdata=found[cols].astype(object).where(found[cols].notna(), "").values.tolist(),
                             hovertemplate="[%{customdata[0]}] %{customdata[1]}<br>%{customdata[2]}<br>"
                                           "%{customdata[3]}<extra>finding</extra>"), row=1, col=1)
