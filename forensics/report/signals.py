"""The other signals around an incident's onset: log templates that are new or grew, and metrics
of the implicated services that moved (SQL over ``logs`` and ``metrics``; values as bind
parameters)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..case import Case

#: compared windows: this long before the onset, and after it (cut at the incident's end)
WINDOW = timedelta(minutes=30)
#: a template "grew" when its count after the onset is at least this many times the count before
GROWTH = 2.0

_TEMPLATES_SQL = """
SELECT coalesce(service, '-') AS service, template,
       count(*) FILTER (WHERE time < $onset) AS before,
       count(*) FILTER (WHERE time >= $onset) AS after,
       arg_min(body, time) FILTER (WHERE time >= $onset) AS example
FROM logs
WHERE template IS NOT NULL AND time >= $lo AND time < $hi
  AND ($services IS NULL OR list_contains($services, service))
GROUP BY ALL
HAVING count(*) FILTER (WHERE time >= $onset) > 0
   AND count(*) FILTER (WHERE time >= $onset) >= $growth * count(*) FILTER (WHERE time < $onset)
ORDER BY (count(*) FILTER (WHERE time < $onset) = 0) DESC, after DESC, template
LIMIT $limit
"""

#: gauges: mean level over the series; cumulative types: increase per second, per series (labels)
#: then summed; histogram buckets are left out (their sum and count say it)
_METRICS_SQL = """
WITH m AS (
  SELECT service, name, type, unit, labels, time >= $onset AS after, value, time
  FROM metrics
  WHERE time >= $lo AND time < $hi AND list_contains($services, service) AND value IS NOT NULL
    AND coalesce(type, '') NOT LIKE '%bucket%'
), series AS (
  SELECT service, name, any_value(type) AS type, any_value(unit) AS unit, after,
         CASE WHEN any_value(type) IN ('counter', 'histogram_sum', 'histogram_count', 'summary_sum', 'summary_count')
              THEN (max(value) - min(value)) / greatest(epoch(max(time) - min(time)), 1)
              ELSE avg(value) END AS level,
         any_value(type) IN ('counter', 'histogram_sum', 'histogram_count', 'summary_sum', 'summary_count') AS cumulative
  FROM m GROUP BY service, name, labels, after
), per AS (
  SELECT service, name, any_value(type) AS type, any_value(unit) AS unit, after,
         CASE WHEN bool_or(cumulative) THEN sum(level) ELSE avg(level) END AS level, bool_or(cumulative) AS per_second
  FROM series GROUP BY service, name, after
)
SELECT b.service, b.name, b.type, b.unit, b.per_second, b.level AS before, a.level AS after,
       CASE WHEN b.level > 0 THEN a.level / b.level END AS ratio
FROM per b JOIN per a ON a.service = b.service AND a.name = b.name AND a.after AND NOT b.after
WHERE a.level IS DISTINCT FROM b.level
ORDER BY abs(ln(greatest(CASE WHEN b.level > 0 THEN a.level / b.level END, 1e-9))) DESC NULLS LAST, b.service, b.name
LIMIT $limit
"""


def _window(onset: datetime, end: datetime | None) -> tuple[datetime, datetime]:
    hi = onset + WINDOW
    if end is not None and end < hi:
        hi = end
    return onset - WINDOW, hi


def log_changes(case: "Case", onset: datetime, end: datetime | None, services: list[str] | None,
                *, limit: int = 10) -> list[dict[str, Any]]:
    """Log templates new after ``onset`` (none in the 30 min before) or grown :data:`GROWTH` times,
    of ``services`` (None: all), most telling first: ``service``, ``template``, ``before``,
    ``after`` (counts in the two windows) and an ``example`` line."""
    lo, hi = _window(onset, end)
    return case.sql(_TEMPLATES_SQL, {"onset": onset, "lo": lo, "hi": hi, "services": services, "growth": GROWTH,
                                     "limit": limit}).dicts()


def metric_changes(case: "Case", onset: datetime, end: datetime | None, services: list[str],
                   *, limit: int = 10) -> list[dict[str, Any]]:
    """Metrics of ``services`` whose level (gauges) or rate (counters, per second) moved most
    between the 30 min before ``onset`` and after it: ``service``, ``name``, ``type``, ``unit``,
    ``per_second`` (cumulative metric shown as a rate), ``before``, ``after``, ``ratio``."""
    if not services:
        return []
    lo, hi = _window(onset, end)
    return case.sql(_METRICS_SQL, {"onset": onset, "lo": lo, "hi": hi, "services": services, "limit": limit}).dicts()
