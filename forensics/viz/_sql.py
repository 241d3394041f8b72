"""Span selection shared by the figures: one CTE with every filter as a named bind parameter.

Values (times, service, operation, version) always travel as ``$name`` bind parameters; the
SQL text only changes by which fixed fragments are present.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from ..semantics import span_operation_sql

#: a span is an *entry* into its service (a request it served) when it has no parent, its parent
#: is missing from the trace, or its parent belongs to another service (parents are looked up in
#: all spans, so a service filter on ``sel`` does not turn every span into an entry)
ENTRY_SPANS_SQL = """
SELECT s.*
FROM sel s
LEFT JOIN spans p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
WHERE p.span_id IS NULL OR p.service IS DISTINCT FROM s.service
"""


@dataclass
class SpanFilter:
    """Filters over ``spans``; :meth:`cte` renders ``sel`` (the filtered spans) with bind params.

    Parameters
    ----------
    start, end:
        Keep spans starting in ``[start, end)`` (UTC).
    service, operation:
        Keep spans of this service (and operation: the span name, or the operation the detectors
        report, :func:`forensics.semantics.span_operation_sql`, e.g. ``GET /inventory/{id}``).
    version:
        Keep spans of this ``service_version`` (with ``service``), or — without ``service`` —
        whole traces in which some span has this version.
    """

    start: datetime | None = None
    end: datetime | None = None
    service: str | None = None
    operation: str | None = None
    version: str | None = None
    params: dict[str, Any] = field(default_factory=dict, init=False)

    def cte(self, *, whole_traces: bool = False) -> str:
        """``WITH sel AS (...)``. With ``whole_traces`` the service/operation/version filters
        select traces (every span of a matching trace is kept) instead of spans."""
        self.params = {}
        where = ["TRUE"]
        for name, cond in (("start", "start_time >= $start"), ("end", "start_time < $end")):
            if getattr(self, name) is not None:
                where.append(cond)
                self.params[name] = getattr(self, name)
        match = []
        for name, cond in (("service", "service = $service"), ("operation", f"(name = $operation OR {span_operation_sql('spans')} = $operation)"),
                           ("version", "service_version = $version")):
            if getattr(self, name) is not None:
                match.append(cond)
                self.params[name] = getattr(self, name)
        if self.version is not None and self.service is None:
            whole_traces = True
        if match and whole_traces:
            where.append(f"trace_id IN (SELECT trace_id FROM spans WHERE {' AND '.join(match)})")
        elif match:
            where.extend(match)
        return f"WITH sel AS (SELECT * FROM spans WHERE {' AND '.join(where)})"


def frame(case: Any, query: str, params: dict[str, Any] | list[Any] | None = None) -> pd.DataFrame:
    """Run ``query`` with bind ``params`` over the case and return a pandas DataFrame."""
    return case.sql(query, params or None).to_pandas()


def window_seconds(case: Any, flt: SpanFilter) -> float:
    """Length of the filter's window in seconds (the data's extent where start/end are open), >= 1."""
    q = flt.cte() + " SELECT min(start_time) AS lo, max(start_time) AS hi FROM sel"
    lo, hi = case.sql(q, flt.params or None).rows()[0]
    lo = flt.start or lo
    hi = flt.end or hi
    if lo is None or hi is None:
        return 1.0
    return max((hi - lo).total_seconds(), 1.0)
