"""N+1 calls: one parent span calling the same dependency operation many times, in a loop or
in a parallel fan-out.

How it decides, per parent span and dependency operation (target, normalized operation; the
calls, with double instrumentation collapsed and retries left out, come from
:mod:`forensics.detectors._calls`):

* ``n_calls >= min_calls`` calls to the same (target, operation) under one parent span;
* their summed duration is at least ``min_total_ms`` (0 by default: what the calls cost decides
  the severity, not whether a loop is shown; 20 identical statements per request against a local
  sqlite cost a few milliseconds today and grow with the data);
* they have one of two shapes:

  - **sequential** (a loop): ``overlap_ratio = 1 - union(call intervals) / sum(call
    durations)`` is at most ``max_overlap_ratio`` (0 for strictly one-after-another calls,
    ``1 - 1/n`` for ``n`` calls that all run at once; a pool of 4 parallel workers gives about
    0.75). The request waits for the sum of their latencies;
  - **parallel** (a fan-out, Sentry's "N+1 API Calls"): at least ``min_parallel_calls`` calls in
    flight at once (peak concurrency). It multiplies the load on the dependency and the request
    waits for the slowest call.

A parent span passing all three is a *hit*. Hits are grouped by (service, parent operation,
target, target operation); per group every version of the service (``service.version``, or
cohorts before/after ``deploy`` events when spans carry no version) is compared: requests,
the per-request call distribution (p50/p90/max, requests without calls count as 0), calls to
the target service of any operation, the time the calls cost (the sum for a loop, the union for
a fan-out), and the parent's p50/p99. One finding per group, about the version with the most
costly hits, compared with the version that preceded it (first seen, or deployed, earlier).

Severity comes from the share of requests with hits times the time they cost
(:data:`SEVERITY_CUTS`), raised to high for a regression against the previous version, and
capped by the evidence: one request with hits is at most medium (a single downloaded trace is
worth a look, not a page), fewer than ``min_requests_for_critical`` at most high.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..semantics import server_operation_key_sql, with_server_operation_sql
from ._calls import call_tables, callers_sql
from ._common import (add_sources, cap_severity, check, clean, deploy_times_sql, fmt_ms, fmt_num, has_spans,
                      near_miss, rows, severity_from_score, span_key_sql, temp_table, to_findings, version_sql,
                      vlabel)
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case

#: score = hit share x median time the repeated calls cost per hit request (ms: the sum of their
#: durations for a loop, the union of their intervals for a fan-out)
SEVERITY_CUTS = ((500.0, "critical"), (150.0, "high"), (50.0, "medium"))
#: the severity a finding may reach with a given number of requests with hits (below the
#: detector's ``min_requests_for_critical``): one request, at most medium; more, at most high
_ONE_REQUEST_CAP, _FEW_REQUESTS_CAP = "medium", "high"
EXEMPLARS = 5
NEAR_MISS_LIMIT = 50


def _groups_sql(calls: str) -> str:
    """Per sibling chain (caller span, target, operation): count, time, overlap.

    Retries (see :func:`forensics.detectors._calls.attempt_flags_sql`) are left out: repeating
    a failed request is a retry storm's business, not an N+1. The busy time (``busy_ms``, union
    of the call intervals) sums, per call in start order, the part that ends after every earlier
    call. Fixed-width keys only: ``psid`` (the caller span) and ``kid`` (service, version,
    target, operation); ``source_sid`` is the longest call.
    """
    return f"""
SELECT chain, any_value(psid) AS psid, any_value(kid) AS kid, count(*) AS n_calls, sum(duration_ms) AS call_ms,
  CAST(sum(greatest(0, end_us - greatest(start_us, coalesce(prev_max_end, start_us)))) AS DOUBLE) / 1000 AS busy_ms,
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


def _concurrency_sql(calls: str, groups: str) -> str:
    """Per chain of at least two calls that overlap more than a loop may (param: max_overlap):
    ``peak`` (most calls in flight at once: a running sum over start (+1) and end (-1) events,
    an end before a start at the same instant) and ``start_gap_ms`` (median gap between
    consecutive starts: how close together the fan-out starts)."""
    return f"""
WITH cand AS (SELECT chain FROM {groups} WHERE n_calls >= 2 AND overlap_ratio > $max_overlap),
c AS (SELECT c.chain, c.start_us, c.end_us FROM {calls} c JOIN cand USING (chain) WHERE NOT c.is_retry),
ev AS (SELECT chain, start_us AS t, 1 AS d FROM c UNION ALL SELECT chain, end_us AS t, -1 AS d FROM c),
peak AS (SELECT chain, CAST(max(running) AS BIGINT) AS peak FROM (
           SELECT chain, sum(d) OVER (PARTITION BY chain ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS running FROM ev)
         GROUP BY chain),
gap AS (SELECT chain, CAST(median(start_us - prev_start) AS DOUBLE) / 1000 AS start_gap_ms FROM (
          SELECT chain, start_us, lag(start_us) OVER (PARTITION BY chain ORDER BY start_us) AS prev_start FROM c)
        WHERE prev_start IS NOT NULL GROUP BY chain)
SELECT peak.chain, peak.peak, gap.start_gap_ms FROM peak LEFT JOIN gap USING (chain)"""


def _with_parents_sql(groups: str, keys: str, conc: str) -> str:
    """Groups joined with their names (``keys``), their concurrency (``conc``), their parent
    span (trace, operation), their shape (``sequential``, ``parallel`` or NULL), the time they
    cost (``cost_ms``: the sum for a loop, the union for a fan-out) and a hit flag (params:
    thresholds)."""
    shape = ("CASE WHEN g.overlap_ratio <= $max_overlap THEN 'sequential' "
             "WHEN coalesce(x.peak, 1) >= $min_parallel THEN 'parallel' END")
    return with_server_operation_sql(f"""
SELECT g.psid, p.trace_id, k.service, k.version, k.target, k.target_operation, g.n_calls, g.call_ms, g.busy_ms,
  g.overlap_ratio, coalesce(x.peak, 1) AS peak, x.start_gap_ms, {shape} AS shape,
  CASE WHEN {shape} = 'parallel' THEN g.busy_ms ELSE g.call_ms END AS cost_ms,
  g.n_errors, g.first_start, g.last_end, g.source_sid, p.name, p.http_route, p.http_method,
  {server_operation_key_sql('p')} AS opkey,
  (g.n_calls >= $min_calls AND {shape} IS NOT NULL AND g.call_ms >= $min_total_ms) AS is_hit,
  (g.n_calls >= $min_calls)::INT + ({shape} IS NOT NULL)::INT + (g.call_ms >= $min_total_ms)::INT AS n_passed
FROM {groups} g JOIN {keys} k ON k.kid = g.kid LEFT JOIN {conc} x ON x.chain = g.chain
JOIN ({callers_sql(groups)}) p ON p.psid = g.psid""", "r.*, r.name AS parent_name")


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
         coalesce(g.call_ms, 0) AS call_ms, coalesce(g.cost_ms, 0) AS cost_ms,
         coalesce(g.is_hit, false) AS is_hit, g.overlap_ratio, g.shape, g.peak, g.start_gap_ms, g.busy_ms,
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
  quantile_cont(cost_ms, 0.5) FILTER (WHERE is_hit) AS hit_cost_ms_p50,
  quantile_cont(busy_ms, 0.5) FILTER (WHERE is_hit) AS hit_busy_ms_p50,
  quantile_cont(overlap_ratio, 0.5) FILTER (WHERE is_hit) AS hit_overlap_p50,
  count(*) FILTER (WHERE is_hit AND shape = 'parallel') AS parallel_hits,
  quantile_disc(peak, 0.5) FILTER (WHERE is_hit) AS hit_peak_p50,
  quantile_cont(start_gap_ms, 0.5) FILTER (WHERE is_hit AND shape = 'parallel') AS hit_start_gap_ms_p50,
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
  arg_max(peak, (n_passed * 1e9 + n_calls, trace_id)) AS peak,
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
                      min_parallel_calls: int = 5, min_total_ms: float = 0.0, min_requests_for_critical: int = 3,
                      explain: bool = False) -> Findings:
    """N+1 calls: a parent span calling the same dependency operation many times, in a loop or a parallel fan-out.

    Parameters
    ----------
    case:
        The case whose ``spans`` are searched.
    min_calls:
        Minimum calls to the same (target, normalized operation) under one parent span
        (Sentry's N+1 DB Queries detector: five).
    max_overlap_ratio:
        A loop: at most this ``1 - union(call intervals) / sum(call durations)`` (0 = strictly
        sequential, ``1 - 1/n`` = all ``n`` calls at once; 0.25 lets a quarter of the call time
        overlap, e.g. an async client starting the next call just before the last one ends).
    min_parallel_calls:
        A fan-out: at least this many calls in flight at once (the issue's and Sentry's N+1 API
        Calls' "five or more concurrent calls to one endpoint").
    min_total_ms:
        Minimum summed duration of the repeated calls in one parent span, in milliseconds (0: any;
        Sentry's N+1 DB Queries detector asks for 100). Cheap loops score low anyway.
    min_requests_for_critical:
        Requests with hits needed for a critical finding; with fewer a finding is at most high,
        and with one at most medium.
    explain:
        Also return near misses: groups of repeated calls that failed one threshold.

    Returns
    -------
    Findings
        One finding per (service, parent operation, target, target operation) with hits;
        ``evidence.shape`` says ``sequential`` or ``parallel``.
    """
    if not has_spans(case):
        return Findings.empty()
    thresholds = {"min_calls": min_calls, "max_overlap_ratio": max_overlap_ratio,
                  "min_parallel_calls": min_parallel_calls, "min_total_ms": min_total_ms,
                  "min_requests_for_critical": min_requests_for_critical}
    params = {"min_calls": min_calls, "max_overlap": max_overlap_ratio, "min_parallel": min_parallel_calls,
              "min_total_ms": min_total_ms}
    calls, keys = call_tables(case)
    with temp_table(case, _groups_sql(calls)) as groups, \
            temp_table(case, _concurrency_sql(calls, groups), {"max_overlap": max_overlap_ratio}) as conc, \
            temp_table(case, _with_parents_sql(groups, keys, conc), params) as pg:
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


def _cost(v: dict[str, Any]) -> float:
    """Hit share x median time the repeated calls cost per hit request (ms)."""
    return (v["hit_requests"] / v["requests"]) * (v["hit_cost_ms_p50"] or 0.0) if v["requests"] else 0.0


def _severity(score: float, regressed: bool, hit_requests: int, min_requests_for_critical: int) -> str:
    """Severity from the score, raised to high for a regression, capped by the evidence."""
    severity = severity_from_score(score, SEVERITY_CUTS)
    if regressed and severity in ("medium", "low"):
        severity = "high"
    cap = (_ONE_REQUEST_CAP if hit_requests <= 1 else _FEW_REQUESTS_CAP
           if hit_requests < min_requests_for_critical else None)
    return cap_severity(severity, cap)


def _finding(versions: list[dict[str, Any]], thresholds: dict[str, Any]) -> dict[str, Any] | None:
    ordered = _order(versions)
    hit_versions = [v for v in ordered if v["hit_requests"]]
    if not hit_versions:
        return None
    worst = max(hit_versions, key=_cost)
    idx = ordered.index(worst)
    base = ordered[idx - 1] if idx > 0 else None
    share = worst["hit_requests"] / worst["requests"]
    score = _cost(worst)
    regressed = bool(base and share >= 0.5 and worst["calls_mean"] >= 5 * max(base["calls_mean"], 1.0))
    severity = _severity(score, regressed, worst["hit_requests"], thresholds["min_requests_for_critical"])
    parallel = worst["parallel_hits"] * 2 > worst["hit_requests"]
    svc, op, target, top, ver = worst["service"], worst["operation"], worst["target"], worst["target_operation"], worst["version"]
    evidence = {
        "shape": "parallel" if parallel else "sequential",
        "exemplar_trace_ids": list(worst["exemplars"] or []),
        "source": worst["source"],
        "requests": worst["requests"], "hit_requests": worst["hit_requests"], "hit_share": share,
        "parallel_hit_requests": worst["parallel_hits"],
        "calls_per_request": {"p50": worst["calls_p50"], "p90": worst["calls_p90"], "max": worst["calls_max"],
                              "mean": worst["calls_mean"], "p50_in_hits": worst["hit_calls_p50"]},
        "call_time_ms_per_hit": {"p50": worst["hit_call_ms_p50"], "p99": worst["hit_call_ms_p99"]},
        "wait_ms_per_hit_p50": worst["hit_cost_ms_p50"],
        "overlap_ratio_p50": worst["hit_overlap_p50"],
        "peak_concurrency_p50": worst["hit_peak_p50"],
        "start_gap_ms_p50": worst["hit_start_gap_ms_p50"],
        "parent_latency_ms": {"p50": worst["parent_p50_ms"], "p99": worst["parent_p99_ms"]},
        "baseline_version": base["version"] if base else None,
        "by_version": [_version_evidence(v) for v in ordered],
        "thresholds": thresholds,
    }
    shape = "parallel" if parallel else "sequential"
    return {
        "detector": "n_plus_one", "severity": severity,
        "title": f"N+1 ({shape}): {svc} {op} calls {target} {top} ~{fmt_num(worst['hit_calls_p50'])}x per request",
        "service": svc, "operation": op, "target": target, "target_operation": top, "version": ver,
        "start_time": worst["hit_start"], "end_time": worst["hit_end"], "score": float(score),
        "evidence": evidence, "summary": _summary(worst, base, share, parallel),
    }


def _summary(worst: dict[str, Any], base: dict[str, Any] | None, share: float, parallel: bool) -> str:
    svc, op, target, top, ver = worst["service"], worst["operation"], worst["target"], worst["target_operation"], worst["version"]
    who = f"{svc} {vlabel(ver)}" if ver else svc
    share_txt = "" if share >= 0.95 else f" in {share:.0%} of requests"
    n = fmt_num(worst["hit_calls_p50"])
    if parallel:
        text = (f"{who} fans out ~{n} parallel {top} calls to {target} per {op} request{share_txt} "
                f"(up to {fmt_num(worst['hit_peak_p50'])} at once)")
    else:
        text = f"{who} makes ~{n} sequential {top} calls to {target} per {op} request{share_txt}"
    if base is not None:
        m = base["target_calls_p50"]
        made = "none" if not m else f"{fmt_num(m)} call" + ("" if m == 1 else "s")
        text += f" ({vlabel(base['version'])} made {made} to {target})"
        delta = (worst["parent_p99_ms"] or 0) - (base["parent_p99_ms"] or 0)
        if delta > 0:
            return text + f", adding ~{fmt_ms(delta)} p99."
    if parallel:
        return (text + f": {n}x the load on {target}, and each request waits for the slowest call "
                f"(~{fmt_ms(worst['hit_cost_ms_p50'])}).")
    return text + f", costing ~{fmt_ms(worst['hit_cost_ms_p50'])} per request."


def _version_evidence(v: dict[str, Any]) -> dict[str, Any]:
    keys = ("version", "requests", "hit_requests", "parallel_hits", "calls_mean", "calls_p50", "calls_p90", "calls_max",
            "target_calls_p50", "target_calls_mean", "hit_call_ms_p50", "hit_cost_ms_p50", "parent_p50_ms",
            "parent_p99_ms", "first_seen", "deployed_at")
    return {k: clean(v[k]) for k in keys}


def _near_miss(m: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    sequential = m["overlap_ratio"] <= thresholds["max_overlap_ratio"]
    parallel = (m["peak"] or 1) >= thresholds["min_parallel_calls"]
    checks = [
        check("min_calls", m["n_calls"], thresholds["min_calls"], m["n_calls"] >= thresholds["min_calls"]),
        check("max_overlap_ratio", round(m["overlap_ratio"], 3), thresholds["max_overlap_ratio"],
              sequential or parallel),
        check("min_parallel_calls", m["peak"], thresholds["min_parallel_calls"], sequential or parallel),
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
                    f"{m['n_calls']} times in one request ({fmt_ms(m['call_ms'])} in total"
                    + ("" if sequential or parallel else f", partly in parallel: up to {fmt_num(m['peak'])} at once")
                    + ")."),
    }
    return near_miss(record, checks)
