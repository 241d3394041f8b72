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

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import duckdb

from .._db import run, scalar
from ..detectors._common import source_sql, span_key_sql, temp_table
from ..errors import CaseError, UsageError
from ._tree import MAX_DEPTH, host_sql, walk_down

if TYPE_CHECKING:
    from ..case import Case


#: decimal resolutions (microseconds) a host's timestamps are checked against, coarsest first:
#: whole milliseconds (JavaScript ``Date.now()``, older Java tracers and Zipkin reporters) down
#: to 10 us; a host whose every timestamp is a multiple of 1000 us writes milliseconds (the
#: chance of that with microsecond timestamps is 10**-3 per timestamp)
RESOLUTIONS_US = (1_000, 100, 10)


def _zeros_sql(us: str) -> str:
    """Decimal trailing zeros (0-3) of an epoch-microsecond expression: 3 for a time in whole
    milliseconds. The minimum over a host's timestamps is the resolution its clock or exporter
    wrote them with (10 ** zeros microseconds)."""
    whens = " ".join(f"WHEN {us} % {r} = 0 THEN {len(str(r)) - 1}" for r in RESOLUTIONS_US)
    return f"(CASE {whens} ELSE 0 END)"


def edges_sql() -> str:
    """SELECT of every cross-host client -> server parent link, timed or not.

    Columns: trace_id, span_id (the server span), parent_span_id, host, parent_host, service,
    parent_service, lead_us (child.start - parent.start), trail_us (parent.end - child.end),
    offset_us (see module docs), start_time, source ("file:line" of the server span), sid and
    pid (64-bit keys of the server span and of its client parent, see
    :func:`forensics.detectors._common.span_key_sql`), s_zeros and c_zeros (decimal trailing
    zeros of the server and of the client span's timestamps, the fewer of start and end: see
    :func:`judged_pairs_sql`). The timing columns are NULL when a time is missing.
    ``lead_us + trail_us`` is the client span's length minus the server span's.
    """
    lead = "(epoch_us(c.start_time) - epoch_us(p.start_time))"
    trail = "(epoch_us(p.end_time) - epoch_us(c.end_time))"
    zeros = lambda a: f"least({_zeros_sql(f'epoch_us({a}.start_time)')}, {_zeros_sql(f'epoch_us({a}.end_time)')})"  # noqa: E731
    return f"""
SELECT c.trace_id, c.span_id, c.parent_span_id, {host_sql('c')} AS host, {host_sql('p')} AS parent_host,
  c.service, p.service AS parent_service, {lead} AS lead_us, {trail} AS trail_us,
  CASE WHEN epoch_us(c.end_time) - epoch_us(c.start_time) > epoch_us(p.end_time) - epoch_us(p.start_time)
       THEN {lead} ELSE ({lead} - {trail}) / 2.0 END AS offset_us,
  c.start_time, {source_sql('c')} AS source, {span_key_sql('c')} AS sid, {span_key_sql('c', 'parent_span_id')} AS pid,
  {zeros('c')} AS s_zeros, {zeros('p')} AS c_zeros
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE c.kind = 'server' AND p.kind = 'client' AND {host_sql('c')} IS DISTINCT FROM {host_sql('p')}
"""


def pairs_sql() -> str:
    """SELECT of every cross-host client -> server pair with its timing (microseconds): the
    rows of :func:`edges_sql` whose four times are known (same columns)."""
    return f"SELECT * FROM ({edges_sql()}) WHERE lead_us IS NOT NULL AND trail_us IS NOT NULL"


#: columns of :func:`edges_sql` carried through :func:`judged_pairs_sql` unchanged
_PAIR_COLUMNS = ("trace_id", "span_id", "parent_span_id", "host", "parent_host", "service", "parent_service",
                 "lead_us", "trail_us", "start_time", "source", "sid", "pid")


def judged_pairs_sql(pairs: str, extra: tuple[str, ...] = ()) -> str:
    """The timed pairs of relation ``pairs`` (:func:`edges_sql` columns, plus ``extra``), judged
    for skew. One named parameter ``$tol_us``: the tolerance in microseconds.

    Adds res_us and parent_res_us (the timestamp resolution of each side's host, microseconds:
    10 ** the fewest trailing zeros of its timestamps in ``pairs``; 1000 for an exporter writing
    whole milliseconds), tol_us (``$tol_us`` plus both resolutions: rounding can move each side
    by up to its resolution), ``bad`` and ``offset_us``.

    A pair is ``bad`` (evidence of skew) when the server span starts more than ``tol_us``
    before its client span, or ends more than ``tol_us`` after it while it is no longer than the
    client span (so a shift of clocks could explain it). A server span longer than its client
    span whose start agrees (a request the server kept working on after the client gave up, a
    hung request, a span ended late) is not skew: its ``offset_us`` is NULL (it says nothing
    about the clocks), and it is never bad. Its CTEs are named ``jp_*``, so the SELECT can sit in
    another WITH (Spark refuses a CTE name used twice once sqlglot hoists them).
    """
    cols = _PAIR_COLUMNS + tuple(extra)
    pc, jc = (", ".join(f"{a}.{c}" for c in cols) for a in ("p", "j"))
    return f"""
WITH jp_in AS (SELECT * FROM {pairs} WHERE lead_us IS NOT NULL AND trail_us IS NOT NULL),
jp_res AS (SELECT host, CAST(power(10, min(z)) AS BIGINT) AS res_us FROM (
          SELECT host, s_zeros AS z FROM jp_in UNION ALL SELECT parent_host AS host, c_zeros AS z FROM jp_in) z
        GROUP BY host),
jp_j AS (
  SELECT {pc}, p.offset_us, r.res_us, pr.res_us AS parent_res_us, $tol_us + r.res_us + pr.res_us AS tol_us
  FROM jp_in p JOIN jp_res r ON r.host = p.host JOIN jp_res pr ON pr.host = p.parent_host)
SELECT {jc}, j.res_us, j.parent_res_us, j.tol_us,
  j.lead_us < -j.tol_us OR (j.trail_us < -j.tol_us AND j.lead_us + j.trail_us >= -j.tol_us) AS bad,
  CASE WHEN j.lead_us + j.trail_us < -j.tol_us AND j.lead_us >= -j.tol_us THEN NULL ELSE j.offset_us END AS offset_us
FROM jp_j j
"""


@contextmanager
def span_shifts(case: "Case", edges: str, *, tolerance_ms: float = 1.0,
                max_depth: int = MAX_DEPTH) -> Iterator[str]:
    """Relation ``(sid, shift_us)`` of the spans whose clock is shifted relative to their trace
    root's clock (microseconds, nonzero), for use in ``FROM`` inside the ``with`` block.

    ``edges`` is a table holding :func:`edges_sql`. A pair's skew is its offset when it is
    ``bad`` (:func:`judged_pairs_sql`, with ``tolerance_ms`` plus the timestamp resolutions),
    else 0 (it fits in its client span, or it is a longer server span whose start agrees); per (caller host,
    server host) the median skew is the server clock's offset relative to its caller (so a
    host pair is corrected only when most of its pairs stick out). A span's shift is its
    parent's plus, where a client -> server call crosses hosts, that host pair's offset, so a
    whole subtree on a skewed host moves with it (Jaeger's adjuster, with per-host-pair medians
    instead of one noisy pair). Only traces with a corrected host pair are walked (see
    :func:`forensics.analysis._tree.walk_down`), down to ``max_depth``.
    """
    offsets = f"""
SELECT * FROM (
  SELECT parent_host, host, median(CASE WHEN bad THEN offset_us ELSE 0 END) AS off_us
  FROM ({judged_pairs_sql(edges)}) GROUP BY parent_host, host
) WHERE off_us <> 0"""
    with temp_table(case, offsets, {"tol_us": tolerance_ms * 1000.0}) as hp, temp_table(case, f"""
SELECT e.trace_id, e.sid, h.off_us FROM {edges} e
JOIN {hp} h ON h.parent_host = e.parent_host AND h.host = e.host""") as skewed:
        nodes = f"""
WITH sp AS (
  SELECT {span_key_sql('s')} AS sid, {span_key_sql('s', 'parent_span_id')} AS pid FROM spans s
  WHERE s.span_id IS NOT NULL AND s.trace_id IN (SELECT trace_id FROM {skewed})
)
SELECT sp.sid, par.sid AS anc, k.off_us AS val
FROM sp LEFT JOIN (SELECT DISTINCT sid FROM sp) par ON par.sid = sp.pid
LEFT JOIN {skewed} k ON k.sid = sp.sid"""
        with temp_table(case, nodes) as tree, walk_down(case, tree, max_depth=max_depth) as walk:
            yield f"(SELECT sid, total AS shift_us FROM {walk} w WHERE total <> 0)"


def adjusted_pairs_sql(edges: str, shifts: str) -> str:
    """:func:`pairs_sql` (from table ``edges``) with the caller's times corrected by its own
    clock's shift (relation ``shifts`` from :func:`span_shifts`), so a server downstream of a
    skewed host is judged against where its caller really was. Adds ``caller_shift_us``."""
    shift = "coalesce(sh.shift_us, 0)"
    return f"""
SELECT pr.trace_id, pr.span_id, pr.parent_span_id, pr.host, pr.parent_host, pr.service, pr.parent_service,
  pr.lead_us + {shift} AS lead_us, pr.trail_us - {shift} AS trail_us, pr.offset_us + {shift} AS offset_us,
  pr.start_time, pr.source, pr.sid, pr.pid, pr.s_zeros, pr.c_zeros, {shift} AS caller_shift_us
FROM {edges} pr LEFT JOIN {shifts} sh ON sh.sid = pr.pid
WHERE pr.lead_us IS NOT NULL AND pr.trail_us IS NOT NULL
"""


def adjust_clock_skew(case: "Case", *, tolerance_ms: float = 1.0, max_depth: int = MAX_DEPTH) -> int:
    """Write skew-corrected times into ``spans.adj_start_time`` / ``spans.adj_end_time``.

    Each span is moved back by its clock's estimated shift (:func:`span_shifts`). Raw
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
    with temp_table(case, edges_sql()) as edges, \
            span_shifts(case, edges, tolerance_ms=tolerance_ms, max_depth=max_depth) as shifts, \
            temp_table(case, f"SELECT sid, round(shift_us)::BIGINT AS shift_us FROM {shifts} t "
                             "WHERE round(shift_us) <> 0") as moved:
        run(con, f"""UPDATE spans SET adj_start_time = spans.start_time - to_microseconds(t.shift_us),
                     adj_end_time = spans.end_time - to_microseconds(t.shift_us)
                     FROM {moved} t WHERE t.sid = {span_key_sql('spans')}""")
        return int(scalar(con, f"SELECT count(*) FROM {moved}"))
