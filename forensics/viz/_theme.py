"""Shared look and option checking of the figures: service colours, empty figures, option errors.

Telemetry strings (service names, span names, log bodies...) enter a figure as data (``x``,
``y``, ``text``, ``customdata``, ``name``, tick labels) or in titles, never inside a
``hovertemplate``; :func:`style`, which every figure calls last, escapes all of them once
(:func:`forensics.viz._text.escape_figure`), because plotly draws them as pseudo-HTML.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from ..errors import UsageError
from ._text import escape_figure

#: colours assigned to services in sorted-name order (stable across figures of one case: see
#: :func:`case_service_colors`); no reds or oranges, which mean errors and the critical path
SERVICE_PALETTE: tuple[str, ...] = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
                                    "#bcbd22", "#393b79", "#637939", "#7b4173", "#3182bd", "#31a354", "#756bb1",
                                    "#636363", "#6baed6", "#74c476", "#9e9ac8", "#969696", "#8c6d31")
#: the one colour of errors in every figure, the explorer and the report
ERROR_COLOR = "#d62728"
CRITICAL_COLOR = "#ff7f0e"
VIRTUAL_COLOR = "#9e9e9e"
#: colours of series that are neither a service nor an error (percentiles, versions, groups of a
#: comparison): plotly's default colour order starts with blue then red, which read as "errors"
NEUTRAL_COLORWAY = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#7f7f7f", "#bcbd22", "#393b79", "#637939")
#: plotly_white with :data:`NEUTRAL_COLORWAY` (registered once as ``pio.templates["forensics"]``)
TEMPLATE = "forensics"
pio.templates[TEMPLATE] = go.layout.Template(pio.templates["plotly_white"])
pio.templates[TEMPLATE].layout.colorway = NEUTRAL_COLORWAY

#: time bucket option -> DuckDB interval literal (a closed set, so it is safe to splice)
BUCKETS: dict[str, str] = {
    "10s": "INTERVAL 10 SECOND", "30s": "INTERVAL 30 SECOND", "1m": "INTERVAL 1 MINUTE",
    "5m": "INTERVAL 5 MINUTE", "15m": "INTERVAL 15 MINUTE", "1h": "INTERVAL 1 HOUR",
}
BUCKET_SECONDS: dict[str, float] = {"10s": 10, "30s": 30, "1m": 60, "5m": 300, "15m": 900, "1h": 3600}


def service_colors(services: Iterable[str | None]) -> dict[str | None, str]:
    """Deterministic colour per service (sorted by name, palette cycled)."""
    names = sorted({s for s in services if s is not None})
    colors: dict[str | None, str] = {s: SERVICE_PALETTE[i % len(SERVICE_PALETTE)] for i, s in enumerate(names)}
    colors[None] = VIRTUAL_COLOR
    return colors


_SERVICES_SQL = """
SELECT service FROM (SELECT DISTINCT service FROM spans UNION SELECT DISTINCT service FROM events)
WHERE service IS NOT NULL
"""


def case_service_colors(case: Any) -> dict[str | None, str]:
    """The colour of each service of the case (spans and events), the same in every figure of
    that case whatever subset of services a figure shows."""
    return service_colors(r[0] for r in case.sql(_SERVICES_SQL).rows())


def empty_figure(message: str, *, title: str | None = None) -> go.Figure:
    """A figure with no traces and ``message`` as a centred annotation (used when data is missing)."""
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title=title, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": message, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                                    "showarrow": False, "font": {"size": 14}}])
    return fig


def check_choice(param: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise UsageError naming the parameter."""
    if value not in allowed:
        raise UsageError(f"{param} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_bool(param: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{param} must be True or False; got {value!r}")
    return value


def check_int(param: str, value: Any, *, low: int, high: int) -> int:
    """An integer option in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{param} must be an integer from {low} to {high}; got {value!r}")
    return value


def check_text(param: str, value: Any, *, required: bool = False) -> str | None:
    """An optional (or required) non-empty string option (a service, operation or version name)."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        need = "a non-empty string" + ("" if required else " or None")
        raise UsageError(f"{param} must be {need}; got {value!r}")
    return value


def check_time(param: str, value: Any) -> datetime | None:
    """``None``, a timezone-aware datetime, a pandas Timestamp or an ISO 8601 string -> UTC datetime.

    Naive datetimes and strings without an offset are taken as UTC (case times are UTC).
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{param} must be a datetime or an ISO 8601 string such as "
                         f"'2026-02-18T10:00:00Z'; got {value!r}") from exc
    if ts is pd.NaT:
        raise UsageError(f"{param} must be a datetime; got {value!r}")
    ts = ts.tz_localize(timezone.utc) if ts.tzinfo is None else ts.tz_convert(timezone.utc)
    return ts.to_pydatetime()


def check_window(start: Any, end: Any) -> tuple[datetime | None, datetime | None]:
    s, e = check_time("start", start), check_time("end", end)
    if s is not None and e is not None and e <= s:
        raise UsageError(f"end must be after start; got start={s.isoformat()} end={e.isoformat()}")
    return s, e


def resolve_case(case_or_path: Any):
    """A Case from a Case, a ``.duckdb`` path or export paths (see :func:`forensics.as_case`)."""
    from ..case import Case, as_case

    if isinstance(case_or_path, Case):
        return case_or_path
    if isinstance(case_or_path, (str, os.PathLike, list, tuple)):
        return as_case(case_or_path)
    raise UsageError(f"expected a forensics Case or a path to a case/export; got {type(case_or_path).__name__}")


def style(fig: go.Figure, *, title: str, height: int | None = None) -> go.Figure:
    """Apply the common layout (template, title, margins) and escape every string the figure
    draws (:func:`forensics.viz._text.escape_figure`). Every figure function ends with it, once;
    ``title`` and other texts are plain text (no markup), telemetry included."""
    fig.update_layout(template=TEMPLATE, title={"text": title}, margin={"l": 60, "r": 30, "t": 60, "b": 50},
                      hoverlabel={"align": "left"}, **({"height": height} if height else {}))
    return escape_figure(fig)
