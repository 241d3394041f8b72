"""Blast radius of an incident: the entry points (root spans: the system's requests) whose traces
went through the cause's place after the onset, how many of their requests did, and how much their
p99 grew."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..analysis._tree import roots_sql
from ..semantics import is_error_sql, span_operation_sql

if TYPE_CHECKING:
    from ..case import Case

_IMPACT_SQL = f"""
WITH req AS (
  SELECT r.trace_id, r.service, {span_operation_sql('r')} AS operation, r.start_time, r.duration_ms
  FROM ({roots_sql('spans')}) r
  WHERE r.start_time >= $lo AND r.start_time < $hi
),
hit AS (
  SELECT DISTINCT s.trace_id FROM spans s
  WHERE s.service = $service AND ($operation IS NULL OR {span_operation_sql('s')} = $operation)
    AND ($version IS NULL OR s.service_version = $version)
    AND s.start_time >= $onset AND s.start_time < $hi
    AND (NOT $errors_only OR {is_error_sql('s')})
)
SELECT r.service, r.operation,
       count(*) FILTER (WHERE r.start_time >= $onset) AS requests,
       count(h.trace_id) FILTER (WHERE r.start_time >= $onset) AS affected,
       quantile_cont(r.duration_ms, 0.99) FILTER (WHERE r.start_time < $onset) AS p99_before_ms,
       quantile_cont(r.duration_ms, 0.99) FILTER (WHERE r.start_time >= $onset) AS p99_after_ms
FROM req r LEFT JOIN hit h USING (trace_id)
GROUP BY ALL
ORDER BY affected DESC, requests DESC, r.service, r.operation
"""


def blast_radius(case: "Case", *, service: str, operation: str | None, version: str | None, onset: datetime,
                 end: datetime | None, errors_only: bool = False,
                 lookback: timedelta = timedelta(minutes=30)) -> dict[str, Any]:
    """Who was affected from ``onset`` to ``end`` (or the end of the data).

    Returns
    -------
    dict
        ``entry_points``: one dict per affected entry point (service, operation, requests after
        the onset, affected requests, ``share``, ``p99_before_ms`` over the ``lookback``,
        ``p99_after_ms``, ``extra_p99_ms``), most affected first; ``by_service``: per entry
        service, requests, affected and share over all its entry points; ``share``: affected
        share of the most affected entry service's requests.
    """
    hi = end or datetime(2262, 1, 1, tzinfo=onset.tzinfo)
    rows = case.sql(_IMPACT_SQL, {"service": service, "operation": operation, "version": version, "onset": onset,
                                  "hi": hi, "lo": onset - lookback, "errors_only": errors_only}).dicts()
    by_service: dict[str, dict[str, Any]] = {}
    entry_points = []
    for r in rows:
        agg = by_service.setdefault(r["service"], {"service": r["service"], "requests": 0, "affected": 0})
        agg["requests"] += r["requests"]
        agg["affected"] += r["affected"]
        if r["affected"]:
            before, after = r["p99_before_ms"], r["p99_after_ms"]
            entry_points.append({**r, "share": r["affected"] / r["requests"] if r["requests"] else None,
                                 "extra_p99_ms": (after - before) if before is not None and after is not None else None})
    services = sorted((s for s in by_service.values() if s["affected"]), key=lambda s: -s["affected"])
    for s in services:
        s["share"] = s["affected"] / s["requests"] if s["requests"] else None
    return {"entry_points": entry_points, "by_service": services,
            "share": services[0]["share"] if services else None}
