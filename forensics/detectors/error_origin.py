"""Error origin: where failing traces start to fail, and whether the error is propagated or masked.

In each failing trace (one with any error span), the *origin* is the earliest-starting error
span none of whose children errored: the deepest place the failure is visible. Walking its
ancestors up to the root tells whether the error was *propagated* (every ancestor errors too)
or *masked* (some ancestor returned ok / 2xx despite the failure below it: retried, swallowed
or turned into a default answer). Origins are grouped by (service, operation, message template).

A span counts as errored when its status is ``error`` or its HTTP status code is >= 500.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis._tree import MAX_DEPTH
from ..findings import Findings
from ..semantics import call_target_sql, is_call_sql, is_error_sql, span_operation_sql
from ..semantics.normalize import normalize_text_sql
from ._common import check, clean, near_miss, rows, source_sql, span_key_sql, to_findings
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case


#: span columns an origin reports (operation, target, template, source) besides its ids
_ORIGIN_COLUMNS = ("service", "service_version", "kind", "name", "start_time", "status", "status_message",
                   "http_status_code", "url_template", "http_route", "http_method", "db_statement", "http_url",
                   "rpc_service", "rpc_method", "messaging_destination", "messaging_operation", "peer_service",
                   "server_address", "db_system", "messaging_system", "attributes", "source_file", "source_line",
                   "source_offset")


def origins_sql(max_depth: int = MAX_DEPTH) -> str:
    """SELECT of one origin per failing trace with its propagation.

    Columns: trace_id, span_id, service, operation, kind, version, target (the dependency, for
    client origins), template (normalized status message, else ``HTTP <code>``), start_time,
    source, hops (ancestors walked), masked (an ancestor did not error), masked_by
    ("service operation" of the nearest ancestor that did not error), reached_root.

    The walk up runs over a narrow copy of the failing traces only (8-byte span keys and an
    error flag), so its repeated joins never touch the other spans; the label of the masking
    ancestor is built once per origin at the end.
    """
    cols = ", ".join(f"s.{c}" for c in _ORIGIN_COLUMNS)
    return f"""
WITH RECURSIVE err AS MATERIALIZED (
  SELECT s.trace_id, s.span_id, s.parent_span_id, {cols} FROM spans s WHERE {is_error_sql('s')}
),
leaf AS MATERIALIZED (
  SELECT e.* FROM err e
  WHERE NOT EXISTS (SELECT 1 FROM err c WHERE c.trace_id = e.trace_id AND c.parent_span_id = e.span_id)
),
origin AS MATERIALIZED (
  SELECT o.trace_id, o.span_id, o.parent_span_id, o.service, {span_operation_sql('o')} AS operation,
    o.kind, o.service_version AS version,
    CASE WHEN {is_call_sql('o')} THEN {call_target_sql('o', None)} END AS target,
    coalesce({normalize_text_sql("nullif(o.status_message, '')")}, 'HTTP ' || o.http_status_code::VARCHAR,
             '(no message)') AS template,
    o.start_time, {source_sql('o')} AS source, {span_key_sql('o')} AS sid,
    CASE WHEN o.parent_span_id IS NOT NULL THEN {span_key_sql('o', 'parent_span_id')} END AS psid
  FROM leaf o
  QUALIFY row_number() OVER (PARTITION BY o.trace_id ORDER BY o.start_time NULLS LAST, o.span_id) = 1
),
tree AS MATERIALIZED (
  SELECT {span_key_sql('p')} AS sid,
    CASE WHEN p.parent_span_id IS NOT NULL THEN {span_key_sql('p', 'parent_span_id')} END AS psid,
    NOT {is_error_sql('p')} AS ok
  FROM spans p WHERE p.trace_id IN (SELECT trace_id FROM origin)
),
up(origin_sid, psid, hops, ok, anc) AS (
  SELECT sid, psid, 0, false, CASE WHEN false THEN sid END FROM origin
  UNION ALL
  SELECT up.origin_sid, t.psid, up.hops + 1, t.ok, t.sid
  FROM up JOIN tree t ON t.sid = up.psid
  WHERE up.hops < {int(max_depth)}
),
walk AS (
  SELECT origin_sid, max(hops) AS hops, bool_or(ok) AS masked, arg_min(anc, hops) FILTER (WHERE ok) AS masked_sid,
         bool_or(psid IS NULL) AS reached_root
  FROM up GROUP BY ALL
),
label AS (
  SELECT {span_key_sql('p')} AS sid, any_value(p.service || ' ' || {span_operation_sql('p')}) AS label
  FROM spans p WHERE p.trace_id IN (SELECT trace_id FROM origin)
    AND {span_key_sql('p')} IN (SELECT masked_sid FROM walk)
  GROUP BY 1
)
SELECT o.trace_id, o.span_id, o.service, o.operation, o.kind, o.version, o.target, o.template, o.start_time,
  o.source, w.hops, w.masked, l.label AS masked_by, w.reached_root
FROM origin o JOIN walk w ON w.origin_sid = o.sid LEFT JOIN label l ON l.sid = w.masked_sid
"""


@detector("error_origin")
def detect_error_origin(case: "Case", *, min_traces: int = 1, min_share: float = 0.05,
                        min_traces_medium: int = 3, high_trace_rate: float = 0.05,
                        medium_trace_rate: float = 0.01, explain: bool = False) -> Findings:
    """Where failing traces start failing, and whether the error propagates or is masked.

    Parameters
    ----------
    min_traces:
        Failing traces an origin group needs (count). One is enough: a single downloaded
        trace that failed has an unambiguous origin (Sentry opens an issue on one event).
    min_share:
        Share (0-1) of all failing traces an origin group needs.
    min_traces_medium:
        Failing traces an origin needs before it is rated above low: fewer is anecdotal,
        whatever share of the traffic they are (one trace out of one is 100%).
    high_trace_rate, medium_trace_rate:
        Share (0-1) of all traces failing at the origin for severity high and medium.
    explain:
        Also report near misses (groups failing one threshold).

    Notes
    -----
    Severity follows how much of the traffic fails at this origin: high when its traces are
    >= ``high_trace_rate`` of all traces, medium >= ``medium_trace_rate``, low below, and low
    with fewer than ``min_traces_medium`` traces; ``score`` is that fraction.
    """
    thresholds = {"min_traces": min_traces, "min_share": min_share, "min_traces_medium": min_traces_medium,
                  "high_trace_rate": high_trace_rate, "medium_trace_rate": medium_trace_rate}
    q = f"""
WITH o AS ({origins_sql()}),
tot AS (SELECT (SELECT count(*) FROM o) AS failing, (SELECT count(DISTINCT trace_id) FROM spans) AS traces)
SELECT service, operation, template, any_value(kind) AS kind, mode(version) AS version,
  mode(target) AS target, count(*) AS n, any_value(tot.failing) AS failing, any_value(tot.traces) AS traces,
  count(*) FILTER (WHERE masked) AS masked_n, mode(masked_by) AS masked_by,
  count(*) FILTER (WHERE reached_root AND NOT masked) AS propagated_n,
  min(start_time) AS first, max(start_time) AS last,
  list(trace_id ORDER BY start_time, trace_id)[1:5] AS exemplars,
  arg_min(source, start_time) AS source
FROM o, tot GROUP BY service, operation, template ORDER BY n DESC, service, operation, template
"""
    records = []
    for r in rows(case, q):
        share = r["n"] / r["failing"]
        checks = [check("min_traces", r["n"], min_traces, r["n"] >= min_traces),
                  check("min_share", share, min_share, share >= min_share)]
        failed = [c for c in checks if not c["passed"]]
        if failed and not (explain and len(failed) == 1):
            continue
        rec = _record(r, share, thresholds)
        records.append(near_miss(rec, checks) if failed else rec)
    return to_findings(records)


def _record(r: dict[str, Any], share: float, thresholds: dict[str, Any]) -> dict[str, Any]:
    rate = r["n"] / r["traces"] if r["traces"] else 0.0
    masked_share = r["masked_n"] / r["n"]
    where = f"{r['service']} {r['operation']}" + (f" (calling {r['target']})" if r["target"] else "")
    one = r["n"] == 1
    if masked_share >= 0.5:
        fate = ("it is masked" + ("" if one else f" in {masked_share:.0%} of them")
                + (f" ({r['masked_by']} returns success)" if r["masked_by"] else ""))
    elif one:
        fate = "it propagates to the root" if r["propagated_n"] else "it stops before the root"
    else:
        fate = f"it propagates to the root in {r['propagated_n'] / r['n']:.0%} of them"
    head = ("The failing trace starts" if r["failing"] == 1 else
            f"{r['n']} of {r['failing']} failing traces ({share:.0%}) start")
    summary = f"{head} failing at {where} with \"{r['template']}\"; {fate}."
    evidence = {
        "failing_traces": r["failing"], "traces": r["traces"], "origin_traces": r["n"], "share": share,
        "trace_rate": rate, "template": r["template"], "kind": r["kind"], "masked_traces": r["masked_n"],
        "masked_share": masked_share, "masked_by": r["masked_by"], "propagated_traces": r["propagated_n"],
        "exemplar_trace_ids": r["exemplars"], "source": r["source"], "thresholds": thresholds,
    }
    severity = ("low" if r["n"] < thresholds["min_traces_medium"] else "high" if rate >= thresholds["high_trace_rate"]
                else "medium" if rate >= thresholds["medium_trace_rate"] else "low")
    return {"detector": "error_origin", "severity": severity,
            "title": f"errors originate at {where}", "service": r["service"], "operation": r["operation"],
            "target": r["target"], "target_operation": None, "version": r["version"],
            "start_time": r["first"], "end_time": r["last"], "score": clean(rate),
            "evidence": evidence, "summary": summary}
