"""When a place got worse, and whether it recovered: change points of its latency (p99, on a log
scale) and error rate per time bucket (:func:`forensics.stats.change_points`).

The onset of a finding is the start of the bucket where its place's p99 or error rate shifts up
(the change point nearest the finding's own start); its end, the bucket where that measure comes
back near its level before the onset. A place whose series is long enough and shows no upward
shift is *steady*: what the finding describes was already so before (it is background, not an
incident).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..semantics import is_error_sql, span_operation_sql
from ..stats import change_points
from .links import placed_sql

if TYPE_CHECKING:
    from ..case import Case

#: bucket width choices (seconds) and their DuckDB intervals (a closed set, spliced as text)
BUCKETS = ((10, "INTERVAL 10 SECOND"), (30, "INTERVAL 30 SECOND"), (60, "INTERVAL 1 MINUTE"),
           (300, "INTERVAL 5 MINUTE"), (900, "INTERVAL 15 MINUTE"), (3600, "INTERVAL 1 HOUR"))
#: at most this many buckets over the case's time range
MAX_BUCKETS = 180
#: fewer buckets than this: too short to tell a shift from noise (no onset, not steady either)
MIN_BUCKETS = 12
#: change point penalty (see forensics.stats.change_points); the minute-to-minute noise of a p99
#: over a few dozen requests stays below it
PENALTY = 12.0
#: an upward shift: p99 at least this factor higher, or the error rate this many points higher
MIN_LATENCY_FACTOR = 1.25
MIN_ERROR_RISE = 0.01
#: a shift counts as recovered when the level falls back within this factor of the level before
RECOVERED_FACTOR = 1.25

_EXTENT_SQL = "SELECT min(start_time), max(start_time) FROM spans"

#: per place and bucket, over ``placed`` (:func:`forensics.incident.links.placed_sql`)
_SERIES_SQL = """
SELECT fid, time_bucket({interval}, start_time) AS bucket, count(*) AS n,
       quantile_cont(duration_ms, 0.99) AS p99_ms, avg(err::INT) AS error_rate
FROM placed GROUP BY ALL ORDER BY fid, bucket
"""

#: p99 and error rate of a place before and after a time (and up to an end)
_BEFORE_AFTER_SQL = f"""
SELECT s.start_time >= $onset AS after, count(*) AS n,
       quantile_cont(s.duration_ms, 0.99) AS p99_ms, avg({is_error_sql('s')}::INT) AS error_rate
FROM spans s
WHERE s.service = $service AND ($operation IS NULL OR {span_operation_sql('s')} = $operation)
  AND s.start_time >= $lo AND s.start_time < $hi
GROUP BY ALL
"""


@dataclass(frozen=True)
class Grid:
    """The time buckets every series of a case is put on."""

    start: datetime
    seconds: int
    interval: str
    count: int

    def time(self, i: int) -> datetime:
        return self.start + timedelta(seconds=self.seconds * i)


@dataclass(frozen=True)
class Shift:
    """An upward shift of a place's ``metric`` (``"latency"`` or ``"errors"``) at ``onset``."""

    metric: str
    onset: datetime
    end: datetime | None
    size: float  # p99 factor (latency) or error-rate points (errors)


def grid(case: "Case") -> Grid | None:
    """Buckets over the case's span time range (``None`` without spans)."""
    lo, hi = case.sql(_EXTENT_SQL).rows()[0]
    if lo is None:
        return None
    extent = max((hi - lo).total_seconds(), 1.0)
    seconds, interval = next(((s, i) for s, i in BUCKETS if extent / s <= MAX_BUCKETS), BUCKETS[-1])
    start = pd.Timestamp(lo).floor(f"{seconds}s").to_pydatetime()
    return Grid(start, seconds, interval, int(extent // seconds) + 2)


def series(case: "Case", g: Grid, places: str, spans: str, fids: list[int]) -> dict[int, pd.DataFrame]:
    """Per place of the registered table ``places`` (fid, service, operation): ``n``, ``p99_ms``
    and ``error_rate`` per bucket of ``g`` (every bucket; gaps carry the last value forward,
    leading gaps the first), from the places' spans ``spans``
    (:func:`forensics.incident.links.place_spans`)."""
    df = case.sql(placed_sql(places, spans) + _SERIES_SQL.replace("{interval}", g.interval)).to_pandas()
    index = pd.date_range(pd.Timestamp(g.start), periods=g.count, freq=f"{g.seconds}s")
    out = {}
    for fid in fids:
        part = df[df["fid"] == fid]
        if part.empty:
            out[fid] = pd.DataFrame({"n": 0, "p99_ms": np.nan, "error_rate": np.nan}, index=index)
            continue
        part = part.set_index(pd.to_datetime(part["bucket"], utc=True)).drop(columns=["bucket", "fid"]).reindex(index)
        part["n"] = part["n"].fillna(0)
        out[fid] = part.ffill().bfill()
    return out


def _segments(values: np.ndarray) -> list[tuple[int, float, float]]:
    """(index, level before, level after) of each change point, levels as segment means."""
    cps = change_points(values, penalty=PENALTY)
    bounds = [0, *cps, len(values)]
    return [(cps[k], float(values[bounds[k]:bounds[k + 1]].mean()), float(values[bounds[k + 1]:bounds[k + 2]].mean()))
            for k in range(len(cps))]


def find_shift(s: pd.DataFrame, lo: datetime | None, hi: datetime | None = None) -> Shift | None | str:
    """The first upward shift of ``s`` from 15 min before ``lo`` to ``hi`` (open ends: the data's);
    ``"steady"`` when the series is long and busy enough and shows none; ``None`` when too short
    to tell."""
    busy = s["n"].gt(0)
    if busy.sum() < MIN_BUCKETS:
        return None
    first, last = busy.idxmax(), busy[::-1].idxmax()
    s = s.loc[first:last]
    early = None if lo is None else pd.Timestamp(lo) - pd.Timedelta(minutes=15)
    late = None if hi is None else pd.Timestamp(hi)
    found: list[Shift] = []
    for metric, values in (("latency", np.log10(np.maximum(s["p99_ms"].to_numpy(float), 1e-3))),
                           ("errors", s["error_rate"].to_numpy(float))):
        segs = _segments(values)
        for k, (i, before, after) in enumerate(segs):
            rise = 10 ** (after - before) if metric == "latency" else after - before
            if rise < (MIN_LATENCY_FACTOR if metric == "latency" else MIN_ERROR_RISE):
                continue
            onset = s.index[i]
            if (early is not None and onset < early) or (late is not None and onset > late):
                continue
            end = None
            for j, b2, a2 in segs[k + 1:]:
                back = 10 ** (a2 - before) if metric == "latency" else a2 - before
                if back <= (RECOVERED_FACTOR if metric == "latency" else MIN_ERROR_RISE / 2):
                    end = s.index[j].to_pydatetime()
                    break
            found.append(Shift(metric, onset.to_pydatetime(), end, float(rise)))
            break
    if not found:
        return "steady"
    return min(found, key=lambda f: f.onset)


def before_after(case: "Case", service: str, operation: str | None, onset: datetime, end: datetime | None,
                 *, lookback: timedelta = timedelta(minutes=30)) -> dict[str, Any]:
    """p99 (ms), error rate and request counts of the place in the ``lookback`` before ``onset``
    and from ``onset`` to ``end`` (or the end of the data)."""
    hi = end or datetime(2262, 1, 1, tzinfo=onset.tzinfo)
    rows = case.sql(_BEFORE_AFTER_SQL, {"service": service, "operation": operation, "onset": onset,
                                        "lo": onset - lookback, "hi": hi}).dicts()
    out: dict[str, Any] = {}
    for r in rows:
        side = "after" if r["after"] else "before"
        out.update({f"{side}_n": r["n"], f"{side}_p99_ms": r["p99_ms"], f"{side}_error_rate": r["error_rate"]})
    return out
