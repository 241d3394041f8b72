"""BubbleUp-style bars: which attribute values are over-represented in a selection of spans.

Draws the result of :func:`forensics.analysis.compare` (columns ``dimension``, ``value``,
``selection_pct``, ``baseline_pct``, ``diff_pct``...).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa

from ..errors import UsageError
from ._theme import CRITICAL_COLOR, check_int, empty_figure, style

REQUIRED = ("dimension", "value", "selection_pct", "baseline_pct")


def _as_frame(result: Any) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        df = result
    elif isinstance(result, pa.Table):
        df = result.to_pandas()
    elif hasattr(result, "to_pandas"):  # forensics.Result, polars
        df = result.to_pandas()
    else:
        raise UsageError("compare_result must be the Result of forensics.analysis.compare (or a pandas/Arrow "
                         f"table with columns {', '.join(REQUIRED)}); got {type(result).__name__}")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UsageError(f"compare_result lacks column(s) {missing}; expected columns {list(REQUIRED)} "
                         f"(the result of forensics.analysis.compare); got {list(df.columns)}")
    return df


def compare_bars(compare_result: Any, *, top: int = 15) -> go.Figure:
    """Horizontal bars of selection vs baseline share for the most different attribute values.

    Parameters
    ----------
    compare_result:
        Result of :func:`forensics.analysis.compare` (or a DataFrame / Arrow table with columns
        ``dimension``, ``value``, ``selection_pct``, ``baseline_pct`` and optionally ``diff_pct``).
    top:
        Draw the ``top`` values with the largest ``|selection_pct - baseline_pct|`` (1..100).

    Returns
    -------
    plotly.graph_objects.Figure
        One row per ``dimension = value``, largest difference on top; two bars per row: share
        of the selected spans and of the baseline spans carrying the value (%).
    """
    check_int("top", top, low=1, high=100)
    df = _as_frame(compare_result).copy()
    if df.empty:
        return style(empty_figure("No attribute values to compare."), title="Selection vs baseline")
    if "diff_pct" not in df.columns:
        df["diff_pct"] = df["selection_pct"] - df["baseline_pct"]
    df = df.assign(_abs=df["diff_pct"].abs()).sort_values(["_abs", "dimension"], ascending=[False, True]).head(top)
    df = df.iloc[::-1]  # plotly draws the first category at the bottom
    labels = (df["dimension"].astype(str) + " = " + df["value"].astype(str)).tolist()
    custom = df[["dimension", "value", "diff_pct"]].astype(object).where(df[["dimension", "value", "diff_pct"]].notna(),
                                                                         "").values.tolist()
    fig = go.Figure()
    for col, name, color in (("baseline_pct", "baseline", "#9e9e9e"), ("selection_pct", "selection", CRITICAL_COLOR)):
        fig.add_trace(go.Bar(x=df[col], y=list(range(len(df))), orientation="h", name=name,
                             marker={"color": color}, customdata=custom,
                             hovertemplate=("%{customdata[0]} = %{customdata[1]}<br>" + name +
                                            ": %{x:.1f}%<br>difference: %{customdata[2]:+.1f} points<extra></extra>")))
    fig.update_layout(barmode="group", height=max(300, 80 + 34 * len(df)),
                      yaxis={"tickvals": list(range(len(df))), "ticktext": [_label(t) for t in labels],
                             "automargin": True},
                      xaxis={"title": {"text": "% of spans with the value"}, "rangemode": "tozero"},
                      legend={"orientation": "h", "y": -0.12})
    return style(fig, title="Selection vs baseline: most different attribute values")


def _label(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
