"""The two periods a cause ranking compares: the incident window and the baseline before it.

Given explicitly (``window=("2026-02-18T10:15", "2026-02-18T11:00")`` or the CLI's
``START..END``), or found: the onset is the strongest worsening change point of the entry
points' latency or error rate, over all of them and per entry operation
(:mod:`forensics.causes.onset`), the window runs from it to the recovery (the next change
point that improves the same series) or the end of the data, and the baseline is everything
before the onset. When the entry points did not move (a failure their callers mask), the error
rate of all spans and the share of warning logs are searched the same way. Without a change
point, the latest deploy event starts the window.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Sequence, Union

from .._db import one
from ..errors import UsageError
from .onset import find_onset

if TYPE_CHECKING:
    from ..case import Case

TimeLike = Union[datetime, str, None]
#: a period: ``(start, end)`` (either may be None: the edge of the data), or ``"START..END"``
PeriodLike = Union[str, Sequence[TimeLike], None]

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


def _found_periods(case: "Case", lo: datetime, hi: datetime) -> Periods | None:
    """From the onset (:mod:`forensics.causes.onset`), else the latest deploy, else None."""
    found = find_onset(case, lo, hi)
    if found is not None:
        start, end, onset = found
        return Periods(start, end, lo, start, "onset", onset)
    row = one(case.con, """
SELECT time, service, version FROM events WHERE kind = 'deploy' AND time > ? AND time < ?
ORDER BY time DESC LIMIT 1""", [lo, hi])
    if row is None:
        return None
    start = row[0].astimezone(timezone.utc)
    return Periods(start, hi, lo, start, "deploy", {"time": start.isoformat(), "service": row[1], "version": row[2]})
