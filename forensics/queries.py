"""Notebook helpers over a case: a trace with its logs, RED metrics from spans, exemplars.

Each function takes a :class:`~forensics.case.Case` and returns a
:class:`~forensics.result.Result`; :class:`~forensics.case.Case` exposes them as methods
(``case.trace(...)``, ``case.red(...)``...). Values travel as bind parameters; column names given
by the caller are checked against the table and quoted.

>>> from datetime import datetime, timezone
>>> import forensics
>>> from forensics.synth.builder import SpanBuilder
>>> b = SpanBuilder(datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc), seed=1)
>>> root = b.span("catalog-service", "GET /search", kind="server", duration_ms=120)
>>> _ = b.span("catalog-service", "GET /items", kind="client", parent=root, start_ms=5, duration_ms=30)
>>> case = forensics.open_case()
>>> b.insert(case)
2
>>> [(r["name"], r["depth"]) for r in trace(case, root.trace_id).dicts()]
[('GET /search', 0), ('GET /items', 1)]
>>> red(case, every="1m").rows()[0][1:4]
('catalog-service', 1, 0.016666666666666666)
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from ._db import quote_ident, run
from .errors import UsageError
from .result import Result
from .semantics import is_error_sql

if TYPE_CHECKING:
    from .case import Case

_HEX = re.compile(r"^[0-9a-f]+$")
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|min|h|d)\s*$")
_UNIT_US = {"us": 1, "µs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "min": 60_000_000,
            "h": 3_600_000_000, "d": 86_400_000_000}
MAX_DEPTH = 1000


def normalize_id(value: str, width: int, what: str = "trace id") -> str:
    """Lowercase hex id left-padded to ``width`` chars, from hex with optional ``0x``, dashes
    (UUID style) or surrounding blanks.

    >>> normalize_id("0xABC", 32)
    '00000000000000000000000000000abc'
    """
    text = str(value).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    text = text.replace("-", "")
    if not text or not _HEX.match(text) or len(text) > width:
        raise UsageError(f"{what} {value!r} is not 1-{width} hex digits")
    return text.rjust(width, "0")


def logs_for_trace(case: "Case", trace_id: str) -> Result:
    """Logs carrying ``trace_id`` (normalized), ordered by time, then file and line."""
    return case.sql("SELECT * FROM logs WHERE trace_id = ? ORDER BY time, source_file, source_line",
                    [normalize_id(trace_id, 32)])


_TRACE_SQL = f"""
WITH RECURSIVE t AS (SELECT * FROM spans WHERE trace_id = $trace),
tree(span_id, depth, path) AS (
  SELECT span_id, 0, [span_id] FROM t
  WHERE parent_span_id IS NULL OR parent_span_id NOT IN (SELECT span_id FROM t)
  UNION ALL
  SELECT c.span_id, tree.depth + 1, list_append(tree.path, c.span_id) FROM t c JOIN tree ON c.parent_span_id = tree.span_id
  WHERE tree.depth < {MAX_DEPTH} AND NOT list_contains(tree.path, c.span_id)
),
depths AS (SELECT span_id, min(depth) AS depth FROM tree GROUP BY span_id),
first_root AS (
  SELECT span_id FROM t JOIN depths USING (span_id) WHERE depth = 0 ORDER BY start_time, span_id LIMIT 1
),
l AS (
  SELECT CASE WHEN span_id IN (SELECT span_id FROM t) THEN span_id ELSE (SELECT span_id FROM first_root) END AS owner,
         time, severity, body, span_id AS log_span_id, service, source_file, source_line
  FROM logs WHERE trace_id = $trace
),
grouped AS (
  SELECT owner, count(*) AS log_count,
         list({{'time': time, 'severity': severity, 'service': service, 'body': body, 'span_id': log_span_id,
                'source_file': source_file, 'source_line': source_line}} ORDER BY time, source_file, source_line) AS logs
  FROM l GROUP BY owner
)
SELECT t.*, d.depth, coalesce(g.log_count, 0) AS log_count, g.logs
FROM t LEFT JOIN depths d USING (span_id) LEFT JOIN grouped g ON g.owner = t.span_id
ORDER BY t.start_time, d.depth NULLS LAST, t.span_id
"""


def trace(case: "Case", trace_id: str) -> Result:
    """The spans of one trace ordered by start, with ``depth`` (0 for roots and for spans whose
    parent is missing; NULL for spans only reachable through a parent cycle), ``log_count`` and
    ``logs`` (the trace's logs with that ``span_id``, as a list ordered by time; logs of the
    trace whose span is not in the case are listed on the first root)."""
    return case.sql(_TRACE_SQL, {"trace": normalize_id(trace_id, 32)})


def parse_every(every: str | int | float) -> int:
    """Bucket width in microseconds from ``"30s"``, ``"1m"``, ``"5m"``, ``"1h"``, ``"500ms"`` or
    a number of seconds.

    >>> parse_every("1m"), parse_every(30)
    (60000000, 30000000)
    """
    if isinstance(every, (int, float)) and not isinstance(every, bool):
        us = int(round(float(every) * 1_000_000))
    else:
        m = _EVERY.match(str(every))
        if not m:
            raise UsageError(f"every={every!r} is not a duration; use e.g. '30s', '1m', '5m', '1h' or seconds as a number")
        us = int(round(float(m.group(1)) * _UNIT_US[m.group(2)]))
    if us <= 0:
        raise UsageError(f"every={every!r} must be longer than zero")
    return us


def _columns(case: "Case", table: str) -> list[str]:
    return [r[0] for r in run(case.con, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = ? ORDER BY ordinal_position", [table])]


def red(case: "Case", by: Sequence[str] | str | None = ("service",), every: str | int | float = "1m",
        start: datetime | str | None = None, end: datetime | str | None = None) -> Result:
    """Rate, errors and duration per time bucket from the spans that serve requests.

    Requests are ``server`` and ``consumer`` spans, and root spans of any kind.

    Parameters
    ----------
    case:
        The case.
    by:
        ``spans`` columns to group by (e.g. ``["service", "name"]``); ``None`` or ``[]`` for one
        series.
    every:
        Bucket width: ``"30s"``, ``"1m"``, ``"5m"``, ``"1h"``... or seconds as a number.
    start, end:
        Only requests starting in ``[start, end)`` (datetime or ISO 8601; naive = UTC).

    Returns
    -------
    Result
        ``time`` (bucket start, UTC), the ``by`` columns, ``requests``, ``rate_per_s``
        (requests per second of bucket), ``errors`` (failed requests: :func:`forensics.semantics.is_error_sql`),
        ``error_rate`` (0..1), ``p50_ms``, ``p95_ms``, ``p99_ms`` (duration percentiles, ms).
    """

    groups = [by] if isinstance(by, str) else list(by or [])
    known = _columns(case, "spans")
    for name in groups:
        if name not in known:
            raise UsageError(f"by={name!r} is not a spans column; choose from: {', '.join(known)}")
    cols = [quote_ident(g) for g in groups]
    us = parse_every(every)
    where = ["(kind IN ('server', 'consumer') OR parent_span_id IS NULL)"]
    params: dict[str, Any] = {"us": us, "seconds": us / 1e6}
    if start is not None:
        where.append("start_time >= CAST($start AS TIMESTAMPTZ)")
        params["start"] = start
    if end is not None:
        where.append("start_time < CAST($end AS TIMESTAMPTZ)")
        params["end"] = end
    select_by = "".join(f", {c}" for c in cols)
    return case.sql(f"""
        SELECT time_bucket(to_microseconds(CAST($us AS BIGINT)), start_time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS time
               {select_by},
               count(*) AS requests, count(*) / $seconds AS rate_per_s,
               count(*) FILTER ({is_error_sql(None)}) AS errors,
               count(*) FILTER ({is_error_sql(None)}) / count(*) AS error_rate,
               quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
               quantile_cont(duration_ms, 0.99) AS p99_ms
        FROM spans WHERE {' AND '.join(where)}
        GROUP BY ALL ORDER BY ALL""", params)


_EXEMPLARS_SQL = f"""
WITH m AS (
  SELECT * FROM metrics
  WHERE exemplar_trace_id IS NOT NULL
    AND name IN ($metric, $metric || '_bucket', $metric || '_sum', $metric || '_count', $metric || '_total')
),
traces AS (
  SELECT trace_id, count(*) AS trace_span_count, min(start_time) AS trace_start,
         date_diff('microsecond', min(start_time), max(end_time)) / 1000.0 AS trace_duration_ms,
         count(*) FILTER ({is_error_sql(None)}) AS trace_error_spans,
         arg_min(service, start_time) FILTER (parent_span_id IS NULL) AS root_service,
         arg_min(name, start_time) FILTER (parent_span_id IS NULL) AS root_name
  FROM spans WHERE trace_id IN (SELECT exemplar_trace_id FROM m) GROUP BY trace_id
)
SELECT m.time, m.name, m.labels, m.value, m.type, m.service, m.exemplar_value, m.exemplar_time,
       m.exemplar_trace_id, m.exemplar_span_id, t.trace_id IS NOT NULL AS trace_found,
       t.trace_span_count, t.trace_start, t.trace_duration_ms, t.trace_error_spans, t.root_service, t.root_name,
       s.service AS span_service, s.name AS span_name, s.duration_ms AS span_duration_ms, s.status AS span_status
FROM m LEFT JOIN traces t ON t.trace_id = m.exemplar_trace_id
LEFT JOIN spans s ON s.trace_id = m.exemplar_trace_id AND s.span_id = m.exemplar_span_id
ORDER BY m.time, m.name, m.source_file, m.source_line
"""


def exemplars(case: "Case", metric: str) -> Result:
    """Samples of ``metric`` (or its ``_bucket``/``_sum``/``_count``/``_total`` series) that carry
    an exemplar, joined to the spans of the exemplar's trace.

    Returns one row per sample: the sample (``time``, ``name``, ``labels``, ``value``...), the
    exemplar (``exemplar_value``, ``exemplar_time``, ``exemplar_trace_id``, ``exemplar_span_id``),
    ``trace_found`` and a summary of the trace (``trace_span_count``, ``trace_start``,
    ``trace_duration_ms``, ``trace_error_spans``, ``root_service``, ``root_name``) and the
    exemplar span (``span_service``, ``span_name``, ``span_duration_ms``, ``span_status``).
    """
    if not isinstance(metric, str) or not metric:
        raise UsageError(f"metric must be a metric name, got {metric!r}")
    return case.sql(_EXEMPLARS_SQL, {"metric": metric})
