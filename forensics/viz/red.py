"""RED panel of a service: request rate, error %, and duration p50/p95/p99 over time.

:func:`red_frame` is the statistic (SQL over the service's entry spans per time bucket);
:func:`red_panel` draws it.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._sql import ENTRY_SPANS_SQL, SpanFilter, frame
from ._theme import (BUCKET_SECONDS, BUCKETS, ERROR_COLOR, check_choice, check_text, check_window, empty_figure,
                     escape_label, resolve_case, style)

_RED_SQL = """
, entry AS ({entry})
SELECT time_bucket({interval}, start_time) AS bucket,
       count(*) AS requests,
       count(*) / {seconds} AS rate_per_s,
       100.0 * avg((status = 'error')::INT) AS error_pct,
       quantile_cont(duration_ms, 0.5) AS p50_ms,
       quantile_cont(duration_ms, 0.95) AS p95_ms,
       quantile_cont(duration_ms, 0.99) AS p99_ms
FROM entry GROUP BY bucket ORDER BY bucket
"""


def red_frame(case: Any, flt: SpanFilter, *, bucket: str = "1m") -> pd.DataFrame:
    """Per time bucket of the requests a service served (its entry spans): ``requests``,
    ``rate_per_s`` (requests/s), ``error_pct`` (% with status error), ``p50_ms``, ``p95_ms``,
    ``p99_ms`` (ms)."""
    check_choice("bucket", bucket, list(BUCKETS))
    q = flt.cte() + _RED_SQL.format(entry=ENTRY_SPANS_SQL, interval=BUCKETS[bucket], seconds=BUCKET_SECONDS[bucket])
    return frame(case, q, flt.params)


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
    flt = SpanFilter(start=s, end=e, service=check_text("service", service, required=True),
                     operation=check_text("operation", operation), version=check_text("version", version))
    df = red_frame(case, flt, bucket=bucket)
    title = f"RED: {escape_label(service)}" + (f" {escape_label(operation)}" if operation else "")
    if df.empty:
        return style(empty_figure("No requests for this service in this window."), title=title)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("rate (requests/s)", "errors (%)", "duration (ms)"))
    fig.add_trace(go.Scatter(x=df["bucket"], y=df["rate_per_s"], name="rate", mode="lines+markers",
                             customdata=df[["requests"]].values,
                             hovertemplate="%{y:.2f}/s (%{customdata[0]} requests)<extra>rate</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=df["bucket"], y=df["error_pct"], name="errors", mode="lines+markers",
                             line={"color": ERROR_COLOR}, hovertemplate="%{y:.1f}%<extra>errors</extra>"), row=2, col=1)
    for col, dash in (("p50_ms", "dot"), ("p95_ms", "dash"), ("p99_ms", "solid")):
        fig.add_trace(go.Scatter(x=df["bucket"], y=df[col], name=col.removesuffix("_ms"), mode="lines",
                                 line={"dash": dash}, hovertemplate="%{y:.1f} ms<extra>" + col[:3] + "</extra>"),
                      row=3, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    fig.update_yaxes(type="log", row=3, col=1)
    return style(fig, title=title, height=620)
