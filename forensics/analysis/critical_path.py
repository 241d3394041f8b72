"""Critical path of traces: the chain of spans that determines end-to-end latency.

The walk is the one Jaeger's UI uses, done for every trace at once in SQL. Inside a span, the
child that finishes last is critical; before that child started, the sibling that finished
last before that start is critical, and so on back to the span's start. Time not covered by
those critical children is the span's own *self time* on the critical path. Each critical
child is walked the same way, so the self times of a trace's critical spans add up to the
root's duration exactly.

Children are clipped to their parent's interval first (a child that ends after its parent
only counts until the parent ends; one entirely outside it does not count). Touching
sequential children (one ends exactly when the next starts) are both on the path.

Spans are keyed by ``hash(trace_id, span_id)`` (64 bits: a collision needs ~10^9 spans to
become likely) so every join and the recursion run on integers. Everything is set-based: last
children by aggregation, the previous critical sibling by an
``ASOF JOIN``, and two recursive CTEs bounded by depth (sibling chains and the descent from the
roots), so the cost grows with the number of spans, not with Python iterations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._db import query_arrow
from ..errors import UsageError
from ..result import Result
from ._select import Selection, as_predicate
from ._tree import MAX_DEPTH, OP_COLUMNS, operation_key_sql, operations_sql

if TYPE_CHECKING:
    from ..case import Case

#: longest chain of sequential critical siblings under one parent that is followed
MAX_CHAIN = 10_000


def critical_spans_sql(scope: str = "TRUE", *, max_depth: int = MAX_DEPTH) -> str:
    """SELECT of every span on the critical path of the traces matched by ``scope``.

    ``scope`` is a trusted boolean SQL expression over ``spans`` (it may hold ``?``
    parameters, which the caller binds). Columns: trace_id, root_span_id, span_id,
    parent_span_id, depth (0 for the root), service, operation, name, kind, start_time,
    end_time, duration_ms, self_ms (ms of the span's own time on the critical path),
    root_ms (duration of the root span), source_file, source_line.
    """
    scoped = "" if scope.strip().upper() == "TRUE" else f"AND trace_id IN (SELECT trace_id FROM spans WHERE {scope})"
    return f"""
WITH RECURSIVE sp AS MATERIALIZED (
  SELECT rowid AS rid, hash(trace_id, span_id) AS sid,
         CASE WHEN parent_span_id IS NOT NULL THEN hash(trace_id, parent_span_id) END AS pid,
         epoch_us(start_time) AS s_us, epoch_us(end_time) AS e_us
  FROM spans WHERE start_time IS NOT NULL AND end_time IS NOT NULL AND end_time >= start_time {scoped}
),
ch AS MATERIALIZED (
  SELECT c.sid, c.pid, greatest(c.s_us, p.s_us) AS cs, least(c.e_us, p.e_us) AS ce
  FROM sp c JOIN sp p ON p.sid = c.pid
  WHERE least(c.e_us, p.e_us) > greatest(c.s_us, p.s_us)
),
roots AS MATERIALIZED (
  SELECT c.sid, c.rid, c.s_us AS cs, c.e_us AS ce FROM sp c
  WHERE c.pid IS NULL OR NOT EXISTS (SELECT 1 FROM sp p WHERE p.sid = c.pid)
),
last_child AS MATERIALIZED (SELECT pid, arg_max(sid, (ce, cs, sid)) AS sid FROM ch GROUP BY pid),
multi AS MATERIALIZED (SELECT * FROM ch WHERE pid IN (SELECT pid FROM ch GROUP BY pid HAVING count(*) > 1)),
prev AS MATERIALIZED (
  SELECT c.sid, p.sid AS prev_sid FROM multi c ASOF JOIN multi p ON p.pid = c.pid AND c.cs >= p.ce
),
chain(pid, sid, k) AS (
  SELECT pid, sid, 1 FROM last_child
  UNION ALL
  SELECT chain.pid, prev.prev_sid, chain.k + 1
  FROM chain JOIN prev ON prev.sid = chain.sid
  WHERE chain.k < {MAX_CHAIN}
),
chain_m AS MATERIALIZED (SELECT * FROM chain),
crit(root_sid, sid, depth) AS (
  SELECT sid, sid, 0 FROM roots
  UNION ALL
  SELECT crit.root_sid, chain_m.sid, crit.depth + 1
  FROM crit JOIN chain_m ON chain_m.pid = crit.sid
  WHERE crit.depth < {int(max_depth)}
),
bounds AS MATERIALIZED (SELECT sid, cs, ce FROM ch UNION ALL SELECT sid, cs, ce FROM roots),
covered AS MATERIALIZED (
  SELECT chain_m.pid AS sid, sum(b.ce - b.cs) AS child_us FROM chain_m JOIN bounds b USING (sid) GROUP BY ALL
),
path AS MATERIALIZED (
  SELECT crit.sid, crit.root_sid, crit.depth, ((b.ce - b.cs) - coalesce(cv.child_us, 0)) / 1000.0 AS self_ms,
         (rb.ce - rb.cs) / 1000.0 AS root_ms
  FROM crit JOIN bounds b ON b.sid = crit.sid JOIN roots rb ON rb.sid = crit.root_sid
  LEFT JOIN covered cv ON cv.sid = crit.sid
),
keyed AS MATERIALIZED (
  SELECT path.*, k.rid, r.rid AS root_rid FROM path JOIN sp k ON k.sid = path.sid JOIN roots r ON r.sid = path.root_sid
),
cpx AS MATERIALIZED (
  SELECT s.trace_id, r.span_id AS root_span_id, s.span_id, s.parent_span_id, keyed.depth, s.service,
    s.name, s.kind, s.start_time, s.end_time, s.duration_ms, keyed.self_ms, keyed.root_ms, s.source_file,
    s.source_line, {', '.join(f's.{c}' for c in OP_COLUMNS if c not in ('name', 'kind'))},
    {operation_key_sql('s')} AS opkey
  FROM keyed JOIN spans s ON s.rowid = keyed.rid JOIN spans r ON r.rowid = keyed.root_rid
),
ops AS MATERIALIZED ({operations_sql('cpx')})
SELECT cpx.trace_id, cpx.root_span_id, cpx.span_id, cpx.parent_span_id, cpx.depth, cpx.service,
  ops.operation, cpx.name, cpx.kind, cpx.start_time, cpx.end_time, cpx.duration_ms, cpx.self_ms,
  cpx.root_ms, cpx.source_file, cpx.source_line
FROM cpx JOIN ops USING (opkey)
"""


def critical_path(case: "Case", trace_id: str) -> Result:
    """The critical path of one trace: its spans in start order with their self time.

    Parameters
    ----------
    case:
        The case.
    trace_id:
        A trace id (hex; case-insensitive).

    Returns
    -------
    Result
        One row per span on the path (see :func:`critical_spans_sql` for columns), ordered by
        start time then depth. ``self_ms`` sums to ``root_ms`` for each root. Empty when the
        trace is unknown.

    >>> import forensics
    >>> from datetime import datetime, timezone
    >>> from forensics.synth.builder import SpanBuilder
    >>> b = SpanBuilder(datetime(2026, 2, 18, tzinfo=timezone.utc))
    >>> root = b.span("api", "GET /a", kind="server", duration_ms=100)
    >>> _ = b.span("db", "SELECT", kind="client", parent=root, start_ms=10, duration_ms=60)
    >>> case = forensics.open_case(); _ = b.insert(case)
    >>> [(r["service"], r["self_ms"]) for r in critical_path(case, root.trace_id).dicts()]
    [('api', 40.0), ('db', 60.0)]
    """
    if not isinstance(trace_id, str) or not trace_id.strip():
        raise UsageError(f"critical_path: trace_id must be a hex string, got {trace_id!r}")
    sql = critical_spans_sql("trace_id = ?") + " ORDER BY cpx.start_time, cpx.depth, cpx.span_id"
    return Result(query_arrow(case.con, sql, [trace_id.strip().lower()]))


def critical_path_by_operation(case: "Case", selection: Selection | None = None, *,
                               slow_quantile: float = 0.95) -> Result:
    """Share of critical-path time per (entry point, service, operation), overall and in slow traces.

    Parameters
    ----------
    selection:
        Traces to consider (predicate or trace ids, see :func:`forensics.analysis.compare`);
        default all.
    slow_quantile:
        Traces whose root duration is at or above this quantile of their entry point's root
        durations are the *slow* traces.

    Returns
    -------
    Result
        Columns entry_service, entry_operation (the root span's), service, operation, traces
        (traces of the entry point), slow_traces, on_path_traces (traces where the operation is
        on the critical path), self_ms (total self time), share (self time / total root time
        of the entry point, 0-1), slow_self_ms, slow_share (same over slow traces), p95_root_ms
        (the slow cut), slow_first, slow_last (earliest and latest start of the operation on
        the path of a slow trace), exemplar_trace_ids (slow traces where the operation has the most self
        time), source ("file:line" of an exemplar span).
    """
    if not 0 < slow_quantile < 1:
        raise UsageError(f"slow_quantile must be between 0 and 1, got {slow_quantile!r}")
    pred = as_predicate(selection) if selection is not None else None
    scope, params = (pred.flag(), pred.params) if pred else ("TRUE", [])
    sql = f"""
WITH cp AS MATERIALIZED ({critical_spans_sql(scope)}),
entry AS MATERIALIZED (
  SELECT trace_id, root_span_id, service AS entry_service, operation AS entry_operation, root_ms
  FROM cp WHERE depth = 0
),
cut AS MATERIALIZED (
  SELECT entry_service, entry_operation, count(*) AS traces,
         quantile_cont(root_ms, ?) AS slow_cut_ms, sum(root_ms) AS total_ms
  FROM entry GROUP BY ALL
),
e AS MATERIALIZED (
  SELECT entry.*, cut.traces, cut.slow_cut_ms, cut.total_ms, entry.root_ms >= cut.slow_cut_ms AS slow
  FROM entry JOIN cut USING (entry_service, entry_operation)
),
slow_total AS MATERIALIZED (SELECT entry_service, entry_operation, count(*) AS slow_traces, sum(root_ms) AS slow_ms
               FROM e WHERE slow GROUP BY ALL),
per_trace AS MATERIALIZED (
  SELECT e.entry_service, e.entry_operation, e.traces, e.slow_cut_ms, e.total_ms, e.slow, cp.trace_id,
         cp.service, cp.operation, sum(cp.self_ms) AS self_ms, min(cp.start_time) AS t0,
         arg_max(coalesce(cp.source_file, '?') || coalesce(':' || cp.source_line::VARCHAR, ''), cp.self_ms) AS source
  FROM cp JOIN e USING (trace_id, root_span_id) GROUP BY ALL
)
SELECT p.entry_service, p.entry_operation, p.service, p.operation, any_value(p.traces) AS traces,
  any_value(st.slow_traces) AS slow_traces, count(*) AS on_path_traces, sum(p.self_ms) AS self_ms,
  sum(p.self_ms) / nullif(any_value(p.total_ms), 0) AS share,
  coalesce(sum(p.self_ms) FILTER (WHERE p.slow), 0) AS slow_self_ms,
  coalesce(sum(p.self_ms) FILTER (WHERE p.slow), 0) / nullif(any_value(st.slow_ms), 0) AS slow_share,
  any_value(p.slow_cut_ms) AS p95_root_ms,
  min(p.t0) FILTER (WHERE p.slow) AS slow_first, max(p.t0) FILTER (WHERE p.slow) AS slow_last,
  list(p.trace_id ORDER BY p.slow DESC, p.self_ms DESC, p.trace_id)[1:5] AS exemplar_trace_ids,
  arg_max(p.source, (p.slow, p.self_ms)) AS source
FROM per_trace p LEFT JOIN slow_total st USING (entry_service, entry_operation)
GROUP BY p.entry_service, p.entry_operation, p.service, p.operation
ORDER BY slow_share DESC, share DESC
"""
    return Result(query_arrow(case.con, sql, params + [slow_quantile]))
