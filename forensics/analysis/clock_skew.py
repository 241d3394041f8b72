"""Clock skew between hosts, estimated from client -> server span pairs, and its correction.

A server span is timed by the server's clock, its parent client span by the caller's. With
synchronised clocks the server span sits inside the client span, with (about) the same network
time before and after it. The *offset* of a pair is how far the server span is from that
centred position, ``((child.start - parent.start) - (parent.end - child.end)) / 2``: positive
means the server's clock is ahead of the caller's. When the server span is longer than the
client span (it cannot fit), the offset aligns the starts instead, like Jaeger's adjuster.

Only client -> server pairs that cross a host boundary (a different ``host_name``, or a
different service when hosts are unknown) are used: within one process both spans share a
clock, and producer -> consumer pairs are asynchronous (a consumer legitimately starts after
the producer ends).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from .._db import run, scalar
from ..detectors._common import source_sql
from ..errors import CaseError, UsageError
from ._tree import MAX_DEPTH, host_sql, roots_sql

if TYPE_CHECKING:
    from ..case import Case


def pairs_sql() -> str:
    """SELECT of every cross-host client -> server pair with its timing (microseconds).

    Columns: trace_id, span_id (the server span), parent_span_id, host, parent_host, service,
    parent_service, lead_us (child.start - parent.start), trail_us (parent.end - child.end),
    offset_us (see module docs), start_time, source ("file:line" of the server span).
    """
    return f"""
SELECT c.trace_id, c.span_id, c.parent_span_id, {host_sql('c')} AS host, {host_sql('p')} AS parent_host,
  c.service, p.service AS parent_service,
  epoch_us(c.start_time) - epoch_us(p.start_time) AS lead_us,
  epoch_us(p.end_time) - epoch_us(c.end_time) AS trail_us,
  CASE WHEN epoch_us(c.end_time) - epoch_us(c.start_time) > epoch_us(p.end_time) - epoch_us(p.start_time)
       THEN lead_us ELSE (lead_us - trail_us) / 2.0 END AS offset_us,
  c.start_time,
  {source_sql('c')} AS source
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.kind = 'server' AND p.kind = 'client'
  AND c.start_time IS NOT NULL AND c.end_time IS NOT NULL AND p.start_time IS NOT NULL AND p.end_time IS NOT NULL
  AND {host_sql('c')} IS DISTINCT FROM {host_sql('p')}
"""


def span_shifts_sql(max_depth: int = MAX_DEPTH) -> str:
    """SELECT (trace_id, span_id, shift_us) of every span reachable from a root: the estimated
    offset of the clock that timed it relative to its trace root's clock, in microseconds.

    A pair's skew is 0 when the server span fits inside its client span (within the tolerance,
    the two ``?`` parameters, microseconds), else its offset; per (caller host, server host)
    the median skew is the server clock's offset relative to its caller (so a host pair is
    corrected only when most of its pairs stick out). A span's shift is its parent's plus, where a client -> server call crosses hosts, that
    host pair's offset, so a whole subtree on a skewed host moves with it (Jaeger's adjuster,
    with per-host-pair medians instead of one noisy pair).
    """
    return f"""
WITH RECURSIVE hp AS MATERIALIZED (
  SELECT parent_host, host,
         median(CASE WHEN lead_us < -? OR trail_us < -? THEN offset_us ELSE 0 END) AS off_us
  FROM ({pairs_sql()}) GROUP BY ALL HAVING off_us <> 0
),
sp AS MATERIALIZED (SELECT trace_id, span_id, parent_span_id, kind, {host_sql('spans')} AS host FROM spans),
roots AS MATERIALIZED ({roots_sql('sp')}),
walk(trace_id, span_id, kind, host, shift_us, depth) AS (
  SELECT trace_id, span_id, kind, host, 0::DOUBLE, 0 FROM roots
  UNION ALL
  SELECT c.trace_id, c.span_id, c.kind, c.host,
         w.shift_us + CASE WHEN c.kind = 'server' AND w.kind = 'client' THEN coalesce(hp.off_us, 0) ELSE 0 END,
         w.depth + 1
  FROM walk w JOIN sp c ON c.trace_id = w.trace_id AND c.parent_span_id = w.span_id
  LEFT JOIN hp ON hp.parent_host = w.host AND hp.host = c.host
  WHERE w.depth < {int(max_depth)}
)
SELECT trace_id, span_id, shift_us FROM walk
"""


def adjusted_pairs_sql(max_depth: int = MAX_DEPTH) -> str:
    """:func:`pairs_sql` with the caller's times corrected by its own clock's shift (one ``?``:
    the tolerance in microseconds, see :func:`span_shifts_sql`), so a server downstream of a
    skewed host is judged against where its caller really was. Adds ``caller_shift_us``."""
    return f"""
SELECT pr.* REPLACE (pr.lead_us + coalesce(sh.shift_us, 0) AS lead_us,
                     pr.trail_us - coalesce(sh.shift_us, 0) AS trail_us,
                     pr.offset_us + coalesce(sh.shift_us, 0) AS offset_us),
       coalesce(sh.shift_us, 0) AS caller_shift_us
FROM ({pairs_sql()}) pr
LEFT JOIN ({span_shifts_sql(max_depth)}) sh ON sh.trace_id = pr.trace_id AND sh.span_id = pr.parent_span_id
"""


def adjust_clock_skew(case: "Case", *, tolerance_ms: float = 1.0, max_depth: int = MAX_DEPTH) -> int:
    """Write skew-corrected times into ``spans.adj_start_time`` / ``spans.adj_end_time``.

    Each span is moved back by its clock's estimated shift (:func:`span_shifts_sql`). Raw
    ``start_time``/``end_time`` are kept; the new columns are added if missing and hold the raw
    times for spans that need no correction. Spans loaded later get NULL there: run again.

    Parameters
    ----------
    tolerance_ms:
        How far (ms) a server span may stick out of its client span before it counts as skewed.
    max_depth:
        Bound on the depth of the walk from the roots.

    Returns
    -------
    int
        Number of spans whose adjusted times differ from the raw ones.
    """
    if tolerance_ms < 0:
        raise UsageError(f"tolerance_ms must be >= 0, got {tolerance_ms!r}")
    con = case.con
    try:
        for col in ("adj_start_time", "adj_end_time"):
            run(con, f"ALTER TABLE spans ADD COLUMN IF NOT EXISTS {col} TIMESTAMPTZ")
    except duckdb.Error as exc:
        raise CaseError(f"{case.path or 'in-memory case'}: cannot add adj_start_time/adj_end_time to spans "
                        f"({exc}); open the case writable (read_only=False) to store adjusted times") from exc
    run(con, "UPDATE spans SET adj_start_time = start_time, adj_end_time = end_time")
    shifts = (f"SELECT trace_id, span_id, round(shift_us)::BIGINT AS shift_us FROM ({span_shifts_sql(max_depth)}) "
              "WHERE round(shift_us) <> 0")
    name = "_clock_skew_shifts"
    run(con, f"CREATE OR REPLACE TEMP TABLE {name} AS {shifts}", [tolerance_ms * 1000.0] * 2)
    try:
        run(con, f"""UPDATE spans SET adj_start_time = spans.start_time - to_microseconds(t.shift_us),
                     adj_end_time = spans.end_time - to_microseconds(t.shift_us)
                     FROM {name} t WHERE t.trace_id = spans.trace_id AND t.span_id = spans.span_id""")
        return int(scalar(con, f"SELECT count(*) FROM {name}"))
    finally:
        run(con, f"DROP TABLE IF EXISTS {name}")
