"""Finding the onset of an incident when no window is given: the strongest worsening change.

The data, from the first to the last entry span, is cut into buckets (about
:data:`ENTRIES_PER_BUCKET` entry spans each, :data:`MIN_ONSET_BUCKETS` to
:data:`MAX_ONSET_BUCKETS`), and these series are searched for change points:

``entry latency``
    the mean over a bucket's entry spans of ``ln(1 + duration_ms)`` minus their operation's
    median (a change of mix is not a change), searched by
    :func:`forensics.stats.changepoints.change_points` (a mean shift);
``entry error rate``
    the share of entry spans that failed, searched by
    :func:`forensics.stats.changepoints.rate_change_points` (a binomial rate shift: errors are
    rare events, mostly 0 per bucket);
``entry latency of OP``, ``entry error rate of OP``
    the same per entry operation with at least :data:`MIN_OPERATION_ENTRIES` entries per
    bucket (the busiest :data:`MAX_ONSET_OPERATIONS`): a fault behind one entry point of
    several is diluted in the mean over all of them;
``span error rate``, ``warning logs``
    the share of all spans that failed and of log lines at warning level or worse (binomial):
    a failure the callers mask does not reach the entry points.

A change point is an onset when the level worsens by at least :data:`MIN_STEPS` (5 % latency,
0.5 error-rate points) *and* by :data:`MIN_STEP_SD`: noise SDs of the series (robust, from its
first differences, as the change-point test estimates it) for latencies, the signed root of
the split's deviance (a z score) for rates. An entry-point series wins over the others (what
users saw first), then the change with the largest impact: its step times the requests (spans,
log lines) from it to its recovery (a change that lasts and reaches many requests outweighs a
blip, however sharp). The window ends at the first later change point back
within half the step of the level before the onset (recovery), else at the end of the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .._db import one, query_arrow
from ..semantics import is_error_sql
from ..stats.changepoints import change_points, rate_change_points, rate_split_deviance
from ..stats.robust import MAD_TO_SD
from .severity import warning_sql

if TYPE_CHECKING:
    from ..case import Case

#: how many buckets the onset search splits the data into, at most / at least
MAX_ONSET_BUCKETS = 240
MIN_ONSET_BUCKETS = 12
#: entry spans wanted per onset bucket (fewer buckets when traffic is thin)
ENTRIES_PER_BUCKET = 20
#: entries per onset bucket (on average) an entry operation needs for series of its own, and
#: the most entry operations given their own series (the busiest)
MIN_OPERATION_ENTRIES = 2
MAX_ONSET_OPERATIONS = 20
#: smallest worsening that counts as an onset, per series: the mean relative log latency of
#: entry spans (0.05 ~ 5 % slower), error rates and the share of warning logs (0.5 points)
MIN_STEPS = {"entry latency": 0.05, "entry error rate": 0.005, "span error rate": 0.005, "warning logs": 0.005}
#: ... and in noise SDs of the series (latency) or as a z score of the rate change (rates)
MIN_STEP_SD = 3.0


@dataclass
class Series:
    """One onset series: per-bucket ``values`` (latency), or ``k`` events out of ``n`` (rates);
    ``n`` is the number of observations (requests, spans, lines) in each bucket."""

    name: str
    n: np.ndarray
    values: np.ndarray | None = None
    k: np.ndarray | None = None

    @property
    def is_rate(self) -> bool:
        return self.k is not None

    @property
    def usable(self) -> bool:
        if self.is_rate:
            return bool(self.k.sum() > 0)
        return bool(np.isfinite(self.values).all() and self.values.any())

    def change_points(self) -> list[int]:
        return rate_change_points(self.k, self.n) if self.is_rate else change_points(self.values)

    def level(self, a: int, b: int) -> float:
        """The series' level over buckets ``[a, b)``: mean value, or pooled rate."""
        if self.is_rate:
            n = float(self.n[a:b].sum())
            return float(self.k[a:b].sum()) / n if n else 0.0
        return float(np.mean(self.values[a:b]))

    def strength(self, a: int, cp: int, b: int) -> float:
        """How far beyond noise the step at ``cp`` (between ``[a, cp)`` and ``[cp, b)``) is."""
        step = self.level(cp, b) - self.level(a, cp)
        if self.is_rate:
            dev = rate_split_deviance(self.k[a:b], self.n[a:b], cp - a)
            return float(np.sign(step) * np.sqrt(max(dev, 0.0)))
        sd = _noise_sd(self.values)
        return step / sd if sd > 0 else float("inf") * np.sign(step)

    def steps(self) -> list[tuple[int, float, float]]:
        """``(index, step, strength)`` of each change point (step > 0: the level rose)."""
        cps = self.change_points()
        bounds = [0, *cps, self.size]
        return [(cp, self.level(cp, bounds[i + 2]) - self.level(bounds[i], cp), self.strength(bounds[i], cp, bounds[i + 2]))
                for i, cp in enumerate(cps)]

    @property
    def size(self) -> int:
        return self.values.size if self.values is not None else self.k.size

    def recovery(self, cps: list[int], onset: int, step: float) -> int | None:
        """The first change point after ``onset`` from which the series stays within half the
        onset's step of its level before the onset (the incident is over), or None."""
        prev = max([0] + [c for c in cps if c < onset])
        level = self.level(prev, onset)
        later = [c for c in cps if c > onset]
        for i, c in enumerate(later):
            nxt = later[i + 1] if i + 1 < len(later) else self.size
            if self.level(c, nxt) - level <= step / 2:
                return c
        return None


def _noise_sd(x: np.ndarray) -> float:
    """Robust noise SD of a series from its first differences (as the change-point test)."""
    d = np.diff(x)
    if d.size == 0:
        return 0.0
    sd = MAD_TO_SD * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    return sd if sd > 0 else float(np.std(d)) / np.sqrt(2.0)


def _entries_where(case: "Case") -> str | None:
    """Which spans are entry points: roots (no parent), else server spans; None without either."""
    row = one(case.con, "SELECT count(*) FILTER (WHERE parent_span_id IS NULL), "
                        "count(*) FILTER (WHERE kind = 'server') FROM spans")
    roots, servers = row or (0, 0)
    return "parent_span_id IS NULL" if roots else ("kind = 'server'" if servers else None)


def onset_series(case: "Case", lo: datetime, hi: datetime) -> tuple[list[Series], float, datetime]:
    """The series of the module docs over ``[lo, hi)`` (from the first to the last entry span
    when there are entries), the bucket width in seconds and the first bucket's start."""
    where = _entries_where(case)
    n_entries = 0
    if where is not None:
        row = one(case.con, f"SELECT min(start_time), max(start_time), count(*) FROM spans "
                            f"WHERE {where} AND start_time >= $lo AND start_time < $hi", {"lo": lo, "hi": hi})
        if row and row[0] is not None:
            lo, hi, n_entries = row[0].astimezone(timezone.utc), row[1].astimezone(timezone.utc), int(row[2])
            hi += timedelta(microseconds=1)
    if not n_entries:
        n_entries = int(one(case.con, "SELECT count(*) FROM logs")[0])
    buckets = int(np.clip(n_entries // ENTRIES_PER_BUCKET, MIN_ONSET_BUCKETS, MAX_ONSET_BUCKETS))
    width_s = max((hi - lo).total_seconds() / buckets, 1e-3)
    bucket = "least(CAST(floor(epoch_us(t - $lo::TIMESTAMPTZ) / $width) AS BIGINT), $last)"
    params = {"lo": lo, "hi": hi, "width": width_s * 1e6, "last": buckets - 1}
    out: list[Series] = []
    if where is not None:
        entries = query_arrow(case.con, f"""
WITH e AS (
  SELECT start_time AS t, ln(1 + greatest(duration_ms, 0)) AS lat, coalesce({is_error_sql('s')}, false) AS err,
    service || ' ' || name AS op
  FROM spans s WHERE {where} AND start_time >= $lo AND start_time < $hi AND duration_ms IS NOT NULL),
m AS (SELECT op, median(lat) AS med, count(*) AS n FROM e GROUP BY op),
ops AS (SELECT op FROM m WHERE n >= $least ORDER BY n DESC, op LIMIT $max_ops)
SELECT NULL::VARCHAR AS op, {bucket} AS b, avg(lat - med) AS v, count(*) FILTER (WHERE err) AS k, count(*) AS n
FROM e JOIN m USING (op) GROUP BY b
UNION ALL
SELECT op, {bucket}, avg(lat - med), count(*) FILTER (WHERE err), count(*) FROM e JOIN m USING (op) JOIN ops USING (op)
GROUP BY ALL""", {**params, "least": MIN_OPERATION_ENTRIES * buckets, "max_ops": MAX_ONSET_OPERATIONS})
        ops = entries.column("op").to_pylist()
        for op in [None, *sorted({o for o in ops if o is not None})]:
            part = entries.filter(pa.array([o == op for o in ops]))
            suffix = f" of {op}" if op else ""
            n = _column(part, "n", buckets, 0.0)
            out.append(Series(f"entry latency{suffix}", n, values=_fill(_column(part, "v", buckets))))
            out.append(Series(f"entry error rate{suffix}", n, k=_column(part, "k", buckets, 0.0)))
    spans = query_arrow(case.con, f"""
SELECT {bucket} AS b, count(*) FILTER (WHERE coalesce({is_error_sql('s')}, false)) AS k, count(*) AS n
FROM (SELECT *, start_time AS t FROM spans) s WHERE start_time >= $lo AND start_time < $hi GROUP BY b""", params)
    logs = query_arrow(case.con, f"""
SELECT {bucket} AS b, count(*) FILTER (WHERE {warning_sql('l')}) AS k, count(*) AS n
FROM (SELECT *, time AS t FROM logs) l WHERE time >= $lo AND time < $hi GROUP BY b""", params)
    for name, t in (("span error rate", spans), ("warning logs", logs)):
        out.append(Series(name, _column(t, "n", buckets, 0.0), k=_column(t, "k", buckets, 0.0)))
    return out, width_s, lo


def _column(t: pa.Table, name: str, buckets: int, empty: float = np.nan) -> np.ndarray:
    x = np.full(buckets, empty)
    if t.num_rows:
        x[np.asarray(t.column("b").to_pylist(), dtype=int)] = t.column(name).to_numpy(zero_copy_only=False)
    return x


def _fill(x: np.ndarray) -> np.ndarray:
    """Empty buckets take the previous bucket's value (the first ones the first value seen)."""
    ok = np.isfinite(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.where(ok, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    out[: np.argmax(ok)] = x[np.argmax(ok)]
    return out


def find_onset(case: "Case", lo: datetime, hi: datetime) -> tuple[datetime, datetime, dict[str, Any]] | None:
    """``(window start, window end, what was found)`` of the strongest worsening change over
    ``[lo, hi)`` (see the module docs), or None when no series worsened."""
    series, width_s, first = onset_series(case, lo, hi)
    worse = []
    for s in series:
        if not s.usable:
            continue
        found = s.steps()
        cps = [c for c, _, _ in found]
        least = MIN_STEPS[s.name.split(" of ", 1)[0]]
        for cp, step, strength in found:
            if step >= least and strength >= MIN_STEP_SD:
                end = s.recovery(cps, cp, step)
                impact = step * float(s.n[cp:end or s.size].sum())
                worse.append((s.name.startswith("entry"), impact, strength, cp, end, step, s))
    if not worse:
        return None
    _, impact, strength, cp, after, step, s = max(worse, key=lambda w: w[:2])
    start = first + timedelta(seconds=cp * width_s)
    end = first + timedelta(seconds=after * width_s) if after else hi
    return start, end, {"series": s.name, "step": round(step, 4), "step_sd": round(float(min(strength, 1e6)), 1),
                        "affected": int(round(impact / step)), "time": start.isoformat(), "bucket_s": round(width_s, 3)}
