"""Latency heatmap: time buckets x log-latency bins, request counts as colour.

:func:`latency_histogram` is the statistic (SQL: time bucket, log10 bin, count);
:func:`latency_heatmap` pivots and draws it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._sql import ENTRY_SPANS_SQL, SpanFilter, frame
from ._theme import BUCKETS, check_choice, check_int, check_text, check_window, empty_figure, resolve_case, style

_HIST_SQL = """
, entry AS ({entry})
SELECT time_bucket({interval}, start_time) AS bucket,
       floor(log10(greatest(duration_ms, 0.001)) * $bins_per_decade)::INT AS bin,
       count(*) AS requests
FROM entry WHERE duration_ms IS NOT NULL GROUP BY bucket, bin ORDER BY bucket, bin
"""


def latency_histogram(case: Any, flt: SpanFilter, *, bucket: str = "1m", bins_per_decade: int = 10) -> pd.DataFrame:
    """Counts of requests (entry spans) per (time ``bucket``, latency ``bin``); bin ``k`` holds
    durations in ``[10**(k/bins_per_decade), 10**((k+1)/bins_per_decade))`` ms."""
    check_choice("bucket", bucket, list(BUCKETS))
    q = flt.cte() + _HIST_SQL.format(entry=ENTRY_SPANS_SQL, interval=BUCKETS[bucket])
    return frame(case, q, {**flt.params, "bins_per_decade": bins_per_decade})


def latency_heatmap(case: Any, *, service: str | None = None, operation: str | None = None,
                    version: str | None = None, start: Any = None, end: Any = None, bucket: str = "1m",
                    bins_per_decade: int = 10) -> go.Figure:
    """Heatmap of request latency over time (log-scaled latency bins).

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    service, operation, version:
        Requests served by this service / with this span name / of this version (``None``: all).
    start, end:
        Time window (UTC datetime or ISO 8601 string).
    bucket:
        Time bucket: one of ``10s, 30s, 1m, 5m, 15m, 1h``.
    bins_per_decade:
        Latency bins per factor of 10 (1..50).

    Returns
    -------
    plotly.graph_objects.Figure
        x: bucket start (UTC); y: log10 of the bin's lower edge in ms (ticks labelled in ms);
        colour: number of requests.
    """
    case = resolve_case(case)
    s, e = check_window(start, end)
    check_int("bins_per_decade", bins_per_decade, low=1, high=50)
    flt = SpanFilter(start=s, end=e, service=check_text("service", service),
                     operation=check_text("operation", operation), version=check_text("version", version))
    hist = latency_histogram(case, flt, bucket=bucket, bins_per_decade=bins_per_decade)
    title = "Latency heatmap" + (f": {service}" if service else "") + (
        f" {operation}" if operation else "")
    if hist.empty:
        return style(empty_figure("No requests in this window."), title=title)
    grid = hist.pivot(index="bin", columns="bucket", values="requests")
    grid = grid.reindex(range(int(grid.index.min()), int(grid.index.max()) + 1)).fillna(0)
    y = grid.index.to_numpy() / bins_per_decade
    edges_ms = 10 ** y
    fig = go.Figure(go.Heatmap(
        x=grid.columns, y=y, z=grid.to_numpy(), colorscale="Viridis", colorbar={"title": {"text": "requests"}},
        customdata=np.repeat(np.stack([edges_ms, edges_ms * 10 ** (1 / bins_per_decade)], axis=1)[:, None, :],
                             grid.shape[1], axis=1),
        hovertemplate="%{x}<br>%{customdata[0]:.1f}–%{customdata[1]:.1f} ms<br>%{z} requests<extra></extra>"))
    decades = np.arange(np.floor(y.min()), np.ceil(y.max()) + 1)
    fig.update_layout(yaxis={"title": {"text": "latency (ms, log)"}, "tickvals": decades.tolist(),
                             "ticktext": [f"{10 ** d:g} ms" for d in decades]},
                      xaxis={"title": {"text": "time (UTC)"}})
    return style(fig, title=title)
