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
from typing import TYPE_CHECKING, Any, Iterator, Sequence


from .._db import query_arrow, run, scalar
from ..findings import Findings
from ._normalize import call_operation_sql, call_target_sql

if TYPE_CHECKING:
    from ..case import Case

_counter = itertools.count()

#: label of spans of a deployed service seen before its first deploy event (no service.version)
BEFORE_DEPLOY = "pre-deploy"

#: a span is an outbound call: client/producer kind, or a DB span (any kind) with a statement
OUTBOUND_WHERE = ("(c.kind IN ('client', 'producer') OR c.db_system IS NOT NULL "
                  "OR c.db_statement IS NOT NULL)")


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
#: a failed call: status error, HTTP 5xx or 429, or a timeout / deadline message
CALL_ERROR_SQL = ("(status = 'error' OR coalesce(http_status_code, 0) >= 500 OR http_status_code = 429 "
                  "OR regexp_matches(lower(coalesce(status_message, '')), 'time[d ]?out|deadline exceeded'))")


def _attr_int(alias: str, keys: tuple[str, ...], default: int) -> str:
    vals = ", ".join(f"TRY_CAST({alias}.attributes['{k}'] AS BIGINT)" for k in keys)
    return f"coalesce({vals}, {default})"


def calls_sql(case: "Case") -> str:
    """SELECT of every outbound call with a parent: one row per client/producer/DB span.

    Columns: trace_id, span_id, parent_span_id, service, version (effective, see
    :func:`version_sql`), start_time, end_time, start_us, end_us (epoch microseconds),
    duration_ms, target, target_operation, source ("file:line" of the span), detail (hash of
    the raw URL, statement, message id or name: equal details mean the same request was
    repeated), marked (a retry attribute: :data:`RESEND_KEYS` > 0 or :data:`ATTEMPT_KEYS` > 1),
    is_error (:data:`CALL_ERROR_SQL`), sid (hash of trace and span id) and chain (hash of
    trace, parent span, target and operation: the sibling calls one caller made to one
    operation).
    """
    vjoin, vexpr = version_sql(case, "c")
    return f"""
WITH ch AS (
  SELECT trace_id, parent_span_id, any_value(service) AS service,
         any_value(http_route) AS http_route, any_value(http_method) AS http_method
  FROM spans WHERE kind IN ('server', 'consumer') AND parent_span_id IS NOT NULL
  GROUP BY trace_id, parent_span_id
)
SELECT *, hash(trace_id, parent_span_id, target, target_operation) AS chain, hash(trace_id, span_id) AS sid FROM (
SELECT c.trace_id, c.span_id, c.parent_span_id, c.service, {vexpr} AS version,
  c.start_time, c.end_time, epoch_us(c.start_time) AS start_us,
  epoch_us(coalesce(c.end_time, c.start_time)) AS end_us, c.duration_ms,
  {call_target_sql('c', 'ch')} AS target,
  {call_operation_sql('c', 'ch')} AS target_operation,
  {source_sql('c')} AS source,
  hash(coalesce(c.http_url, c.db_statement, c.messaging_message_id, c.name)) AS detail,
  ({_attr_int('c', RESEND_KEYS, 0)} > 0 OR {_attr_int('c', ATTEMPT_KEYS, 1)} > 1) AS marked,
  {CALL_ERROR_SQL} AS is_error
FROM spans c {vjoin}
LEFT JOIN ch ON ch.trace_id = c.trace_id AND ch.parent_span_id = c.span_id
WHERE c.parent_span_id IS NOT NULL AND {OUTBOUND_WHERE})
"""


def attempt_flags_sql(calls: str) -> str:
    """Retry flags of the calls in table ``calls``, per sibling chain, keyed by ``sid``.

    Columns: sid, is_retry (marked, or the previous sibling failed, this call starts after it
    ended (1 ms tolerance, so hedged parallel requests are not retries) and repeats the same
    request: equal ``detail``), gap_ms (start minus the previous sibling's end) and
    prev_max_end (the latest end of the earlier siblings, epoch microseconds). The window
    carries only these narrow columns: it is the costliest step over millions of calls.
    """
    return f"""
SELECT sid, (marked OR (coalesce(prev_error, false) AND start_us >= prev_end - 1000
                        AND detail IS NOT DISTINCT FROM prev_detail)) AS is_retry,
  (start_us - prev_end) / 1000.0 AS gap_ms, prev_max_end
FROM (SELECT sid, marked, start_us, detail, lag(is_error) OVER w AS prev_error, lag(end_us) OVER w AS prev_end,
        lag(detail) OVER w AS prev_detail,
        max(end_us) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_max_end
      FROM {calls} WINDOW w AS (PARTITION BY chain ORDER BY start_us, sid))
"""


_CACHE: dict[int, tuple[tuple, str]] = {}


def calls_table(case: "Case") -> str:
    """Name of a TEMP table holding :func:`calls_sql` joined with :func:`attempt_flags_sql`.

    Built once per connection and reused by every detector while the spans and deploy events
    are unchanged (checked with a count and an order-independent hash of the ids); rebuilt
    otherwise. It lives until the connection closes or :func:`drop_calls_table` is called.
    """
    key = id(case.con)
    fingerprint = tuple(run(case.con, """
SELECT (SELECT count(*) FROM spans), (SELECT sum(hash(trace_id, span_id)) FROM spans),
       (SELECT count(*) FROM events WHERE kind = 'deploy'),
       (SELECT sum(hash(service, version, time)) FROM events WHERE kind = 'deploy')""")[0])
    cached = _CACHE.get(key)
    if cached and cached[0] == fingerprint and scalar(
            case.con, "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [cached[1]]):
        return cached[1]
    drop_calls_table(case)
    name = f"_fx_calls_{os.getpid()}_{next(_counter)}"
    with temp_table(case, calls_sql(case)) as base:
        run(case.con, f"CREATE TEMP TABLE {name} AS SELECT b.*, f.is_retry, f.gap_ms, f.prev_max_end "
                      f"FROM {base} b JOIN ({attempt_flags_sql(base)}) f USING (sid)")
    _CACHE[key] = (fingerprint, name)
    return name


def drop_calls_table(case: "Case") -> None:
    """Drop the cached calls table of ``case``'s connection, if any."""
    cached = _CACHE.pop(id(case.con), None)
    if cached:
        run(case.con, f"DROP TABLE IF EXISTS {cached[1]}")


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
