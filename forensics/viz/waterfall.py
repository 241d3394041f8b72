"""Trace waterfall, drawn as Jaeger draws one: a time ruler on top, one compact row per span
indented by depth, coloured by service, errors marked, the critical path and the trace's logs.

Repeated sibling calls (the same operation called by the same parent, ``collapse`` times or more:
an N+1, a retry loop) are folded into one row, ``x50 catalog-service: GET /inventory/{id}, 1.5 s
total``, that still shows every call's bar at its time; the figure's "expand" button shows every
span on its own row (:func:`collapsed_rows`).

The span tree order and depths are computed in SQL (:func:`trace_spans`); the critical path
comes from :mod:`forensics.analysis.critical_path` (Jaeger's walk); logs are placed on their
span's row (:func:`trace_logs`).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..analysis.critical_path import critical_path as analysis_critical_path
from ..semantics import is_error_sql
from ..units import fmt_ms
from ._sql import frame
from ._theme import (CRITICAL_COLOR, ERROR_COLOR, check_bool, check_int, check_text, empty_figure,
                     resolve_case, case_service_colors, style)

MAX_DEPTH = 256

#: rows in depth-first order (children by start time), with depth and offsets from the trace start.
#: Spans whose parent is not in the trace are roots (an incomplete trace still draws).
_SPANS_SQL = f"""
WITH RECURSIVE t AS (SELECT * FROM spans WHERE trace_id = $trace_id),
roots AS (
  SELECT s.span_id FROM t s LEFT JOIN t p ON p.span_id = s.parent_span_id WHERE p.span_id IS NULL
),
tree(span_id, depth, path) AS (
  SELECT s.span_id, 0, [{{'t': s.start_time, 'id': s.span_id}}]
  FROM t s JOIN roots USING (span_id)
  UNION ALL
  SELECT c.span_id, tree.depth + 1, list_append(tree.path, {{'t': c.start_time, 'id': c.span_id}})
  FROM tree JOIN t c ON c.parent_span_id = tree.span_id
  WHERE tree.depth < {MAX_DEPTH}
),
t0 AS (SELECT min(start_time) AS t0 FROM t)
SELECT t.span_id, t.parent_span_id, t.service, t.service_version, t.name, t.kind, t.status,
       t.status_message, {is_error_sql('t')} AS is_error, t.duration_ms, t.start_time, tree.depth,
       [p.id FOR p IN tree.path] AS path,
       epoch_us(t.start_time - t0.t0) / 1000.0 AS offset_ms
FROM tree JOIN t USING (span_id) CROSS JOIN t0
ORDER BY tree.path
"""

_LOGS_SQL = """
WITH t AS (SELECT * FROM spans WHERE trace_id = $trace_id),
t0 AS (SELECT min(start_time) AS t0 FROM t)
SELECT l.time, l.severity, l.body, l.span_id, l.service,
       epoch_us(l.time - t0.t0) / 1000.0 AS offset_ms
FROM logs l CROSS JOIN t0
WHERE l.trace_id = $trace_id
ORDER BY l.time
"""


def trace_spans(case: Any, trace_id: str) -> pd.DataFrame:
    """Spans of one trace in waterfall order: depth, offset_ms from the trace start,
    ``critical`` (on the critical path, :func:`forensics.analysis.critical_path.critical_path`)
    and ``self_ms`` (the span's own time on the critical path, NaN off the path)."""
    spans = frame(case, _SPANS_SQL, {"trace_id": trace_id})
    crit = analysis_critical_path(case, trace_id).to_pandas()[["span_id", "self_ms"]]
    spans = spans.merge(crit, on="span_id", how="left")
    spans["critical"] = spans["self_ms"].notna()
    spans["row"] = range(len(spans))
    return spans


def trace_logs(case: Any, trace_id: str, spans: pd.DataFrame) -> pd.DataFrame:
    """Logs of the trace with the waterfall ``row`` of their span (the first row when the log
    has no span id or names a span not in the trace)."""
    logs = frame(case, _LOGS_SQL, {"trace_id": trace_id})
    rows = dict(zip(spans["span_id"], spans["row"]))
    logs["row"] = logs["span_id"].map(rows).fillna(0).astype(int)
    return logs


def collapsed_rows(spans: pd.DataFrame, collapse: int | None) -> tuple[pd.Series, pd.DataFrame]:
    """Row of each span in the folded view (NaN: hidden under a folded row) and the folded rows.

    Siblings with the same parent, service and name, ``collapse`` or more of them, share one row
    (at the first one's place); what is below them is hidden. Returns ``(row per span, labels)``
    where labels has ``row``, ``label`` and ``folded`` (how many spans the row stands for).
    """
    key = spans["parent_span_id"].fillna("") + "\x00" + spans["service"].fillna("") + "\x00" + spans["name"].fillna("")
    size = key.map(key.value_counts())
    folded = size.ge(collapse) if collapse else pd.Series(False, index=spans.index)
    members = set(spans.loc[folded, "span_id"])
    # hidden: strictly below a folded span (an ancestor on the path is a folded member)
    below = spans["path"].map(lambda p: any(a in members for a in list(p)[:-1]))
    first = ~key.duplicated() | ~folded
    shown = ~below & first
    order = shown.cumsum() - 1
    head_row = pd.Series(order.where(shown).to_numpy(), index=key.to_numpy())
    head_row = head_row[~head_row.index.duplicated()]
    rows = order.where(shown)
    rows = rows.where(~(folded & ~below), key.map(head_row))
    rows = rows.where(~below)
    visible = spans[shown]
    total = spans[folded & ~below].groupby(key[folded & ~below])["duration_ms"].sum()
    labels = []
    for i, r in visible.iterrows():  # one per drawn row (folded rows are few)
        text = ("\u00a0\u00a0" * int(r["depth"])) + f"{r['service']}: {r['name']}"
        n = int(size[i]) if folded[i] else 1
        if n > 1:
            text = ("\u00a0\u00a0" * int(r["depth"])) + f"x{n} {r['service']}: {r['name']}, {fmt_ms(total[key[i]])} total"
        labels.append({"row": int(rows[i]), "label": text, "folded": n})
    return rows, pd.DataFrame(labels, columns=["row", "label", "folded"])


def _hover(df: pd.DataFrame) -> list[list[Any]]:
    cols = ["service", "name", "duration_ms", "offset_ms", "status", "status_message", "span_id", "service_version"]
    return df[cols].astype(object).where(df[cols].notna(), "").values.tolist()


_SPAN_HOVER = ("%{customdata[0]} %{customdata[7]}<br>%{customdata[1]}<br>duration: %{customdata[2]:.2f} ms"
               "<br>start: +%{customdata[3]:.2f} ms<br>status: %{customdata[4]} %{customdata[5]}"
               "<br>span %{customdata[6]}<extra></extra>")


def waterfall(case: Any, trace_id: str, *, critical_path: bool = True, logs: bool = True,
              max_spans: int = 2000, collapse: int | None = 3) -> go.Figure:
    """Waterfall (Gantt) of one trace.

    Parameters
    ----------
    case:
        A :class:`forensics.Case` (or a path to a case file / export directory).
    trace_id:
        The trace (32 lowercase hex characters; shorter ids are left-padded like the loaders do).
    critical_path:
        Overlay the critical path (orange inner bars).
    logs:
        Draw the trace's logs as markers on their span's row at their time.
    max_spans:
        Draw at most this many spans (the first ones in tree order; 1..100,000); a note says
        how many were left out.
    collapse:
        Fold sibling calls repeated this many times or more (2..1000) into one row; ``None``
        draws every span on its own row. A folded figure has an "expand" button.

    Returns
    -------
    plotly.graph_objects.Figure
        x: milliseconds since the trace started (ruler on top); one bar per span (one trace per
        service and view); error spans outlined in red with an ``x`` at their end. The traces
        of the expanded view (``meta="expanded"``) are hidden until the button shows them.
    """
    case = resolve_case(case)
    trace_id = check_text("trace_id", trace_id, required=True).strip().lower().rjust(32, "0")
    check_bool("critical_path", critical_path)
    check_bool("logs", logs)
    check_int("max_spans", max_spans, low=1, high=100_000)
    if collapse is not None:
        check_int("collapse", collapse, low=2, high=1000)
    spans = trace_spans(case, trace_id)
    if spans.empty:
        return style(empty_figure("No spans with this trace id in the case."), title="Trace waterfall")
    total, end_ms = len(spans), spans["offset_ms"].add(spans["duration_ms"]).max()
    spans = spans.head(max_spans).reset_index(drop=True)
    colors = case_service_colors(case)
    lg = trace_logs(case, trace_id, spans) if logs else pd.DataFrame()
    if not lg.empty:
        lg = lg[lg["span_id"].isna() | lg["span_id"].isin(spans["span_id"])]
    full_labels = pd.DataFrame({"row": spans["row"], "folded": 1, "label": [
        ("\u00a0\u00a0" * int(d)) + f"{s}: {n}" for d, s, n in zip(spans["depth"], spans["service"], spans["name"])]})
    views = [("expanded", spans["row"].astype(float), full_labels)]
    if collapse is not None:
        rows, labels = collapsed_rows(spans, collapse)
        if len(labels) < len(spans):
            views.insert(0, ("folded", rows, labels))
    fig = go.Figure()
    for n_view, (view, rows, labels) in enumerate(views):
        _draw(fig, spans.assign(row=rows), lg, colors, view=view, visible=n_view == 0, critical_path=critical_path)
    first_labels = views[0][2]
    height = _height(len(first_labels))
    fig.update_layout(barmode="overlay", bargap=0.25, height=height,
                      xaxis={"side": "top", "ticksuffix": " ms", "zeroline": False, "showgrid": True,
                             "title": {"text": ""}},
                      yaxis={"tickvals": first_labels["row"].tolist(), "ticktext": first_labels["label"].tolist(),
                             "autorange": "reversed", "automargin": True, "range": None},
                      legend={"orientation": "h", "y": 0, "yanchor": "top", "x": 0})
    if len(views) == 2:
        buttons = []
        for k, (view, _, labels) in enumerate(views):
            buttons.append({"label": "fold repeated calls" if view == "folded" else "expand every span",
                            "method": "update",
                            "args": [{"visible": [t.meta == view for t in fig.data]},
                                     {"yaxis.tickvals": labels["row"].tolist(), "yaxis.ticktext": labels["label"].tolist(),
                                      "height": _height(len(labels))}]})
        fig.update_layout(updatemenus=[{"type": "buttons", "direction": "left", "x": 1, "xanchor": "right",
                                        "y": 1.0, "yanchor": "bottom", "pad": {"b": 24}, "showactive": True,
                                        "buttons": buttons}])
    if total > len(spans):
        fig.add_annotation(text=f"showing the first {len(spans)} of {total} spans (max_spans)", xref="paper",
                           yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom", yshift=22, showarrow=False)
    style(fig, title=f"Trace {trace_id}: {total} spans, {fmt_ms(end_ms)}", height=height)
    fig.update_layout(margin={"t": 100, "b": 50})
    return fig


def _height(rows: int) -> int:
    """Compact: 20 px per row plus the title, the ruler and the legend."""
    return max(220, 160 + 20 * rows)


def _draw(fig: go.Figure, spans: pd.DataFrame, lg: pd.DataFrame, colors: dict, *, view: str, visible: bool,
          critical_path: bool) -> None:
    """The traces of one view: bars per service, critical path, errors, logs (``meta=view``)."""
    drawn = spans[spans["row"].notna()]
    common = {"meta": view, "visible": visible}
    for service, part in drawn.groupby("service", sort=True, dropna=False):
        err = part["is_error"]
        fig.add_trace(go.Bar(
            x=part["duration_ms"], base=part["offset_ms"], y=part["row"], orientation="h", name=service,
            marker={"color": colors.get(service, colors[None]),
                    "line": {"color": [ERROR_COLOR if e else "rgba(0,0,0,0.3)" for e in err],
                             "width": [3 if e else 1 for e in err]}},
            customdata=_hover(part), hovertemplate=_SPAN_HOVER, legendgroup=str(service), **common))
    if critical_path and drawn["critical"].any():
        cp = drawn[drawn["critical"]]
        fig.add_trace(go.Bar(x=cp["duration_ms"], base=cp["offset_ms"], y=cp["row"], orientation="h",
                             width=0.25, name="critical path", marker={"color": CRITICAL_COLOR},
                             customdata=cp[["service", "name", "self_ms"]].astype(object).values.tolist(),
                             hovertemplate=("%{customdata[0]}: %{customdata[1]}<br>self time on the critical "
                                            "path: %{customdata[2]:.2f} ms<extra>critical path</extra>"),
                             legendgroup="critical path", **common))
    errors = drawn[drawn["is_error"]]
    if not errors.empty:
        fig.add_trace(go.Scatter(x=errors["offset_ms"] + errors["duration_ms"], y=errors["row"], mode="markers",
                                 name="error", marker={"symbol": "x", "size": 11, "color": ERROR_COLOR},
                                 customdata=_hover(errors), hovertemplate=_SPAN_HOVER, legendgroup="error", **common))
    if not lg.empty:
        rows = dict(zip(spans["span_id"], spans["row"]))
        first = drawn["row"].min()
        y = lg["span_id"].map(rows).fillna(first)
        cols = ["severity", "body", "service"]
        fig.add_trace(go.Scatter(
            x=lg["offset_ms"], y=y, mode="markers", name="logs",
            marker={"symbol": "diamond", "size": 8, "color": "#333", "line": {"width": 1, "color": "white"}},
            customdata=lg[cols].astype(object).where(lg[cols].notna(), "").values.tolist(),
            hovertemplate="%{customdata[2]} [%{customdata[0]}]<br>%{customdata[1]}<extra>log</extra>",
            legendgroup="logs", **common))
