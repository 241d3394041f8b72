"""RED panel of a service: request rate, error %, and duration p50/p95/p99 over time.

:func:`red_frame` is the statistic (:meth:`forensics.Case.red`, SQL per time bucket);
:func:`red_panel` draws it.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._theme import (BUCKETS, ERROR_COLOR, check_choice, check_text, check_window, empty_figure,
                     resolve_case, style)


def red_frame(case: Any, *, service: str, operation: str | None = None, version: str | None = None,
              start: Any = None, end: Any = None, bucket: str = "1m") -> pd.DataFrame:
    """RED series of one service from :meth:`forensics.Case.red` (requests are its server and
    consumer spans and roots): per time ``bucket``, ``requests``, ``rate_per_s``, ``error_pct``
    (% with status error or HTTP 5xx), ``p50_ms``, ``p95_ms``, ``p99_ms`` (ms).

    ``case.red`` groups by service (and span name / version when those are chosen); the chosen
    values then pick their rows here, so they never enter SQL text.
    """
    check_choice("bucket", bucket, list(BUCKETS))
    by = ["service"] + (["name"] if operation is not None else []) + (["service_version"] if version is not None else [])
    df = case.red(by=by, every=bucket, start=start, end=end).to_pandas()
    keep = df["service"] == service
    if operation is not None:
        keep &= df["name"] == operation
    if version is not None:
        keep &= df["service_version"] == version
    df = df[keep].rename(columns={"time": "bucket"}).reset_index(drop=True)
    df["error_pct"] = 100.0 * df["error_rate"]
    return df


def red_panel(case: Any, *, service: str, operation: str | None = None, version: str | None = None,
              start: Any = None, end: Any = None, bucket: str = "1m") -> go.Figure:
    """Rate / errors / duration subplots for the requests ``service`` served.

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    service:
        Service name (``spans.service``).
    operation, version:
        Only this span name / this ``service_version``.
    start, end:
        Time window (UTC datetime or ISO 8601 string).
    bucket:
        Time bucket: one of ``10s, 30s, 1m, 5m, 15m, 1h``.

    Returns
    -------
    plotly.graph_objects.Figure
        Three rows sharing the time axis: requests/s, error %, and p50/p95/p99 in ms.
    """
    case = resolve_case(case)
    s, e = check_window(start, end)
    df = red_frame(case, service=check_text("service", service, required=True),
                   operation=check_text("operation", operation), version=check_text("version", version),
                   start=s, end=e, bucket=bucket)
    title = f"RED: {service}" + (f" {operation}" if operation else "")
    if df.empty:
        return style(empty_figure("No requests for this service in this window."), title=title)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("rate (requests/s)", "errors (%)", "duration (ms)"))
    fig.add_trace(go.Scatter(x=df["bucket"], y=df["rate_per_s"], name="rate", mode="lines+markers",
                             customdata=df[["requests"]].values,
                             hovertemplate="%{y:.2f}/s (%{customdata[0]} requests)<extra>rate</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=df["bucket"], y=df["error_pct"], name="errors", mode="lines+markers",
                             line={"color": ERROR_COLOR}, customdata=df[["errors"]].values,
                             hovertemplate="%{y:.1f}% (%{customdata[0]} errors)<extra>errors</extra>"), row=2, col=1)
    for col, dash in (("p50_ms", "dot"), ("p95_ms", "dash"), ("p99_ms", "solid")):
        fig.add_trace(go.Scatter(x=df["bucket"], y=df[col], name=col.removesuffix("_ms"), mode="lines",
                                 line={"dash": dash}, hovertemplate="%{y:.1f} ms<extra>" + col[:3] + "</extra>"),
                      row=3, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    fig.update_yaxes(type="log", row=3, col=1)
    return style(fig, title=title, height=620)
