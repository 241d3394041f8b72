"""Helpers shared by the trace detectors: outbound calls, effective versions, temp tables,
severity, near misses, and turning query rows into findings.

All heavy lifting is SQL over the canonical ``spans`` table; Python only loops over the
(few) candidate groups a detector reports on.
"""
from __future__ import annotations

import itertools
import math
import os
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence


from .._db import query_arrow, run, scalar
from ..findings import Findings
from ..semantics import call_operation_sql, call_target_sql, is_call_sql, is_error_sql

if TYPE_CHECKING:
    from ..case import Case

_counter = itertools.count()

#: label of spans of a deployed service seen before its first deploy event (no service.version)
BEFORE_DEPLOY = "pre-deploy"


# -- temp tables ------------------------------------------------------------------------------
@contextmanager
def temp_table(case: "Case", select_sql: str, params: Sequence[Any] | None = None) -> Iterator[str]:
    """Materialize ``select_sql`` as a uniquely named TEMP table for the ``with`` block."""
    name = f"_fx_{os.getpid()}_{next(_counter)}"
    run(case.con, f"CREATE TEMP TABLE {name} AS {select_sql}", params)
    try:
        yield name
    finally:
        run(case.con, f"DROP TABLE IF EXISTS {name}")


def rows(case: "Case", query: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    """Query rows as dicts (for the few summary rows a detector turns into findings)."""
    return query_arrow(case.con, query, params).to_pylist()


def has_spans(case: "Case") -> bool:
    """Whether the case holds any span with a parent (detectors over call trees need one)."""
    return bool(scalar(case.con, "SELECT count(*) > 0 FROM (SELECT 1 FROM spans WHERE parent_span_id IS NOT NULL LIMIT 1)"))


# -- versions ------------------------------------------------------------------------------
def version_sql(case: "Case", alias: str = "c") -> tuple[str, str]:
    """``(join_clause, expression)`` giving the effective version of spans aliased ``alias``.

    ``service.version`` when the span has one. Otherwise, when the ``events`` table holds
    ``kind = 'deploy'`` events for the span's service, the version of the latest deploy at or
    before the span (the deploy time when the event has no version), or ``'pre-deploy'``
    for spans preceding the first deploy. When no span lacks a version where a deploy event
    could supply one, the expression is ``service_version`` and the join clause is empty (the
    ASOF join is the costliest step of a detector, so it only runs when it matters).
    """
    needed = scalar(case.con, """
SELECT count(*) > 0 FROM (
  SELECT 1 FROM spans WHERE service_version IS NULL AND service IN (
    SELECT service FROM events WHERE kind = 'deploy' AND service IS NOT NULL AND time IS NOT NULL)
  LIMIT 1)""")
    if not needed:
        return "", f"{alias}.service_version"
    deploys = (
        "(SELECT service AS d_service, time AS d_time, "
        "coalesce(version, 'deploy@' || strftime(time, '%Y-%m-%dT%H:%M:%SZ')) AS d_version "
        "FROM events WHERE kind = 'deploy' AND service IS NOT NULL AND time IS NOT NULL "
        f"UNION ALL SELECT DISTINCT service, '-infinity'::TIMESTAMPTZ, '{BEFORE_DEPLOY}' "
        "FROM events WHERE kind = 'deploy' AND service IS NOT NULL)")
    join = f"ASOF LEFT JOIN {deploys} d ON d.d_service = {alias}.service AND {alias}.start_time >= d.d_time"
    return join, f"coalesce({alias}.service_version, d.d_version)"


def deploy_times_sql() -> str:
    """Per (service, version): the first deploy time from ``events`` (for version ordering)."""
    return ("SELECT service, version, min(time) AS deployed_at FROM events "
            "WHERE kind = 'deploy' AND service IS NOT NULL AND version IS NOT NULL GROUP BY ALL")


# -- outbound calls ------------------------------------------------------------------------
#: attribute keys whose value counts earlier attempts (> 0 marks a retry)
RESEND_KEYS = ("http.request.resend_count", "http.resend_count", "retry.count", "retry_count",
               "grpc.previous-rpc-attempts")
#: attribute keys numbering the attempt from 1 (> 1 marks a retry)
ATTEMPT_KEYS = ("retry.attempt", "attempt")


def _attr_int(alias: str, keys: tuple[str, ...], default: int) -> str:
    vals = ", ".join(f"TRY_CAST({alias}.attributes['{k}'] AS BIGINT)" for k in keys)
    return f"coalesce({vals}, {default})"


def span_key_sql(s: str = "s", column: str = "span_id") -> str:
    """64-bit key ``hash(trace_id, <column>)`` of a span aliased ``s`` (its parent with
    ``column="parent_span_id"``). Joins on it replace joins on two id strings. Engine-specific
    values (DuckDB ``hash``, Spark ``xxhash64``): for equality only, never output."""
    return f"hash({s}.trace_id, {s}.{column})"


def trace_key_sql(s: str = "s") -> str:
    """64-bit key ``hash(trace_id)`` of the trace of a span aliased ``s`` (equality only, as
    :func:`span_key_sql`)."""
    return f"hash({s}.trace_id)"


def _children_sql() -> str:
    """Per outbound span that needs its callee to be named (no ``peer_service``, or no template,
    route or statement for its operation): the service, route and method of its child
    server/consumer span, keyed by ``psid`` (the outbound span's key). Restricted to those
    spans, so instrumented clients (the common case) cost one narrow scan, not a join."""
    needs = ("(nullif(c.peer_service, '') IS NULL OR "
             "(c.url_template IS NULL AND c.http_route IS NULL AND c.db_statement IS NULL))")
    return f"""
SELECT {span_key_sql('s', 'parent_span_id')} AS psid, any_value(s.service) AS service,
       any_value(s.http_route) AS http_route, any_value(s.http_method) AS http_method
FROM spans s WHERE s.kind IN ('server', 'consumer') AND s.parent_span_id IS NOT NULL
  AND {span_key_sql('s', 'parent_span_id')} IN (
    SELECT {span_key_sql('c')} FROM spans c WHERE c.parent_span_id IS NOT NULL AND {is_call_sql('c')} AND {needs})
GROUP BY 1"""


def _outbound_sql(case: "Case", columns: str) -> str:
    """SELECT ``columns`` (over span ``c``, its callee ``ch``, ``version``, ``target``,
    ``target_operation``) of every outbound span with a parent."""
    vjoin, vexpr = version_sql(case, "c")
    return f"""
SELECT {columns} FROM (
SELECT c.*, {vexpr} AS version, {call_target_sql('c', 'ch')} AS target,
  {call_operation_sql('c', 'ch')} AS target_operation
FROM spans c {vjoin}
LEFT JOIN ({_children_sql()}) ch ON ch.psid = {span_key_sql('c')}
WHERE c.parent_span_id IS NOT NULL AND {is_call_sql('c')}) c
"""


#: request details: equal details under one caller mean the same request was repeated
_DETAIL = "hash(coalesce(c.http_url, c.db_statement, c.messaging_message_id, c.name))"
_MARKED = f"({_attr_int('c', RESEND_KEYS, 0)} > 0 OR {_attr_int('c', ATTEMPT_KEYS, 1)} > 1)"


def calls_sql(case: "Case") -> str:
    """SELECT of every outbound call with a parent: one row per client/producer/DB span.

    Columns: trace_id, span_id, parent_span_id, service, version (effective, see
    :func:`version_sql`), start_time, end_time, start_us, end_us (epoch microseconds),
    duration_ms, target, target_operation, source ("file:line" of the span), detail (hash of
    the raw URL, statement, message id or name: equal details mean the same request was
    repeated), marked (a retry attribute: :data:`RESEND_KEYS` > 0 or :data:`ATTEMPT_KEYS` > 1),
    is_error (:func:`forensics.semantics.is_error_sql`), sid (hash of trace and span id) and chain (hash of
    trace, parent span, target and operation: the sibling calls one caller made to one
    operation). See :func:`call_tables` for the narrow, cached form the detectors use.
    """
    return f"""
SELECT *, hash(trace_id, parent_span_id, target, target_operation) AS chain, hash(trace_id, span_id) AS sid FROM (
{_outbound_sql(case, f'''c.trace_id, c.span_id, c.parent_span_id, c.service, c.version,
  c.start_time, c.end_time, epoch_us(c.start_time) AS start_us,
  epoch_us(coalesce(c.end_time, c.start_time)) AS end_us, c.duration_ms, c.target, c.target_operation,
  {source_sql('c')} AS source, {_DETAIL} AS detail, {_MARKED} AS marked, {is_error_sql('c')} AS is_error''')})
"""


def _call_rows_sql(case: "Case") -> str:
    """The rows of :func:`call_tables` before the retry flags, with their strings (service,
    version, target, target_operation) next to their key ``kid``."""
    return f"""
SELECT sid, psid, tid, hash(psid, target, target_operation) AS chain,
  hash(service, version, target, target_operation) AS kid, service, version, target, target_operation,
  start_time, end_time, start_us, end_us, duration_ms, detail, marked, is_error FROM (
{_outbound_sql(case, f'''{span_key_sql('c')} AS sid, {span_key_sql('c', 'parent_span_id')} AS psid,
  {trace_key_sql('c')} AS tid, c.service, c.version, c.target, c.target_operation, c.start_time, c.end_time,
  epoch_us(c.start_time) AS start_us, epoch_us(coalesce(c.end_time, c.start_time)) AS end_us,
  c.duration_ms, {_DETAIL} AS detail, {_MARKED} AS marked, {is_error_sql('c')} AS is_error''')})
"""


#: fixed-width columns of :func:`call_tables` (every column but the retry flags)
CALL_COLUMNS = ("sid", "psid", "tid", "chain", "kid", "start_time", "end_time", "start_us", "end_us",
                "duration_ms", "detail", "marked", "is_error")


def attempt_flags_sql(calls: str) -> str:
    """Retry flags of the calls in table ``calls``, per sibling chain, keyed by ``sid``.

    Columns: sid, is_retry (marked, or the previous sibling failed, this call starts after it
    ended (1 ms tolerance, so hedged parallel requests are not retries) and repeats the same
    request: equal ``detail``), gap_ms (start minus the previous sibling's end) and
    prev_max_end (the latest end of the earlier siblings, epoch microseconds).
    """
    return _flagged_sql(calls, ("sid",))


def _flagged_sql(calls: str, columns: Sequence[str]) -> str:
    """``columns`` of table ``calls`` with the retry flags of :func:`attempt_flags_sql`."""
    cols = ", ".join(columns)
    return f"""
SELECT {cols}, (marked OR (coalesce(prev_error, false) AND start_us >= prev_end - 1000
                        AND detail IS NOT DISTINCT FROM prev_detail)) AS is_retry,
  (start_us - prev_end) / 1000.0 AS gap_ms, prev_max_end
FROM (SELECT {cols}, marked, start_us, detail, lag(is_error) OVER w AS prev_error, lag(end_us) OVER w AS prev_end,
        lag(detail) OVER w AS prev_detail,
        max(end_us) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max_end
      FROM {calls} WINDOW w AS (PARTITION BY chain ORDER BY start_us, sid))
"""


class CallTables(NamedTuple):
    """Names of the cached call tables of a connection (see :func:`call_tables`)."""

    calls: str
    keys: str


_CACHE: dict[int, tuple[tuple, CallTables, bool]] = {}


def _fingerprint(case: "Case") -> tuple:
    """Count and order-independent hash of the span ids and deploy events of ``case``."""
    return tuple(run(case.con, """
SELECT (SELECT count(*) FROM spans), (SELECT sum(hash(trace_id, span_id)) FROM spans),
       (SELECT count(*) FROM events WHERE kind = 'deploy'),
       (SELECT sum(hash(service, version, time)) FROM events WHERE kind = 'deploy')""")[0])


def cached_call_tables(case: "Case", fingerprint: tuple | None = None) -> CallTables | None:
    """The call tables of ``case``'s connection (:func:`call_tables`, with or without flags)
    if they are built and still match its spans and deploy events, else None (nothing is
    built)."""
    cached = _CACHE.get(id(case.con))
    if not cached or cached[0] != (fingerprint or _fingerprint(case)):
        return None
    exists = scalar(case.con, "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?",
                    [cached[1].calls])
    return cached[1] if exists else None


def call_tables(case: "Case", *, flags: bool = True) -> CallTables:
    """The outbound calls of ``case`` as two TEMP tables, built once per connection.

    ``calls``: one row per outbound call with a parent, fixed-width columns only (so windows,
    joins and aggregations over millions of calls move no strings): sid (key of the call span,
    :func:`span_key_sql`), psid (key of its parent span), tid (key of its trace,
    :func:`trace_key_sql`), chain (key of the sibling calls one caller made to one target
    operation), kid (key of service, version, target and target_operation: see ``keys``),
    start_time, end_time, start_us, end_us (epoch microseconds), duration_ms, detail, marked,
    is_error (see :func:`calls_sql`) and, with ``flags``, is_retry, gap_ms and prev_max_end
    (see :func:`attempt_flags_sql`; without ``flags`` they may be missing, which saves a window
    over every call).

    ``keys``: kid, service, version, target, target_operation (one row per kid).

    Reused by every detector while the spans and deploy events are unchanged (checked with a
    count and an order-independent hash of the ids); rebuilt otherwise. A table built without
    flags gains them when a later caller asks. They live until the connection closes or
    :func:`drop_calls_table` is called. File and line of a call: :func:`add_sources`.
    """
    key = id(case.con)
    fingerprint = _fingerprint(case)
    tables = cached_call_tables(case, fingerprint)
    if tables:
        if flags and not _CACHE[key][2]:
            flagged = CallTables(_new_name("calls"), tables.keys)
            run(case.con, f"CREATE TEMP TABLE {flagged.calls} AS {_flagged_sql(tables.calls, CALL_COLUMNS)}")
            run(case.con, f"DROP TABLE IF EXISTS {tables.calls}")
            _CACHE[key] = (fingerprint, flagged, True)
            return flagged
        return tables
    drop_calls_table(case)
    tables = CallTables(_new_name("calls"), _new_name("call_keys"))
    with temp_table(case, _call_rows_sql(case)) as rows_:
        run(case.con, f"CREATE TEMP TABLE {tables.keys} AS SELECT kid, any_value(service) AS service, "
                      f"any_value(version) AS version, any_value(target) AS target, "
                      f"any_value(target_operation) AS target_operation FROM {rows_} GROUP BY kid")
        select = _flagged_sql(rows_, CALL_COLUMNS) if flags else f"SELECT {', '.join(CALL_COLUMNS)} FROM {rows_}"
        run(case.con, f"CREATE TEMP TABLE {tables.calls} AS {select}")
    _CACHE[key] = (fingerprint, tables, flags)
    return tables


def call_counts_sql(case: "Case") -> str:
    """SELECT (psid, target, target_operation, calls): outbound calls per caller span (key
    ``psid``, :func:`span_key_sql`) and target operation.

    From the cached call tables when a detector already built them; otherwise straight from
    ``spans``, without the per-call columns and retry flags a caller of counts does not need.
    """
    tables = cached_call_tables(case)
    if tables:
        return (f"SELECT c.psid, k.target, k.target_operation, count(*) AS calls FROM {tables.calls} c "
                f"JOIN {tables.keys} k ON k.kid = c.kid GROUP BY ALL")
    counts = _outbound_sql(case, f"{span_key_sql('c', 'parent_span_id')} AS psid, c.target, c.target_operation")
    return f"SELECT psid, target, target_operation, count(*) AS calls FROM ({counts}) GROUP BY ALL"


def calls_table(case: "Case") -> str:
    """Name of the cached calls table with retry flags (``call_tables(case).calls``)."""
    return call_tables(case).calls


def _new_name(what: str) -> str:
    return f"_fx_{what}_{os.getpid()}_{next(_counter)}"


def drop_calls_table(case: "Case") -> None:
    """Drop the cached call tables of ``case``'s connection, if any."""
    cached = _CACHE.pop(id(case.con), None)
    if cached:
        for name in cached[1]:
            run(case.con, f"DROP TABLE IF EXISTS {name}")


#: span keys looked up per query by :func:`add_sources` (bind parameters of one IN list)
_SOURCES_BATCH = 500


def add_sources(case: "Case", records: list[dict[str, Any]], *sid_columns: str) -> list[dict[str, Any]]:
    """Give ``records`` a "file:line" (:func:`source_sql`) per span key column (default
    ``source_sid``): ``source`` for ``source_sid``, ``<x>_source`` for ``<x>_sid``; None when
    the key is None or matches no span. Returns ``records`` (changed in place).

    Detectors carry 8-byte span keys (:func:`span_key_sql`) through their aggregations and look
    up only the few source strings their findings show, here: one scan of the span ids per
    :data:`_SOURCES_BATCH` keys, the keys as bind parameters of an IN list (a filter on the
    scan, whatever the size of ``spans``).
    """
    cols = sid_columns or ("source_sid",)
    wanted = sorted({r[c] for r in records for c in cols if r.get(c) is not None})
    found: dict[Any, str] = {}
    for i in range(0, len(wanted), _SOURCES_BATCH):
        batch = wanted[i:i + _SOURCES_BATCH]
        found.update(run(case.con, f"""
SELECT {span_key_sql('s')} AS sid, min({source_sql('s')}) AS source FROM spans s
WHERE {span_key_sql('s')} IN ({', '.join('?' * len(batch))}) GROUP BY 1""", batch))
    for r in records:
        for c in cols:
            name = c.removesuffix("_sid")
            r[name if name == "source" else f"{name}_source"] = found.get(r.get(c))
    return records


def source_sql(alias: str) -> str:
    """``"file:line"`` (or ``file@offset``) of a span aliased ``alias``."""
    return (f"(coalesce({alias}.source_file, '?') || CASE WHEN {alias}.source_line IS NOT NULL "
            f"THEN ':' || {alias}.source_line::VARCHAR WHEN {alias}.source_offset IS NOT NULL "
            f"THEN '@' || {alias}.source_offset::VARCHAR ELSE '' END)")


# -- findings ---------------------------------------------------------------------------------
def severity_from_score(score: float, cuts: Sequence[tuple[float, str]]) -> str:
    """The first severity whose cut ``score >= cut`` holds (cuts ordered high to low), else low."""
    for cut, sev in cuts:
        if score >= cut:
            return sev
    return "low"


def check(name: str, observed: Any, required: Any, passed: bool) -> dict[str, Any]:
    """One threshold check for ``evidence.checks`` (observed value, required value, passed)."""
    if isinstance(observed, float) and not math.isfinite(observed):
        observed = None
    return {"name": name, "observed": observed, "required": required, "passed": bool(passed)}


def near_miss(record: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn a finding record into a near miss: severity info, ``evidence.near_miss``,
    ``evidence.failed`` (names of failed thresholds) and ``evidence.checks``."""
    ev = dict(record.get("evidence") or {})
    ev["near_miss"] = True
    ev["failed"] = [c["name"] for c in checks if not c["passed"]]
    ev["checks"] = checks
    why = "; ".join(f"{c['name']}: observed {fmt_num(c['observed'])}, required {c['required']}"
                    for c in checks if not c["passed"])
    return {**record, "severity": "info", "evidence": ev,
            "title": "near miss: " + record.get("title", ""),
            "summary": f"Not flagged ({why}): " + record.get("summary", "")}


def fmt_num(x: Any) -> str:
    """Compact human number: 52, 3.4, 0.25, 2.1k."""
    if x is None:
        return "n/a"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return "n/a"
    ax = abs(x)
    if ax >= 10000:
        return f"{x / 1000:.0f}k"
    if ax >= 100 or float(x).is_integer():
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.2g}"


def fmt_ms(ms: float | None) -> str:
    """Milliseconds as a human duration: 850 ms, 2.1 s."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return "n/a"
    if abs(ms) >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.0f} ms"


def to_findings(records: list[dict[str, Any]]) -> Findings:
    """Findings from records (most severe first); empty Findings for no records."""
    return Findings.from_records(records).sorted() if records else Findings.empty()


def clean(value: Any) -> Any:
    """JSON-friendly numbers: NaN/inf to None, numpy scalars to Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def vlabel(version: str | None) -> str:
    """``v1.8.0`` for a version starting with a digit, the label itself otherwise."""
    if not version:
        return "(no version)"
    return f"v{version}" if version[0].isdigit() else version
