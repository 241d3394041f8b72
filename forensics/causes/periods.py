"""The two periods a cause ranking compares: the incident window and the baseline before it.

Given explicitly (``window=("2026-02-18T10:15", "2026-02-18T11:00")`` or the CLI's
``START..END``), or found: the onset is the strongest worsening change point of the entry
points' latency or error rate (:func:`forensics.stats.changepoints.change_points` over
per-bucket series of root spans), the window runs from it to the recovery (the next change
point that improves the same series) or the end of the data, and the baseline is everything
before the onset. When the entry points did not move (a failure their callers mask), the error
rate of all spans and the share of warning logs are searched the same way. Without a change
point, the latest deploy event starts the window.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from .._db import one, query_arrow
from ..semantics import is_error_sql
from ..errors import UsageError
from ..stats.changepoints import change_points
from ..stats.robust import MAD_TO_SD

if TYPE_CHECKING:
    from ..case import Case

TimeLike = Union[datetime, str, None]
#: a period: ``(start, end)`` (either may be None: the edge of the data), or ``"START..END"``
PeriodLike = Union[str, Sequence[TimeLike], None]

#: how many buckets the onset search splits the data into, at most / at least
MAX_ONSET_BUCKETS = 240
MIN_ONSET_BUCKETS = 12
#: entry spans wanted per onset bucket (fewer buckets when traffic is thin)
ENTRIES_PER_BUCKET = 20
#: smallest worsening that counts as an onset, per series: the mean relative log latency of
#: entry spans (0.05 ~ 5 % slower), error rates and the share of warning logs (0.5 points)
MIN_STEPS = {"entry latency": 0.05, "entry error rate": 0.005, "span error rate": 0.005, "warning logs": 0.005}
#: ... and in noise SDs of the series before it
MIN_STEP_SD = 3.0


#: log severities at warning level or worse (lower case)
WARNING_SEVERITIES = ("warn", "warning", "error", "fatal", "critical")


def warning_sql(alias: str = "l") -> str:
    """Whether a log line aliased ``alias`` is at warning level or worse."""
    levels = ", ".join(f"'{s}'" for s in WARNING_SEVERITIES)
    return f"(lower(coalesce({alias}.severity, '')) IN ({levels}))"


@dataclass(frozen=True)
class Periods:
    """Window and baseline of a ranking, as half-open UTC intervals ``[start, end)``.

    ``how`` says where the window came from: ``given``, ``onset`` (a change point of the entry
    points' latency or error rate), or ``deploy`` (the latest deploy, no change point found);
    ``onset`` carries the change point's series, step and time for the evidence.
    """

    window_start: datetime
    window_end: datetime
    baseline_start: datetime
    baseline_end: datetime
    how: str
    onset: dict[str, Any] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        """Length of the window, in seconds."""
        return (self.window_end - self.window_start).total_seconds()

    @property
    def baseline_s(self) -> float:
        """Length of the baseline, in seconds."""
        return (self.baseline_end - self.baseline_start).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        """One line: ``window 10:15:00-11:00:00 (onset of entry latency) vs baseline 09:30:00-10:15:00``."""
        why = {"given": "given", "onset": f"onset of {self.onset.get('series', 'entry latency')}",
               "deploy": f"latest deploy: {self.onset.get('service', '?')}"}.get(self.how, self.how)
        return (f"window {_hms(self.window_start)}-{_hms(self.window_end)} ({why}) vs baseline "
                f"{_hms(self.baseline_start)}-{_hms(self.baseline_end)} (UTC)")


def _hms(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def parse_time(value: TimeLike, *, name: str) -> datetime | None:
    """A UTC datetime from a datetime (naive = UTC), an ISO 8601 string, or None/"" (open end).

    >>> parse_time("2026-02-18T10:15", name="window").isoformat()
    '2026-02-18T10:15:00+00:00'
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"{name}: {value!r} is not an ISO 8601 time; use e.g. 2026-02-18T10:15:00Z") from None
    else:
        raise UsageError(f"{name}: expected a datetime or an ISO 8601 string, found {type(value).__name__}")
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def parse_period(value: PeriodLike, *, name: str) -> tuple[datetime | None, datetime | None] | None:
    """``(start, end)`` from ``"START..END"`` (either side may be empty) or a 2-sequence.

    >>> [t and t.hour for t in parse_period("2026-02-18T10:15..", name="window")]
    [10, None]
    """
    if value is None:
        return None
    if isinstance(value, str):
        if ".." not in value:
            raise UsageError(f"{name}: expected START..END (ISO 8601 times, either may be empty), found {value!r}")
        parts: Sequence[TimeLike] = value.split("..", 1)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        parts = value
    else:
        raise UsageError(f"{name}: expected (start, end) or 'START..END', found {value!r}")
    start, end = (parse_time(p, name=name) for p in parts)
    if start is not None and end is not None and end <= start:
        raise UsageError(f"{name}: end {end.isoformat()} is not after start {start.isoformat()}")
    return start, end


def data_range(case: "Case") -> tuple[datetime, datetime] | None:
    """First and last time over spans, logs and metrics (None for an empty case)."""
    row = one(case.con, """
SELECT min(t0), max(t1) FROM (
  SELECT min(start_time) AS t0, max(coalesce(end_time, start_time)) AS t1 FROM spans
  UNION ALL SELECT min(time), max(time) FROM logs
  UNION ALL SELECT min(time), max(time) FROM metrics)""")
    if row is None or row[0] is None:
        return None
    return row[0].astimezone(timezone.utc), row[1].astimezone(timezone.utc)


def resolve_periods(case: "Case", window: PeriodLike = None, baseline: PeriodLike = None) -> Periods | None:
    """The window and baseline to compare (see the module docs).

    Returns None when no window is given and neither a change point nor a deploy marks an onset.

    Raises
    ------
    UsageError
        For an empty case, a window or baseline outside the data, or no data before the window
        to serve as the baseline.
    """
    rng = data_range(case)
    if rng is None:
        raise UsageError("the case holds no spans, logs or metrics: load telemetry first (forensics load ...)")
    lo, hi = rng
    hi_open = hi + timedelta(microseconds=1)  # periods are half-open: keep the last record
    given = parse_period(window, name="window")
    base = parse_period(baseline, name="baseline")
    if given is None:
        if base is not None:
            raise UsageError("baseline given without window: pass window= too (or neither, to find the onset)")
        return _found_periods(case, lo, hi_open)
    w0, w1 = given[0] or lo, given[1] or hi_open
    span = f"the data runs from {lo.isoformat()} to {hi.isoformat()}"
    if w1 <= lo or w0 > hi:
        raise UsageError(f"window {w0.isoformat()}..{w1.isoformat()} is outside the data ({span})")
    if base is None:
        b0, b1 = lo, w0
    else:
        b0, b1 = base[0] or lo, base[1] or w0
        if b1 <= lo or b0 > hi:
            raise UsageError(f"baseline {b0.isoformat()}..{b1.isoformat()} is outside the data ({span})")
    if b1 <= b0 or b1 <= lo:
        raise UsageError(f"no data before the window starts at {w0.isoformat()} to use as a baseline ({span}); "
                         "pass baseline=START..END")
    return Periods(max(w0, lo), min(w1, hi_open), max(b0, lo), min(b1, hi_open), "given")


# -- onset -----------------------------------------------------------------------------------
def _series(case: "Case", lo: datetime, hi: datetime) -> tuple[dict[str, np.ndarray], float]:
    """Per bucket over ``[lo, hi)``: ``entry latency`` (mean relative log latency of entry spans:
    their ``ln(1 + duration_ms)`` minus the median of their operation), ``entry error rate``, ``span error rate`` (of all spans: masked failures too) and ``warning logs`` (share
    of log lines at warn or above); and the bucket width in seconds. Entry spans are roots (no
    parent), else server spans."""
    n_entries = one(case.con, "SELECT count(*) FILTER (WHERE parent_span_id IS NULL), "
                              "count(*) FILTER (WHERE kind = 'server') FROM spans")
    roots, servers = n_entries or (0, 0)
    where = "parent_span_id IS NULL" if roots else "kind = 'server'"
    n = roots or servers or int(one(case.con, "SELECT count(*) FROM logs")[0])
    buckets = int(np.clip(n // ENTRIES_PER_BUCKET, MIN_ONSET_BUCKETS, MAX_ONSET_BUCKETS))
    width_s = max((hi - lo).total_seconds() / buckets, 1e-3)
    bucket = f"least(CAST(floor(epoch_us(t - $lo::TIMESTAMPTZ) / $width) AS BIGINT), $last)"
    params = {"lo": lo, "hi": hi, "width": width_s * 1e6, "last": buckets - 1}
    entries = query_arrow(case.con, f"""
WITH e AS (
  SELECT start_time AS t, ln(1 + greatest(duration_ms, 0)) AS lat, {is_error_sql('s')} AS err, hash(service, name) AS op
  FROM spans s WHERE {where} AND start_time >= $lo AND start_time < $hi AND duration_ms IS NOT NULL),
m AS (SELECT op, median(lat) AS med FROM e GROUP BY op)
SELECT {bucket} AS b, avg(lat - med) AS v1, avg(coalesce(err, false)::INT) AS v2 FROM e JOIN m USING (op) GROUP BY b""",
                          params)
    spans = query_arrow(case.con, f"""
SELECT {bucket} AS b, avg(coalesce({is_error_sql('s')}, false)::INT) AS v1 FROM (SELECT *, start_time AS t FROM spans) s
WHERE start_time >= $lo AND start_time < $hi GROUP BY b""", params)
    logs = query_arrow(case.con, f"""
SELECT {bucket} AS b, avg({warning_sql('l')}::INT) AS v1
FROM (SELECT *, time AS t FROM logs) l WHERE time >= $lo AND time < $hi GROUP BY b""", params)
    out = {"entry latency": _column(entries, "v1", buckets), "entry error rate": _column(entries, "v2", buckets),
           "span error rate": _column(spans, "v1", buckets), "warning logs": _column(logs, "v1", buckets)}
    return out, width_s


def _column(t, name: str, buckets: int) -> np.ndarray:
    x = np.full(buckets, np.nan)
    if t.num_rows:
        x[np.asarray(t.column("b").to_pylist(), dtype=int)] = t.column(name).to_numpy(zero_copy_only=False)
    return _fill(x)


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


def _noise_sd(x: np.ndarray) -> float:
    """Robust noise SD of a series from its first differences (as the change-point test)."""
    d = np.diff(x)
    if d.size == 0:
        return 0.0
    sd = MAD_TO_SD * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    return sd if sd > 0 else float(np.std(d)) / np.sqrt(2.0)


def _steps(x: np.ndarray) -> list[tuple[int, float, float]]:
    """``(index, step, step in noise SDs)`` of each change point of ``x`` (step > 0: the mean
    rose; the step is the difference of the segment means on either side, the noise SD that of
    the segment before it: a step out of a flat segment is infinitely many SDs)."""
    cps = change_points(x)
    bounds = [0, *cps, x.size]
    out = []
    for i, cp in enumerate(cps):
        before = x[bounds[i]:cp]
        step = float(np.mean(x[cp:bounds[i + 2]])) - float(np.mean(before))
        sd = _noise_sd(before)
        out.append((cp, step, step / sd if sd > 0 else float("inf")))
    return out


def _recovery(x: np.ndarray, cps: list[int], onset: int, step: float) -> int | None:
    """The first change point after ``onset`` from which the series stays within half the onset's
    step of its level before the onset (the incident is over), or None."""
    prev = max([0] + [c for c in cps if c < onset])
    level = float(np.mean(x[prev:onset]))
    later = [c for c in cps if c > onset]
    for i, c in enumerate(later):
        nxt = later[i + 1] if i + 1 < len(later) else x.size
        if float(np.mean(x[c:nxt])) - level <= step / 2:
            return c
    return None


def _found_periods(case: "Case", lo: datetime, hi: datetime) -> Periods | None:
    series, width_s = _series(case, lo, hi)
    steps = {name: (_steps(x), MIN_STEPS[name]) for name, x in series.items() if np.isfinite(x).all() and x.any()}
    worse = [(sd_step, cp, step, name) for name, (found, least) in steps.items()
             for cp, step, sd_step in found if step >= least and sd_step >= MIN_STEP_SD]
    if worse:
        # the entry points' own series first: what users saw; then failures and warnings inside
        sd_step, cp, step, name = max(worse, key=lambda w: (w[3].startswith("entry"), w[0]))
        after = _recovery(series[name], [c for c, _, _ in steps[name][0]], cp, step)
        start = lo + timedelta(seconds=cp * width_s)
        end = lo + timedelta(seconds=after * width_s) if after else hi
        return Periods(start, end, lo, start, "onset",
                       {"series": name, "step": round(step, 4), "step_sd": round(float(min(sd_step, 1e6)), 1),
                        "time": start.isoformat(), "bucket_s": round(width_s, 3)})
    row = one(case.con, """
SELECT time, service, version FROM events WHERE kind = 'deploy' AND time > ? AND time < ?
ORDER BY time DESC LIMIT 1""", [lo, hi])
    if row is None:
        return None
    start = row[0].astimezone(timezone.utc)
    return Periods(start, hi, lo, start, "deploy", {"time": start.isoformat(), "service": row[1], "version": row[2]})
