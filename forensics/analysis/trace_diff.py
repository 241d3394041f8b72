"""Structural and latency diff of two groups of traces.

Every span is labelled by its path of ``service:operation`` nodes from the root, e.g.
``api-gateway:GET /search > catalog-service:GET /search > inventory-service:GET /inventory/{id}``
(operations normalized, so ids do not split paths). A client or producer span whose call is
answered by a server or consumer span is not a node of its own (the callee's span stands for
the call); client spans without an instrumented callee (databases, external APIs) are. For each path and group the diff gives how
many calls a trace makes on average, in how many traces it appears, its latency (p50/p95), and
the time per trace it accounts for, then the change from group A to group B. Paths that appear
in one group only show up with zeros on the other side.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._db import query_arrow
from ..errors import UsageError
from ..result import Result
from ..semantics import OP_COLUMNS, operation_key_sql, operations_sql
from ._select import Selection, as_predicate
from ._tree import MAX_DEPTH, roots_sql

if TYPE_CHECKING:
    from ..case import Case

#: separator between the nodes of a path
PATH_SEP = " > "


def trace_diff(case: "Case", group_a: Selection, group_b: Selection, *, top: int | None = None,
               max_depth: int = MAX_DEPTH) -> Result:
    """Compare the call structure and latency of two groups of traces, path by path.

    Parameters
    ----------
    case:
        The case.
    group_a, group_b:
        Traces to compare: a SQL predicate over ``spans`` (a trace belongs to the group when
        any of its spans matches, e.g. ``("service_version = ?", ["1.8.0"])``), or a list of
        trace ids. A trace may be in both groups. Predicates run with the case's privileges.
    top:
        Keep the ``top`` paths with the largest change in time per trace (None keeps all).
    max_depth:
        Paths deeper than this are not followed.

    Returns
    -------
    Result
        One row per path: ``path``, ``depth`` (0 for roots), ``service``, ``operation`` (the last
        node), and for each group ``a_``/``b_``: ``traces`` (traces in the group),
        ``calls`` (spans at that path), ``calls_per_trace`` (mean over the group's traces),
        ``trace_pct`` (% of the group's traces with the path), ``p50_ms``, ``p95_ms``
        (span durations), ``ms_per_trace`` (summed duration / traces); then ``delta_calls_per_trace``,
        ``delta_p50_ms``, ``delta_p95_ms`` and ``delta_ms_per_trace`` (B - A). Sorted by
        ``|delta_ms_per_trace|``, largest first.
    """
    a = as_predicate(group_a, name="group_a")
    b = as_predicate(group_b, name="group_b")
    if top is not None and (not isinstance(top, int) or top < 1):
        raise UsageError(f"top must be a positive integer or None, got {top!r}")
    side = ", ".join(
        f"{agg} FILTER (WHERE grp = '{g}') AS {g}_{name}"
        for g in ("a", "b")
        for name, agg in (("calls", "count(*)"), ("with_path", "count(DISTINCT trace_id)"),
                          ("p50_ms", "quantile_cont(duration_ms, 0.5)"),
                          ("p95_ms", "quantile_cont(duration_ms, 0.95)"), ("sum_ms", "sum(duration_ms)")))
    derived = ", ".join(
        f"{g}_calls::DOUBLE / nullif({g}_traces, 0) AS {g}_calls_per_trace, "
        f"100.0 * {g}_with_path / nullif({g}_traces, 0) AS {g}_trace_pct, "
        f"coalesce({g}_sum_ms, 0) / nullif({g}_traces, 0) AS {g}_ms_per_trace"
        for g in ("a", "b"))
    sql = f"""
WITH RECURSIVE g AS MATERIALIZED (
  SELECT DISTINCT trace_id, 'a' AS grp FROM spans WHERE {a.flag()}
  UNION ALL SELECT DISTINCT trace_id, 'b' FROM spans WHERE {b.flag()}
),
sizes AS MATERIALIZED (SELECT count(*) FILTER (WHERE grp = 'a') AS a_traces, count(*) FILTER (WHERE grp = 'b') AS b_traces FROM g),
remote AS MATERIALIZED (
  SELECT DISTINCT trace_id, parent_span_id AS span_id FROM spans
  WHERE kind IN ('server', 'consumer') AND parent_span_id IS NOT NULL AND trace_id IN (SELECT trace_id FROM g)
),
sp0 AS MATERIALIZED (
  SELECT s.trace_id, s.span_id, s.parent_span_id, s.service, s.duration_ms, {', '.join('s.' + c for c in OP_COLUMNS)},
         {operation_key_sql('s')} AS opkey, s.kind IN ('client', 'producer') AND r.span_id IS NOT NULL AS hidden
  FROM spans s LEFT JOIN remote r ON r.trace_id = s.trace_id AND r.span_id = s.span_id
  WHERE s.trace_id IN (SELECT trace_id FROM g)
),
ops AS MATERIALIZED ({operations_sql('sp0')}),
sp AS MATERIALIZED (
  SELECT trace_id, span_id, parent_span_id, service, operation, duration_ms, hidden FROM sp0 JOIN ops USING (opkey)
),
roots AS MATERIALIZED ({roots_sql('sp')}),
tree(trace_id, span_id, service, operation, duration_ms, hidden, path, depth, hops) AS (
  SELECT trace_id, span_id, service, operation, duration_ms, hidden, service || ':' || operation, 0, 0 FROM roots
  UNION ALL
  SELECT c.trace_id, c.span_id, c.service, c.operation, c.duration_ms, c.hidden,
         CASE WHEN c.hidden THEN t.path ELSE t.path || '{PATH_SEP}' || c.service || ':' || c.operation END,
         t.depth + CASE WHEN c.hidden THEN 0 ELSE 1 END, t.hops + 1
  FROM tree t JOIN sp c ON c.trace_id = t.trace_id AND c.parent_span_id = t.span_id
  WHERE t.hops < {int(max_depth)}
),
per_path AS (
  SELECT path, any_value(depth) AS depth, any_value(service) AS service, any_value(operation) AS operation, {side}
  FROM tree JOIN g USING (trace_id) WHERE NOT hidden GROUP BY path
),
d AS (SELECT per_path.*, sizes.*, {derived} FROM per_path, sizes)
SELECT path, depth, service, operation,
  a_traces, a_calls, coalesce(a_calls_per_trace, 0) AS a_calls_per_trace, coalesce(a_trace_pct, 0) AS a_trace_pct,
  a_p50_ms, a_p95_ms, coalesce(a_ms_per_trace, 0) AS a_ms_per_trace,
  b_traces, b_calls, coalesce(b_calls_per_trace, 0) AS b_calls_per_trace, coalesce(b_trace_pct, 0) AS b_trace_pct,
  b_p50_ms, b_p95_ms, coalesce(b_ms_per_trace, 0) AS b_ms_per_trace,
  coalesce(b_calls_per_trace, 0) - coalesce(a_calls_per_trace, 0) AS delta_calls_per_trace,
  b_p50_ms - a_p50_ms AS delta_p50_ms, b_p95_ms - a_p95_ms AS delta_p95_ms,
  coalesce(b_ms_per_trace, 0) - coalesce(a_ms_per_trace, 0) AS delta_ms_per_trace
FROM d
ORDER BY abs(delta_ms_per_trace) DESC, abs(delta_calls_per_trace) DESC, path
{'LIMIT ' + str(int(top)) if top is not None else ''}
"""
    return Result(query_arrow(case.con, sql, a.params + b.params))
