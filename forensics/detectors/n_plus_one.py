"""N+1 calls: one parent span calling the same dependency operation many times, one after another.

How it decides, per parent span and dependency operation (target service, normalized operation;
see :mod:`forensics.semantics.operations`):

* ``n_calls >= min_calls`` calls to the same (target, operation) under one parent span;
* mostly sequential: ``overlap_ratio = 1 - union(call intervals) / sum(call durations)`` is at
  most ``max_overlap_ratio`` (0 for strictly one-after-another calls, ``1 - 1/n`` for ``n``
  calls that all run at once; a pool of 4 parallel workers gives about 0.75);
* the calls cost time: their summed duration is at least ``min_total_ms``.

A parent span passing all three is a *hit*. Hits are grouped by (service, parent operation,
target, target operation); per group every version of the service (``service.version``, or
cohorts before/after ``deploy`` events when spans carry no version) is compared: requests,
the per-request call distribution (p50/p90/max, requests without calls count as 0), calls to
the target service of any operation, the time the calls cost, and the parent's p50/p99. One
finding per group, about the version with the most costly hits, compared with the version that
preceded it (first seen, or deployed, earlier).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..semantics import server_operation_key_sql, with_server_operation_sql
from ._common import (add_sources, call_tables, check, clean, deploy_times_sql, fmt_ms, fmt_num, has_spans,
                      near_miss, rows, severity_from_score, span_key_sql, temp_table, to_findings,
                      version_sql, vlabel)
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case

#: score = hit share x median time the repeated calls cost per hit request (ms)
SEVERITY_CUTS = ((500.0, "critical"), (150.0, "high"), (50.0, "medium"))
EXEMPLARS = 5
NEAR_MISS_LIMIT = 50


def _groups_sql(calls: str) -> str:
    """Per sibling chain (caller span, target, operation): count, time, overlap.

    Retries (see :func:`forensics.detectors._common.attempt_flags_sql`) are left out: repeating
    a failed request is a retry storm's business, not an N+1. The busy time (union of the call
    intervals) sums, per call in start order, the part that ends after every earlier call.
    Fixed-width keys only: ``psid`` (the caller span) and ``kid`` (service, version, target,
    operation); ``source_sid`` is the longest call.
    """
    return f"""
SELECT chain, any_value(psid) AS psid, any_value(kid) AS kid, count(*) AS n_calls, sum(duration_ms) AS call_ms,
  CASE WHEN sum(end_us - start_us) > 0
       THEN 1 - sum(greatest(0, end_us - greatest(start_us, coalesce(prev_max_end, start_us))))
                / sum(end_us - start_us)
       ELSE 0 END AS overlap_ratio,
  count(*) FILTER (WHERE is_error) AS n_errors,
  min(start_time) AS first_start, max(end_time) AS last_end,
  arg_max(sid, duration_ms) AS source_sid
FROM {calls} WHERE NOT is_retry
GROUP BY chain
"""


def _with_parents_sql(groups: str, keys: str) -> str:
    """Groups joined with their names (``keys``), their parent span (trace, operation) and a
    hit flag (params: thresholds)."""
    return with_server_operation_sql(f"""
SELECT g.psid, p.trace_id, k.service, k.version, k.target, k.target_operation, g.n_calls, g.call_ms,
  g.overlap_ratio, g.n_errors, g.first_start, g.last_end, g.source_sid, p.name, p.http_route, p.http_method,
  {server_operation_key_sql('p')} AS opkey,
  (g.n_calls >= $min_calls AND g.overlap_ratio <= $max_overlap AND g.call_ms >= $min_total_ms) AS is_hit,
  (g.n_calls >= $min_calls)::INT + (g.overlap_ratio <= $max_overlap)::INT
    + (g.call_ms >= $min_total_ms)::INT AS n_passed
FROM {groups} g JOIN {keys} k ON k.kid = g.kid
JOIN spans p ON {span_key_sql('p')} = g.psid""", "r.*, r.name AS parent_name")


def _version_stats_sql(case: "Case", groups: str, keys: str, pg: str) -> str:
    """Per (service, operation, target, target_operation, version) over every parent request.

    Requests are the spans of the service named like a parent with hits (so a version's
    requests without any call count as 0 calls); names are matched before normalization, which
    keeps the scan cheap.
    """
    vjoin, vexpr = version_sql(case, "p")
    return f"""
WITH hk AS (SELECT DISTINCT service, operation, target, target_operation FROM {pg} WHERE is_hit),
parents AS (
  SELECT * FROM ({with_server_operation_sql(f'''
    SELECT p.trace_id, {span_key_sql('p')} AS psid, p.service, {vexpr} AS version, p.duration_ms, p.start_time,
           p.name, p.http_route, p.http_method, {server_operation_key_sql('p')} AS opkey
    FROM (SELECT * FROM spans p0 SEMI JOIN (SELECT DISTINCT service, parent_name FROM {pg} WHERE is_hit) h
            ON h.service = p0.service AND h.parent_name = p0.name) p {vjoin}''',
    'r.trace_id, r.psid, r.service, r.version, r.duration_ms, r.start_time')})
  WHERE operation IN (SELECT operation FROM hk)),
tgt AS (SELECT g.psid, k.target, sum(g.n_calls)::BIGINT AS n_target
        FROM {groups} g JOIN {keys} k ON k.kid = g.kid
        WHERE g.psid IN (SELECT psid FROM parents) GROUP BY ALL),
per_req AS (
  SELECT p.*, k.target, k.target_operation, coalesce(g.n_calls, 0) AS n_calls,
         coalesce(g.call_ms, 0) AS call_ms, coalesce(g.is_hit, false) AS is_hit, g.overlap_ratio,
         g.source_sid, g.first_start, g.last_end, coalesce(t.n_target, 0) AS n_target
  FROM parents p JOIN hk k ON k.service = p.service AND k.operation = p.operation
  LEFT JOIN {pg} g ON g.psid = p.psid AND g.target = k.target AND g.target_operation = k.target_operation
  LEFT JOIN tgt t ON t.psid = p.psid AND t.target = k.target)
SELECT r.service, r.operation, r.target, r.target_operation, r.version,
  count(*) AS requests, count(*) FILTER (WHERE is_hit) AS hit_requests,
  avg(n_calls) AS calls_mean, quantile_disc(n_calls, 0.5) AS calls_p50,
  quantile_disc(n_calls, 0.9) AS calls_p90, max(n_calls) AS calls_max,
  quantile_disc(n_target, 0.5) AS target_calls_p50, avg(n_target) AS target_calls_mean,
  quantile_disc(n_calls, 0.5) FILTER (WHERE is_hit) AS hit_calls_p50,
  quantile_cont(call_ms, 0.5) FILTER (WHERE is_hit) AS hit_call_ms_p50,
  quantile_cont(call_ms, 0.99) FILTER (WHERE is_hit) AS hit_call_ms_p99,
  quantile_cont(overlap_ratio, 0.5) FILTER (WHERE is_hit) AS hit_overlap_p50,
  quantile_cont(duration_ms, 0.5) AS parent_p50_ms, quantile_cont(duration_ms, 0.99) AS parent_p99_ms,
  min(start_time) AS first_seen, min(first_start) FILTER (WHERE is_hit) AS hit_start,
  max(last_end) FILTER (WHERE is_hit) AS hit_end,
  max_by(trace_id, (n_calls * 1e9 + call_ms, trace_id), {EXEMPLARS}) FILTER (WHERE is_hit) AS exemplars,
  max_by(source_sid, (n_calls * 1e9 + call_ms, trace_id)) FILTER (WHERE is_hit) AS source_sid,
  any_value(d.deployed_at) AS deployed_at
FROM per_req r LEFT JOIN ({deploy_times_sql()}) d ON d.service = r.service AND d.version = r.version
GROUP BY ALL
"""


def _near_miss_sql(pg: str) -> str:
    """Per group without hits: the candidate closest to passing (most thresholds passed)."""
    return f"""
SELECT service, operation, target, target_operation,
  arg_max(n_calls, (n_passed * 1e9 + n_calls, trace_id)) AS n_calls,
  arg_max(overlap_ratio, (n_passed * 1e9 + n_calls, trace_id)) AS overlap_ratio,
  arg_max(call_ms, (n_passed * 1e9 + n_calls, trace_id)) AS call_ms,
  arg_max(trace_id, (n_passed * 1e9 + n_calls, trace_id)) AS trace_id,
  arg_max(source_sid, (n_passed * 1e9 + n_calls, trace_id)) AS source_sid,
  arg_max(version, (n_passed * 1e9 + n_calls, trace_id)) AS version,
  arg_max(first_start, (n_passed * 1e9 + n_calls, trace_id)) AS first_start,
  arg_max(last_end, (n_passed * 1e9 + n_calls, trace_id)) AS last_end,
  max(n_passed) AS n_passed, count(*) AS candidates
FROM {pg} WHERE n_calls >= 2
GROUP BY ALL HAVING NOT bool_or(is_hit) AND max(n_passed) >= 2
ORDER BY n_passed DESC, n_calls DESC LIMIT {NEAR_MISS_LIMIT}
"""


@detector("n_plus_one")
def detect_n_plus_one(case: "Case", *, min_calls: int = 5, max_overlap_ratio: float = 0.25,
                      min_total_ms: float = 50.0, explain: bool = False) -> Findings:
    """N+1 calls: a parent span calling the same dependency operation many times in sequence.

    Parameters
    ----------
    case:
        The case whose ``spans`` are searched.
    min_calls:
        Minimum calls to the same (target, normalized operation) under one parent span.
    max_overlap_ratio:
        Maximum ``1 - union(call intervals) / sum(call durations)`` (0 = strictly sequential,
        ``1 - 1/n`` = all ``n`` calls at once); parallel fan-out above it is not an N+1.
    min_total_ms:
        Minimum summed duration of the repeated calls in one parent span, in milliseconds.
    explain:
        Also return near misses: groups of repeated calls that failed exactly one threshold.

    Returns
    -------
    Findings
        One finding per (service, parent operation, target, target operation) with hits.
    """
    if not has_spans(case):
        return Findings.empty()
    thresholds = {"min_calls": min_calls, "max_overlap_ratio": max_overlap_ratio, "min_total_ms": min_total_ms}
    params = {"min_calls": min_calls, "max_overlap": max_overlap_ratio, "min_total_ms": min_total_ms}
    calls, keys = call_tables(case)
    with temp_table(case, _groups_sql(calls)) as groups, \
            temp_table(case, _with_parents_sql(groups, keys), params) as pg:
        stats = add_sources(case, rows(case, _version_stats_sql(case, groups, keys, pg)))
        misses = add_sources(case, rows(case, _near_miss_sql(pg))) if explain else []
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for r in stats:
        by_key.setdefault((r["service"], r["operation"], r["target"], r["target_operation"]), []).append(r)
    records = [_finding(versions, thresholds) for versions in by_key.values()]
    records += [_near_miss(m, thresholds) for m in misses]
    return to_findings([r for r in records if r])


def _order(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Versions ordered by deploy time when known, else first seen."""
    return sorted(versions, key=lambda v: (v["deployed_at"] or v["first_seen"], str(v["version"])))


def _finding(versions: list[dict[str, Any]], thresholds: dict[str, Any]) -> dict[str, Any] | None:
    ordered = _order(versions)

    def cost(v: dict[str, Any]) -> float:
        return (v["hit_requests"] / v["requests"]) * (v["hit_call_ms_p50"] or 0.0) if v["requests"] else 0.0

    hit_versions = [v for v in ordered if v["hit_requests"]]
    if not hit_versions:
        return None
    worst = max(hit_versions, key=cost)
    idx = ordered.index(worst)
    base = ordered[idx - 1] if idx > 0 else None
    share = worst["hit_requests"] / worst["requests"]
    score = cost(worst)
    severity = severity_from_score(score, SEVERITY_CUTS)
    regressed = bool(base and share >= 0.5 and worst["calls_mean"] >= 5 * max(base["calls_mean"], 1.0))
    if regressed and severity in ("medium", "low"):
        severity = "high"
    svc, op, target, top, ver = worst["service"], worst["operation"], worst["target"], worst["target_operation"], worst["version"]
    who = f"{svc} {vlabel(ver)}" if ver else svc
    share_txt = "" if share >= 0.95 else f" in {share:.0%} of requests"
    text = (f"{who} makes ~{fmt_num(worst['hit_calls_p50'])} sequential {top} calls to {target} "
            f"per {op} request{share_txt}")
    if base is not None:
        n = base["target_calls_p50"]
        made = "none" if not n else f"{fmt_num(n)} call" + ("" if n == 1 else "s")
        text += f" ({vlabel(base['version'])} made {made} to {target})"
        delta = (worst["parent_p99_ms"] or 0) - (base["parent_p99_ms"] or 0)
        text += f", adding ~{fmt_ms(delta)} p99." if delta > 0 else f", costing ~{fmt_ms(worst['hit_call_ms_p50'])} per request."
    else:
        text += f", costing ~{fmt_ms(worst['hit_call_ms_p50'])} per request."
    evidence = {
        "exemplar_trace_ids": list(worst["exemplars"] or []),
        "source": worst["source"],
        "requests": worst["requests"], "hit_requests": worst["hit_requests"], "hit_share": share,
        "calls_per_request": {"p50": worst["calls_p50"], "p90": worst["calls_p90"], "max": worst["calls_max"],
                              "mean": worst["calls_mean"], "p50_in_hits": worst["hit_calls_p50"]},
        "call_time_ms_per_hit": {"p50": worst["hit_call_ms_p50"], "p99": worst["hit_call_ms_p99"]},
        "overlap_ratio_p50": worst["hit_overlap_p50"],
        "parent_latency_ms": {"p50": worst["parent_p50_ms"], "p99": worst["parent_p99_ms"]},
        "baseline_version": base["version"] if base else None,
        "by_version": [_version_evidence(v) for v in ordered],
        "thresholds": thresholds,
    }
    return {
        "detector": "n_plus_one", "severity": severity,
        "title": f"N+1: {svc} {op} calls {target} {top} ~{fmt_num(worst['hit_calls_p50'])}x per request",
        "service": svc, "operation": op, "target": target, "target_operation": top, "version": ver,
        "start_time": worst["hit_start"], "end_time": worst["hit_end"], "score": float(score),
        "evidence": evidence, "summary": text,
    }


def _version_evidence(v: dict[str, Any]) -> dict[str, Any]:
    keys = ("version", "requests", "hit_requests", "calls_mean", "calls_p50", "calls_p90", "calls_max",
            "target_calls_p50", "target_calls_mean", "hit_call_ms_p50", "parent_p50_ms", "parent_p99_ms",
            "first_seen", "deployed_at")
    return {k: clean(v[k]) for k in keys}


def _near_miss(m: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    checks = [
        check("min_calls", m["n_calls"], thresholds["min_calls"], m["n_calls"] >= thresholds["min_calls"]),
        check("max_overlap_ratio", round(m["overlap_ratio"], 3), thresholds["max_overlap_ratio"],
              m["overlap_ratio"] <= thresholds["max_overlap_ratio"]),
        check("min_total_ms", round(m["call_ms"], 1), thresholds["min_total_ms"], m["call_ms"] >= thresholds["min_total_ms"]),
    ]
    record = {
        "detector": "n_plus_one",
        "title": f"{m['service']} {m['operation']} calls {m['target']} {m['target_operation']} {m['n_calls']}x",
        "service": m["service"], "operation": m["operation"], "target": m["target"],
        "target_operation": m["target_operation"], "version": m["version"],
        "start_time": m["first_start"], "end_time": m["last_end"], "score": 0.0,
        "evidence": {"exemplar_trace_ids": [m["trace_id"]], "source": m["source"], "candidates": m["candidates"],
                     "thresholds": thresholds},
        "summary": (f"{m['service']} {m['operation']} calls {m['target_operation']} on {m['target']} "
                    f"{m['n_calls']} times in one request ({fmt_ms(m['call_ms'])} in total)."),
    }
    return near_miss(record, checks)
