"""Helpers shared by the trace detectors: span keys, effective versions, temp tables, severity, near misses, and turning query rows into findings (the outbound
calls are in :mod:`forensics.detectors._calls`).

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
from ..findings import SEVERITIES, Findings

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


# -- span keys --------------------------------------------------------------------------------
def span_key_sql(s: str = "s", column: str = "span_id") -> str:
    """64-bit key ``hash(trace_id, <column>)`` of a span aliased ``s`` (its parent with
    ``column="parent_span_id"``). Joins on it replace joins on two id strings. Engine-specific
    values (DuckDB ``hash``, Spark ``xxhash64``): for equality only, never output."""
    return f"hash({s}.trace_id, {s}.{column})"


def trace_key_sql(s: str = "s") -> str:
    """64-bit key ``hash(trace_id)`` of the trace of a span aliased ``s`` (equality only, as
    :func:`span_key_sql`)."""
    return f"hash({s}.trace_id)"


def fingerprint(case: "Case") -> tuple:
    """Count and order-independent hash of the span ids and deploy events of ``case`` (cached
    results built from them are reused while it holds)."""
    return tuple(run(case.con, """
SELECT (SELECT count(*) FROM spans), (SELECT sum(hash(trace_id, span_id)) FROM spans),
       (SELECT count(*) FROM events WHERE kind = 'deploy'),
       (SELECT sum(hash(service, version, time)) FROM events WHERE kind = 'deploy')""")[0])


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


def cap_severity(severity: str, cap: str | None) -> str:
    """``severity``, lowered to ``cap`` when ``cap`` is less severe (None: no cap)."""
    if cap is None:
        return severity
    return max(severity, cap, key=SEVERITIES.index)


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
