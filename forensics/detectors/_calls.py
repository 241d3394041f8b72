"""The outbound calls of a case, as the call-based detectors see them (n_plus_one, retry_storm,
bimodal_latency's dependency groups, version_regression's call patterns): built once per
connection, in three steps, each a named SQL function.

1. :func:`call_rows_sql`: every outbound call with a parent (what a call is, its target and its
   operation: :mod:`forensics.semantics`; repeated span rows are hidden from every detector by
   :func:`forensics._duplicates.unique_spans`), with what was exported under it: the server
   spans that answered it. More than one server span under one client span means the client
   library retried inside the call (urllib3's ``Retry`` behind one ``requests`` span, gRPC
   transparent retries): ``attempts``, ``failed_attempts`` and the mean gap between them.
2. :func:`collapsed_sql`: double instrumentation collapsed before anything is counted. A call
   whose parent is a call of the same operation on the same dependency (or the same request) is
   one call: the inner span stands for it, under the outer span's parent (an HTTP library span and
   the lower-level one inside it). A call nested in time in a sibling call making the same request
   (URL or statement), recorded by another instrumentation (scope, name or kind differ), is
   dropped: OpenTelemetry's SQLAlchemy and sqlite3/DB-API instrumentations both record each
   statement, the ORM's span not being the driver span's parent (and only the ORM's naming the
   database), so 20 queries would look like 40 overlapping ones.
3. The retry flags of :func:`attempt_flags_sql`, per sibling chain (the calls one caller made to
   one dependency operation).
"""
from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, NamedTuple

from .._db import run, scalar
from ..semantics import call_operation_sql, call_target_sql, is_call_sql, is_error_sql
from ._common import fingerprint, span_key_sql, temp_table, trace_key_sql, version_sql

if TYPE_CHECKING:
    from ..case import Case

#: attribute keys whose value counts earlier attempts (> 0 marks a retry)
RESEND_KEYS = ("http.request.resend_count", "http.resend_count", "retry.count", "retry_count",
               "grpc.previous-rpc-attempts")
#: attribute keys numbering the attempt from 1 (> 1 marks a retry)
ATTEMPT_KEYS = ("retry.attempt", "attempt")
#: a retry starts at most this long (microseconds) before the failed attempt it repeats ended
#: (clock resolution); hedged requests sent while the first is still running are not retries
RETRY_TOLERANCE_US = 1000


def _attr_int(alias: str, keys: tuple[str, ...], default: int) -> str:
    vals = ", ".join(f"TRY_CAST({alias}.attributes['{k}'] AS BIGINT)" for k in keys)
    return f"coalesce({vals}, {default})"


def _children_sql() -> str:
    """Per outbound span (key ``psid``): the server/consumer spans under it. ``servers``
    (server spans: the attempts the callee saw), ``failed_servers``, ``inner_gap_ms``
    (mean gap between one attempt's end and the next one's start, for 2+ attempts), and the
    service, route and method of one of them (to name the callee)."""
    return f"""
SELECT psid, count(*) FILTER (WHERE kind = 'server') AS servers,
  count(*) FILTER (WHERE kind = 'server' AND failed) AS failed_servers,
  CASE WHEN count(*) FILTER (WHERE kind = 'server') > 1 THEN
    (max(start_us) FILTER (WHERE kind = 'server') - min(start_us) FILTER (WHERE kind = 'server')
     - sum(dur_us) FILTER (WHERE kind = 'server') + arg_max(dur_us, start_us) FILTER (WHERE kind = 'server'))
    / (count(*) FILTER (WHERE kind = 'server') - 1) / 1000.0 END AS inner_gap_ms,
  any_value(service) AS service, any_value(http_route) AS http_route, any_value(http_method) AS http_method
FROM (
  SELECT {span_key_sql('s', 'parent_span_id')} AS psid, s.kind, s.service, s.http_route, s.http_method,
    epoch_us(s.start_time) AS start_us, epoch_us(coalesce(s.end_time, s.start_time)) - epoch_us(s.start_time) AS dur_us,
    {is_error_sql('s')} AS failed
  FROM spans s WHERE s.kind IN ('server', 'consumer') AND s.parent_span_id IS NOT NULL
    AND {span_key_sql('s', 'parent_span_id')} IN (
      SELECT {span_key_sql('c')} FROM spans c WHERE c.parent_span_id IS NOT NULL AND {is_call_sql('c')}))
GROUP BY psid"""


#: request details: equal details under one caller mean the same request was repeated
_DETAIL = "hash(coalesce(c.http_url, c.db_statement, c.messaging_message_id, c.name))"
_MARKED = f"({_attr_int('c', RESEND_KEYS, 0)} > 0 OR {_attr_int('c', ATTEMPT_KEYS, 1)} > 1)"


def call_rows_sql(case: "Case") -> str:
    """Step 1: every outbound call with a parent, names next to their keys.

    Columns: sid, psid, tid (:func:`forensics.detectors._common.span_key_sql`,
    :func:`~forensics.detectors._common.trace_key_sql`), service, version (effective:
    :func:`~forensics.detectors._common.version_sql`), target, target_operation, start_time,
    end_time, start_us, end_us (epoch microseconds), duration_ms, detail (hash of the raw URL,
    statement, message id or name), marked (a retry attribute: :data:`RESEND_KEYS` > 0 or
    :data:`ATTEMPT_KEYS` > 1), is_error (:func:`forensics.semantics.is_error_sql`), inst (hash
    of the instrumentation scope, name and kind), attempts (server spans under it, at least 1),
    failed_attempts (failed server spans when there are 2 or more, else the call's own failure)
    and inner_gap_ms (see :func:`_children_sql`).
    """
    vjoin, vexpr = version_sql(case, "c")
    return f"""
SELECT {span_key_sql('c')} AS sid, {span_key_sql('c', 'parent_span_id')} AS psid, {trace_key_sql('c')} AS tid,
  c.service, {vexpr} AS version, {call_target_sql('c', 'ch')} AS target,
  {call_operation_sql('c', 'ch')} AS target_operation, c.start_time, c.end_time,
  epoch_us(c.start_time) AS start_us, epoch_us(coalesce(c.end_time, c.start_time)) AS end_us, c.duration_ms,
  {_DETAIL} AS detail, {_MARKED} AS marked, {is_error_sql('c')} AS is_error, hash(c.scope_name, c.name, c.kind) AS inst,
  greatest(coalesce(ch.servers, 0), 1) AS attempts,
  CASE WHEN ch.servers > 1 THEN ch.failed_servers ELSE {is_error_sql('c')}::INT END AS failed_attempts,
  ch.inner_gap_ms
FROM spans c {vjoin}
LEFT JOIN ({_children_sql()}) ch ON ch.psid = {span_key_sql('c')}
WHERE c.parent_span_id IS NOT NULL AND {is_call_sql('c')}"""


#: the columns of :func:`call_rows_sql` the later steps carry, besides psid
_CARRIED = ("sid", "tid", "service", "version", "target", "target_operation", "start_time", "end_time", "start_us",
            "end_us", "duration_ms", "detail", "marked", "is_error", "inst", "attempts", "failed_attempts",
            "inner_gap_ms")


def collapsed_sql(rows: str) -> str:
    """Step 2: the calls of table ``rows`` (:func:`call_rows_sql`) with double instrumentation
    collapsed. A call whose parent is a call of the same operation on the same dependency, or
    of the same request (equal ``detail``), is lifted under the outer call's parent and the
    outer call left out. Then, among the calls of one caller that make the same request, a call
    recorded by another instrumentation (``inst``) than the call before it (by start, the longer
    first), and nested in its time, is left out: the same request seen twice (each
    instrumentation may name the dependency its own way, so the request decides, not the
    target). Adds ``chain`` (key of the caller, target and operation) and ``kid`` (key of
    service, version, target, operation)."""
    cols = ", ".join(f"r.{c}" for c in _CARRIED)
    kept = ", ".join(_CARRIED)
    return f"""
WITH nested AS (
  SELECT r.sid, p.sid AS outer_sid, p.psid AS outer_psid FROM {rows} r JOIN {rows} p ON p.sid = r.psid
  WHERE (p.target = r.target AND p.target_operation = r.target_operation) OR p.detail = r.detail),
outers AS (SELECT DISTINCT outer_sid FROM nested),
lifted AS (
  SELECT {cols}, coalesce(n.outer_psid, r.psid) AS psid
  FROM {rows} r LEFT JOIN nested n ON n.sid = r.sid LEFT JOIN outers o ON o.outer_sid = r.sid
  WHERE o.outer_sid IS NULL)
SELECT {kept}, psid, hash(psid, target, target_operation) AS chain,
  hash(service, version, target, target_operation) AS kid
FROM (SELECT *, lag(end_us) OVER w AS prev_end, lag(inst) OVER w AS prev_inst
      FROM lifted WINDOW w AS (PARTITION BY psid, detail ORDER BY start_us, end_us DESC, sid))
WHERE NOT (prev_end IS NOT NULL AND prev_end >= end_us AND prev_inst IS DISTINCT FROM inst)"""


#: fixed-width columns of the calls table (every column but the retry flags)
CALL_COLUMNS = ("sid", "psid", "tid", "chain", "kid", "start_time", "end_time", "start_us", "end_us",
                "duration_ms", "detail", "marked", "is_error", "attempts", "failed_attempts", "inner_gap_ms")


def attempt_flags_sql(calls: str) -> str:
    """Step 3, in one window per sibling chain over table ``calls`` (:func:`collapsed_sql`):
    :data:`CALL_COLUMNS`, ``is_retry``, ``gap_ms`` and ``prev_max_end``.

    ``is_retry``: a retry attribute, or the previous sibling failed, this call starts after it
    ended (:data:`RETRY_TOLERANCE_US`) and repeats the same request (equal ``detail``).
    ``gap_ms``: start minus the previous sibling's end. ``prev_max_end``: the latest end of the
    earlier siblings (epoch microseconds). Siblings are ordered by start, the longer first.
    """
    cols = ", ".join(CALL_COLUMNS)
    return f"""
SELECT {cols}, (marked OR (coalesce(prev_error, false) AND start_us >= prev_end - {RETRY_TOLERANCE_US}
                        AND detail IS NOT DISTINCT FROM prev_detail)) AS is_retry,
  (start_us - prev_end) / 1000.0 AS gap_ms, prev_max_end
FROM (SELECT {cols}, lag(is_error) OVER w AS prev_error, lag(end_us) OVER w AS prev_end,
        lag(detail) OVER w AS prev_detail,
        max(end_us) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max_end
      FROM {calls} WINDOW w AS (PARTITION BY chain ORDER BY start_us, end_us DESC, sid))
"""


class CallTables(NamedTuple):
    """Names of the cached call tables of a connection (see :func:`call_tables`)."""

    calls: str
    keys: str


_CACHE: dict[int, tuple[tuple, CallTables]] = {}
_names = itertools.count()


def cached_call_tables(case: "Case", fp: tuple | None = None) -> CallTables | None:
    """The call tables of ``case``'s connection (:func:`call_tables`) if they are built and still
    match its spans and deploy events, else None (nothing is built)."""
    cached = _CACHE.get(id(case.con))
    if not cached or cached[0] != (fp or fingerprint(case)):
        return None
    exists = scalar(case.con, "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                    [cached[1].calls])
    return cached[1] if exists else None


def call_tables(case: "Case") -> CallTables:
    """The outbound calls of ``case`` as two TEMP tables, built once per connection.

    ``calls``: one row per outbound call with a parent after the steps of the module docstring,
    fixed-width columns only (so windows, joins and aggregations over millions of calls move no
    strings): :data:`CALL_COLUMNS` (see :func:`call_rows_sql`; ``psid``, ``chain`` and ``kid``
    from :func:`collapsed_sql`) and the retry flags is_retry, gap_ms, prev_max_end
    (:func:`attempt_flags_sql`).

    ``keys``: kid, service, version, target, target_operation (one row per kid).

    Reused by every detector while the spans and deploy events are unchanged (checked with
    :func:`forensics.detectors._common.fingerprint`); rebuilt otherwise. They live until the
    connection closes or :func:`drop_calls_table` is called. File and line of a call:
    :func:`forensics.detectors._common.add_sources`.
    """
    fp = fingerprint(case)
    tables = cached_call_tables(case, fp)
    if tables:
        return tables
    drop_calls_table(case)
    tables = CallTables(_new_name("calls"), _new_name("call_keys"))
    with temp_table(case, call_rows_sql(case)) as rows_, temp_table(case, collapsed_sql(rows_)) as lifted:
        run(case.con, f"CREATE TEMP TABLE {tables.calls} AS {attempt_flags_sql(lifted)}")
        run(case.con, f"CREATE TEMP TABLE {tables.keys} AS SELECT kid, any_value(service) AS service, "
                      f"any_value(version) AS version, any_value(target) AS target, "
                      f"any_value(target_operation) AS target_operation FROM {lifted} "
                      f"WHERE kid IN (SELECT kid FROM {tables.calls}) GROUP BY kid")
    _CACHE[id(case.con)] = (fp, tables)
    return tables


def call_counts_sql(case: "Case") -> str:
    """SELECT (psid, target, target_operation, calls): outbound calls per caller span (key
    ``psid``) and target operation, from :func:`call_tables` (built if needed)."""
    tables = call_tables(case)
    return (f"SELECT c.psid, k.target, k.target_operation, count(*) AS calls FROM {tables.calls} c "
            f"JOIN {tables.keys} k ON k.kid = c.kid GROUP BY ALL")


def callers_sql(rel: str) -> str:
    """SELECT (psid, trace_id, name, http_route, http_method): the caller span of each ``psid``
    of relation ``rel`` (one row per key)."""
    return (f"SELECT {span_key_sql('p')} AS psid, any_value(p.trace_id) AS trace_id, any_value(p.name) AS name, "
            f"any_value(p.http_route) AS http_route, any_value(p.http_method) AS http_method "
            f"FROM spans p WHERE {span_key_sql('p')} IN (SELECT psid FROM {rel}) GROUP BY 1")


def _new_name(what: str) -> str:
    return f"_fx_{what}_{os.getpid()}_{next(_names)}"


def drop_calls_table(case: "Case") -> None:
    """Drop the cached call tables of ``case``'s connection, if any."""
    cached = _CACHE.pop(id(case.con), None)
    if cached:
        for name in cached[1]:
            run(case.con, f"DROP TABLE IF EXISTS {name}")
