"""Critical path of traces: the chain of spans that determines end-to-end latency.

The walk is the one Jaeger's UI uses, done for every trace at once in SQL. Inside a span, the
child that finishes last is critical; before that child started, the sibling that finished
last before that start is critical, and so on back to the span's start. Time not covered by
those critical children is the span's own *self time* on the critical path. Each critical
child is walked the same way, so the self times of a trace's critical spans add up to the
root's duration exactly.

Children are clipped to their parent's interval first (a child that ends after its parent
only counts until the parent ends; one entirely outside it does not count). Touching
sequential children (one ends exactly when the next starts) are both on the path. Among
siblings that end at the same microsecond, the one that started last, then the larger span
id, counts as finishing last.

Everything is set-based and runs on DuckDB and on Spark alike (no recursive query): spans are
keyed by a 64-bit hash of (trace id, span id); each child's previous critical sibling comes
from one sweep (a window over the siblings' start and end times); the sibling chains are
followed by pointer doubling (``log2`` of the longest chain passes) and the descent from the
roots level by level (:func:`forensics.analysis._tree.walk_down`), so the cost grows with the
number of spans and the depth of traces, not with the length of chains.
"""
from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .._db import query_arrow, run, scalar
from .._duplicates import unique_spans
from ..detectors._common import span_key_sql, temp_table
from ..errors import UsageError
from ..result import Result
from ..semantics import OP_COLUMNS, operation_key_sql, operations_sql, span_operation_sql
from ._select import Selection, as_predicate
from ._tree import MAX_DEPTH, id_order_sql, walk_down

if TYPE_CHECKING:
    from ..case import Case

#: longest chain of sequential critical siblings under one parent that is followed (about:
#: chains are followed in doubling steps, up to the first power of two above it)
MAX_CHAIN = 10_000


def _nodes_sql(scoped: str) -> str:
    """Spans that can be on a critical path: roots (``pid`` NULL, own interval) and children
    clipped to their parent's raw interval (``cs``/``ce``, microseconds; those entirely outside
    it left out; ``trimmed`` when the clip cut them). ``tb`` orders siblings that end at the
    same time, ``start_time`` is the raw start, ``okey`` keys the columns of the span's service
    and operation, ``trace_id`` is kept for roots only. :func:`_clipped_nodes` then clips each
    span to its parent's *clipped* interval, down the tree."""
    op_cols = ", ".join(f"s.{c}" for c in ("service",) + OP_COLUMNS)
    return f"""
WITH sp AS (
  SELECT s.trace_id, {span_key_sql('s')} AS sid, {span_key_sql('s', 'parent_span_id')} AS pid,
         {id_order_sql('s.span_id')} AS tb, s.start_time, epoch_us(s.start_time) AS s_us, epoch_us(s.end_time) AS e_us,
         hash({op_cols}) AS okey
  FROM spans s
  WHERE s.span_id IS NOT NULL AND s.start_time IS NOT NULL AND s.end_time IS NOT NULL
    AND s.end_time >= s.start_time {scoped}
)
SELECT c.sid, CASE WHEN p.sid IS NOT NULL THEN c.pid END AS pid, c.tb, c.start_time, c.okey,
  CASE WHEN p.sid IS NULL THEN c.trace_id END AS trace_id,
  CASE WHEN p.sid IS NULL THEN c.s_us ELSE greatest(c.s_us, p.s_us) END AS cs,
  CASE WHEN p.sid IS NULL THEN c.e_us ELSE least(c.e_us, p.e_us) END AS ce,
  p.sid IS NOT NULL AND (p.s_us > c.s_us OR p.e_us < c.e_us) AS trimmed
FROM sp c LEFT JOIN sp p ON p.sid = c.pid
WHERE p.sid IS NULL OR least(c.e_us, p.e_us) > greatest(c.s_us, p.s_us)"""


@contextmanager
def _clipped_nodes(case: "Case", scoped: str, params: list[Any], max_depth: int) -> Iterator[str]:
    """The nodes of :func:`_nodes_sql` with every span clipped to its parent's clipped interval
    (so a grandchild never sticks out of a trimmed child, and self times never exceed the
    root's duration); spans left with no time inside their parent are dropped (with them,
    their subtrees, which no longer reach a root).

    Only the subtrees under a trimmed span can change: pass ``k`` re-clips the children of the
    spans trimmed in pass ``k - 1`` (a join of the few trimmed spans with the nodes), until a
    pass trims nothing (at most ``max_depth`` passes), then one join applies the tightest clip
    found per span.
    """
    with ExitStack() as stack:
        nodes = stack.enter_context(temp_table(case, _nodes_sql(scoped), params))
        trimmed = stack.enter_context(temp_table(case, f"SELECT sid, cs, ce FROM {nodes} WHERE trimmed"))
        fixes: list[str] = []
        for _ in range(int(max_depth)):
            fix = stack.enter_context(temp_table(case, f"""
SELECT c.sid, greatest(c.cs, t.cs) AS cs, least(c.ce, t.ce) AS ce
FROM {nodes} c JOIN {trimmed} t ON c.pid = t.sid
WHERE t.cs > c.cs OR t.ce < c.ce"""))
            if not scalar(case.con, f"SELECT count(*) FROM {fix}"):
                break
            fixes.append(fix)
            trimmed = fix
        if not fixes:
            yield nodes
            return
        tight = " UNION ALL ".join(f"SELECT sid, cs, ce FROM {f}" for f in fixes)
        yield stack.enter_context(temp_table(case, f"""
SELECT n.sid, n.pid, n.tb, n.start_time, n.okey, n.trace_id,
  greatest(n.cs, coalesce(f.cs, n.cs)) AS cs, least(n.ce, coalesce(f.ce, n.ce)) AS ce
FROM {nodes} n LEFT JOIN (SELECT sid, max(cs) AS cs, min(ce) AS ce FROM ({tight}) GROUP BY sid) f USING (sid)
WHERE f.sid IS NULL OR least(n.ce, f.ce) > greatest(n.cs, f.cs)"""))


def _prev_sql(nodes: str, families: str) -> str:
    """Per child of a parent with several children: ``nxt``, the sibling that ends last at or
    before its start (ties: later start, then larger span id; NULL when none), ``nxt_len`` its
    clipped length (microseconds) and ``nxt_rank`` its rank among the siblings in end order
    (0 when none). One sweep over the siblings' end (k = 0) and start (k = 1) events in time
    order."""
    return f"""
WITH multi AS (SELECT n.sid, n.pid, n.cs, n.ce, n.tb FROM {nodes} n JOIN {families} f USING (pid) WHERE f.n > 1),
ev AS (
  SELECT pid, sid, ce AS t, 0 AS k, cs, tb, sid AS end_sid, ce - cs AS end_len FROM multi
  UNION ALL
  SELECT pid, sid, cs AS t, 1 AS k, cs, tb, NULL AS end_sid, NULL AS end_len FROM multi
)
SELECT sid, pid, nxt, nxt_len, nxt_rank FROM (
  SELECT sid, pid, k, last_value(end_sid IGNORE NULLS) OVER w AS nxt, last_value(end_len IGNORE NULLS) OVER w AS nxt_len,
    count(end_sid) OVER w AS nxt_rank
  FROM ev WINDOW w AS (PARTITION BY pid ORDER BY t, k, cs, tb ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
WHERE k = 1"""


@contextmanager
def _chains(case: "Case", nodes: str) -> Iterator[tuple[str, str]]:
    """``(chain, cover)``: tables of the critical children of every parent, ``(pid, sid,
    len_us)`` (the last-finishing child and its chain of previous siblings, with their clipped
    lengths in microseconds), and of the time they cover per parent, ``(sid, child_us)``.

    A family of one child is its own chain. So is a *sequential* family, where the previous
    sibling of every child but the first to end is the one that ends just before it: then
    (the previous sibling always ends earlier) the ranks of the previous siblings add up to
    ``n (n - 1) / 2``, and to less otherwise. The other families' chains are followed by
    pointer doubling: pass ``k`` extends every chain by its next ``2**k`` links, so
    ``ceil(log2(longest chain))`` passes over those families only.
    """
    with ExitStack() as tables:
        families = tables.enter_context(temp_table(case, f"""
SELECT pid, count(*) AS n, arg_max(sid, (ce, cs, tb)) AS last_sid, min(ce - cs) AS len_us
FROM {nodes} WHERE pid IS NOT NULL GROUP BY pid"""))
        prevs = tables.enter_context(temp_table(case, _prev_sql(nodes, families)))
        sequential = tables.enter_context(temp_table(case, f"""
SELECT pid FROM {prevs} GROUP BY pid HAVING 2 * sum(nxt_rank) = count(*) * (count(*) - 1)"""))
        held = ExitStack()  # the tables of the current pass
        try:
            hop = held.enter_context(temp_table(case, f"""
SELECT p.sid, p.nxt, p.nxt_len FROM {prevs} p
WHERE p.nxt IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {sequential} q WHERE q.pid = p.pid)"""))
            found = held.enter_context(temp_table(case, f"""
SELECT f.pid, f.last_sid AS sid, n.ce - n.cs AS len_us FROM {families} f JOIN {nodes} n ON n.sid = f.last_sid
WHERE f.n > 1 AND NOT EXISTS (SELECT 1 FROM {sequential} q WHERE q.pid = f.pid)"""))
            for _ in range(math.ceil(math.log2(MAX_CHAIN))):
                more = ExitStack()
                new = more.enter_context(temp_table(
                    case, f"SELECT f.pid, j.nxt AS sid, j.nxt_len AS len_us FROM {found} f JOIN {hop} j USING (sid)"))
                if not scalar(case.con, f"SELECT count(*) FROM {new}"):
                    more.close()
                    break
                found = more.enter_context(temp_table(case, f"SELECT * FROM {found} UNION ALL SELECT * FROM {new}"))
                hop = more.enter_context(temp_table(
                    case, f"SELECT a.sid, b.nxt, b.nxt_len FROM {hop} a JOIN {hop} b ON b.sid = a.nxt"))
                held.close()
                held = more
            linked = tables.enter_context(temp_table(case, f"""
SELECT * FROM {found}
UNION ALL SELECT n.pid, n.sid, n.ce - n.cs FROM {nodes} n JOIN {sequential} q USING (pid)"""))
        finally:
            held.close()
        singles = f"SELECT pid, last_sid AS sid, len_us FROM {families} WHERE n = 1"
        chain = tables.enter_context(temp_table(case, f"SELECT * FROM {linked} UNION ALL {singles}"))
        cover = tables.enter_context(temp_table(case, f"""
SELECT pid AS sid, sum(len_us) AS child_us FROM {linked} GROUP BY pid
UNION ALL SELECT pid, len_us FROM {families} WHERE n = 1"""))
        yield chain, cover


@contextmanager
def _critical_core(case: "Case", scoped: str, params: list[Any], max_depth: int) -> Iterator[str]:
    """The critical spans of the traces in ``scoped`` (a relation for ``FROM``): ``sid``,
    ``root_sid``, ``depth``, ``self_us`` (own time on the critical path, microseconds),
    ``root_us``, ``start_time``, ``okey``, ``tb``, and ``trace_id`` on roots. Roots and the
    critical children of critical spans, found level by level from the roots."""
    keep = ("self_us", "len_us", "start_time", "okey", "tb", "trace_id")
    with ExitStack() as stack:
        nodes = stack.enter_context(_clipped_nodes(case, scoped, params, max_depth))
        chain, cover = stack.enter_context(_chains(case, nodes))
        tree = stack.enter_context(temp_table(case, f"""
SELECT n.sid, n.pid AS anc, 0 AS val, n.ce - n.cs - coalesce(cv.child_us, 0) AS self_us, n.ce - n.cs AS len_us,
  n.start_time, n.okey, n.tb, n.trace_id
FROM {nodes} n LEFT JOIN {chain} c ON c.sid = n.sid LEFT JOIN {cover} cv ON cv.sid = n.sid
WHERE n.pid IS NULL OR c.sid IS NOT NULL"""))
        walk = stack.enter_context(walk_down(case, tree, keep=keep, max_depth=max_depth))
        yield stack.enter_context(temp_table(case, f"""
SELECT w.sid, w.top AS root_sid, w.depth, w.self_us, r.len_us AS root_us, w.start_time, w.okey, w.tb, w.trace_id
FROM {walk} w JOIN (SELECT sid, len_us FROM {tree} WHERE anc IS NULL) r ON r.sid = w.top"""))


def _scope(scope: str) -> str:
    return "" if scope.strip().upper() == "TRUE" else f"AND s.trace_id IN (SELECT trace_id FROM spans WHERE {scope})"


@contextmanager
def critical_spans(case: "Case", scope: str = "TRUE", params: Sequence[Any] | None = None, *,
                   max_depth: int = MAX_DEPTH) -> Iterator[str]:
    """Temp table of every span on the critical path of the traces matched by ``scope``, valid
    inside the ``with`` block.

    ``scope`` is a trusted boolean SQL expression over ``spans`` with ``params`` for its ``?``.
    Columns: trace_id, root_span_id, span_id, parent_span_id, depth (0 for the root), service,
    operation, name, kind, start_time, end_time, duration_ms, self_ms (ms of the span's own
    time on the critical path), root_ms (duration of the root span), source_file, source_line.
    """
    params = list(params or [])
    scoped = _scope(scope)
    with ExitStack() as stack:
        stack.enter_context(unique_spans(case))
        path = stack.enter_context(_critical_core(case, scoped, params, max_depth))
        cpx = stack.enter_context(temp_table(case, f"""
SELECT s.trace_id, s.span_id, s.parent_span_id, p.sid, p.root_sid, p.depth, s.service, s.name, s.kind,
  s.start_time, s.end_time, s.duration_ms, p.self_us / 1e3 AS self_ms, p.root_us / 1e3 AS root_ms,
  s.source_file, s.source_line, {', '.join(f's.{c}' for c in OP_COLUMNS if c not in ('name', 'kind'))},
  {operation_key_sql('s')} AS opkey
FROM spans s JOIN {path} p ON p.sid = {span_key_sql('s')}
WHERE TRUE {scoped}""", params))
        yield stack.enter_context(temp_table(case, f"""
SELECT c.trace_id, r.span_id AS root_span_id, c.span_id, c.parent_span_id, c.depth, c.service, o.operation,
  c.name, c.kind, c.start_time, c.end_time, c.duration_ms, c.self_ms, c.root_ms, c.source_file, c.source_line
FROM {cpx} c JOIN (SELECT sid, span_id FROM {cpx} WHERE depth = 0) r ON r.sid = c.root_sid
JOIN ({operations_sql(cpx)}) o USING (opkey)"""))


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
        One row per span on the path (see :func:`critical_spans` for columns), ordered by
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
    with critical_spans(case, "trace_id = ?", [trace_id.strip().lower()]) as cp:
        return Result(query_arrow(case.con, f"SELECT * FROM {cp} ORDER BY start_time, depth, span_id"))


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
    scoped = _scope(scope)
    with unique_spans(case), _critical_core(case, scoped, params, MAX_DEPTH) as path, \
            temp_table(case, _operations_sql(scoped), params) as ops:
        return Result(query_arrow(case.con, _by_operation_sql(path, ops), [slow_quantile]))


def _operations_sql(scoped: str) -> str:
    """``okey`` (see :func:`_nodes_sql`) -> service, normalized operation and ``opid`` (one id
    per distinct (service, operation)): normalization runs once per distinct input."""
    cols = ", ".join(("service",) + OP_COLUMNS)
    return f"""
SELECT okey, service, operation, dense_rank() OVER (ORDER BY service, operation) AS opid FROM (
  SELECT o.okey, o.service, {span_operation_sql('o')} AS operation FROM (
    SELECT {cols}, hash({cols}) AS okey FROM spans s WHERE TRUE {scoped} GROUP BY {cols}) o)"""


def _by_operation_sql(path: str, ops: str) -> str:
    """The aggregation of :func:`critical_path_by_operation` over the critical spans ``path``
    (see :func:`_critical_core`) and operations ``ops`` (one ``?``: the slow quantile). Integer
    keys until the last step; self times summed in integer microseconds; exemplars and sources
    break ties by trace and span id, so every engine gives the same rows."""
    return f"""
WITH entry AS MATERIALIZED (
  SELECT p.root_sid, p.trace_id, o.opid AS entry_opid, p.root_us, p.root_us / 1e3 AS root_ms
  FROM {path} p JOIN {ops} o USING (okey) WHERE p.depth = 0
),
cut AS MATERIALIZED (
  SELECT entry_opid, count(*) AS traces, quantile_cont(root_ms, ?) AS slow_cut_ms, sum(root_us) AS total_us
  FROM entry GROUP BY entry_opid
),
e AS MATERIALIZED (
  SELECT entry.*, cut.traces, cut.slow_cut_ms, cut.total_us, entry.root_ms >= cut.slow_cut_ms AS slow
  FROM entry JOIN cut USING (entry_opid)
),
slow_total AS MATERIALIZED (
  SELECT entry_opid, count(*) AS slow_traces, sum(root_us) AS slow_us FROM e WHERE slow GROUP BY entry_opid
),
per_root AS MATERIALIZED (
  SELECT p.root_sid, o.opid, sum(p.self_us) AS self_us, min(p.start_time) AS t0
  FROM {path} p JOIN {ops} o USING (okey) GROUP BY p.root_sid, o.opid
),
per_trace AS MATERIALIZED (
  SELECT e.entry_opid, e.slow, e.trace_id, r.opid, any_value(e.traces) AS traces, any_value(e.total_us) AS total_us,
    any_value(e.slow_cut_ms) AS slow_cut_ms, sum(r.self_us) AS self_us, min(r.t0) AS t0
  FROM per_root r JOIN e USING (root_sid) GROUP BY e.entry_opid, e.slow, e.trace_id, r.opid
),
agg AS MATERIALIZED (
  SELECT p.entry_opid, p.opid, any_value(p.traces) AS traces, any_value(st.slow_traces) AS slow_traces,
    count(*) AS on_path_traces, sum(p.self_us) / 1e3 AS self_ms,
    sum(p.self_us) / nullif(any_value(p.total_us), 0) AS share,
    coalesce(sum(p.self_us) FILTER (WHERE p.slow), 0) / 1e3 AS slow_self_ms,
    coalesce(sum(p.self_us) FILTER (WHERE p.slow), 0) / nullif(any_value(st.slow_us), 0) AS slow_share,
    any_value(p.slow_cut_ms) AS p95_root_ms,
    min(p.t0) FILTER (WHERE p.slow) AS slow_first, max(p.t0) FILTER (WHERE p.slow) AS slow_last,
    min_by(p.trace_id, (NOT p.slow, -p.self_us, p.trace_id), 5) AS exemplar_trace_ids,
    arg_min(p.trace_id, (NOT p.slow, -p.self_us, p.trace_id)) AS src_trace,
    arg_min(p.slow, (NOT p.slow, -p.self_us, p.trace_id)) AS src_slow
  FROM per_trace p LEFT JOIN slow_total st USING (entry_opid)
  GROUP BY p.entry_opid, p.opid
),
src_span AS (
  SELECT a.entry_opid, a.opid, arg_min(p.sid, (-p.self_us, p.tb)) AS sid
  FROM agg a JOIN e ON e.trace_id = a.src_trace AND e.entry_opid = a.entry_opid AND e.slow = a.src_slow
  JOIN {path} p ON p.root_sid = e.root_sid JOIN {ops} o ON o.okey = p.okey AND o.opid = a.opid
  GROUP BY a.entry_opid, a.opid
),
src AS (
  SELECT {span_key_sql('s')} AS sid,
         coalesce(s.source_file, '?') || coalesce(':' || CAST(s.source_line AS VARCHAR), '') AS source
  FROM spans s WHERE s.trace_id IN (SELECT src_trace FROM agg)
),
names AS (SELECT DISTINCT opid, service, operation FROM {ops})
SELECT en.service AS entry_service, en.operation AS entry_operation, n.service, n.operation, a.traces, a.slow_traces,
  a.on_path_traces, a.self_ms, a.share, a.slow_self_ms, a.slow_share, a.p95_root_ms, a.slow_first, a.slow_last,
  a.exemplar_trace_ids, src.source
FROM agg a JOIN names en ON en.opid = a.entry_opid JOIN names n ON n.opid = a.opid
LEFT JOIN src_span ss ON ss.entry_opid = a.entry_opid AND ss.opid = a.opid LEFT JOIN src ON src.sid = ss.sid
ORDER BY a.slow_share DESC, a.share DESC
"""
