"""Retry storms: calls repeated after failures, and outbound traffic amplified beyond inbound.

Two views, joined per (service, target, target operation):

**Retries in traces.** Sibling calls from one caller span to the same (target, normalized
operation); which call is a retry is decided by
:func:`forensics.detectors._calls.attempt_flags_sql` (a retry attribute, or the same request
repeated after a failed sibling). A client span with more than one server span of the callee
under it holds retries too: the client library retried inside the call (urllib3's ``Retry``
behind one ``requests`` span; :func:`forensics.detectors._calls.call_rows_sql`), each server
span one attempt. Per caller operation, inside its retry window (first to last ``bucket_s``
bucket whose retry share reaches ``min_retry_share``; all data when none does): requests with
retries, attempts per retried request (p50/p90/max), the share of attempts that failed, the
median gap between a failure and its retry (``no backoff`` below ``min_backoff_ms``) and how
gaps grow from one retry to the next (≈2 = exponential backoff). Flagged when retries are at
least ``min_retry_share`` of the calls. Severity: critical when retries are half the calls with
p90 ≥ 3 attempts, or without backoff and amplified 3x or more; high when a third, or without
backoff with p90 ≥ 3 attempts; else medium. Fewer than ``min_retried_requests`` requests with
retries (one downloaded trace, a short incident) is less evidence: at most medium when the few
retried requests look like a storm (p50 ≥ 3 attempts, half of them failed), else low.

**Amplification.** Per ``bucket_s`` bucket: calls from the service to the (target, operation)
divided by inbound (server/consumer) requests of the service. Baseline = median of that ratio
over buckets with at least ``min_inbound`` requests. A bucket is amplified when its ratio is at
least ``min_amplification`` x baseline while inbound stays flat (within ``1/inbound_tolerance``
and ``inbound_tolerance`` x its median) and it carries at least ``min_extra_calls`` calls
more than the baseline ratio predicts. Flagged with at least ``min_amplified_buckets`` such
buckets (medium; high from 3x). Amplification that matches no retry in the traces must carry
failures (``min_amplified_error_share``), or it is a fan-out change rather than a storm. With
``explain``, one info record lists the dependency operations whose amplification could not be
judged for too little data (fewer than three buckets with ``min_inbound`` inbound requests: a
single trace, a capture of a minute), and near misses show amplified buckets fewer than
``min_amplified_buckets``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..findings import Findings
from ..semantics import server_operation_key_sql, with_server_operation_sql
from ._calls import call_tables, callers_sql
from ._common import (add_sources, cap_severity, check, fmt_ms, fmt_num, has_spans, near_miss, rows, source_sql,
                      span_key_sql, temp_table, to_findings, trace_key_sql)
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case

EXEMPLARS = 5
#: attempts per retried request (p50) and failed share of them that make a few retried requests
#: look like a storm in miniature (the least a medium finding with little evidence needs)
SMALL_STORM_ATTEMPTS, SMALL_STORM_ERROR_SHARE = 3, 0.5
#: buckets with enough inbound requests a baseline of calls per inbound request needs
MIN_BASELINE_BUCKETS = 3


def _attempts_sql(calls: str, keys: str) -> str:
    """Per sibling chain (caller span, target, operation): attempts (a call with retries inside
    counts each server span under it), retries, failures, gaps, and how each retry's gap
    compares with the previous retry's (backoff growth), with the chain's names (``keys``).
    Gaps are taken over the retries only (few rows)."""
    return f"""
WITH a AS (
  SELECT chain, any_value(psid) AS psid, any_value(kid) AS kid, CAST(sum(attempts) AS BIGINT) AS attempts,
    CAST(count(*) FILTER (WHERE is_retry) + sum(attempts - 1) AS BIGINT) AS retries,
    CAST(sum(failed_attempts) AS BIGINT) AS errors,
    bool_or(marked) AS marked, bool_or(attempts > 1) AS inside, min(start_time) AS first_start,
    max(end_time) AS last_end, arg_max(sid, (is_retry OR attempts > 1)::INT * 1e12 + start_us) AS source_sid
  FROM {calls} GROUP BY chain),
gaps AS (
  SELECT chain, median(greatest(gap_ms, 0)) AS gap_ms,
    median(gap_ms / prev_gap_ms) FILTER (WHERE prev_gap_ms > 0 AND gap_ms > 0) AS growth
  FROM (SELECT chain, gap_ms, lag(gap_ms) OVER (PARTITION BY chain ORDER BY start_us) AS prev_gap_ms
        FROM {calls} WHERE is_retry
        UNION ALL SELECT chain, inner_gap_ms, NULL FROM {calls} WHERE attempts > 1)
  GROUP BY chain)
SELECT a.psid, k.target, k.target_operation, k.service, k.version, a.attempts, a.retries, a.errors, a.marked,
  a.inside, g.gap_ms, g.growth, a.first_start, a.last_end, a.source_sid
FROM a JOIN {keys} k ON k.kid = a.kid LEFT JOIN gaps g ON g.chain = a.chain
"""


def _chains_with_callers_sql(chains: str) -> str:
    """Chains joined with their caller span (trace, operation), bucketed by start (param: bucket_s)."""
    return with_server_operation_sql(f"""
SELECT g.*, p.trace_id, p.name, p.http_route, p.http_method, {server_operation_key_sql('p')} AS opkey,
  time_bucket(to_seconds($bucket_s::DOUBLE), g.first_start) AS bucket
FROM {chains} g JOIN ({callers_sql(chains)}) p ON p.psid = g.psid""")


def _retry_keys_sql(cc: str) -> str:
    """Per (service, caller operation, target, target operation) with retries, over its retry window.

    The window runs from the first to the last bucket whose retry share reaches ``$min_share``
    (all data when no bucket does); every statistic is taken inside it, so a storm of twenty
    minutes is not diluted by a quiet day, and scattered single retries do not make one.
    The version is the one most retried requests ran (the greatest among ties).
    """
    key = "service, operation, target, target_operation"
    return f"""
WITH kb AS (
  SELECT {key}, bucket, sum(retries) / sum(attempts) AS share FROM {cc} GROUP BY ALL),
w AS (
  SELECT {key}, min(bucket) FILTER (WHERE share >= $min_share) AS ws,
    max(bucket) FILTER (WHERE share >= $min_share) AS we
  FROM kb GROUP BY ALL HAVING max(share) > 0),
g AS (
  SELECT g.*, w.ws, w.we FROM {cc} g JOIN w USING ({key}) WHERE w.ws IS NULL OR g.bucket BETWEEN w.ws AND w.we),
vm AS (
  SELECT {key}, arg_max(version, (n, version)) AS version FROM (
    SELECT {key}, version, count(*) AS n FROM g WHERE retries > 0 AND version IS NOT NULL GROUP BY ALL)
  GROUP BY ALL)
SELECT g.service, g.operation, g.target, g.target_operation, any_value(g.ws) AS window_start,
  any_value(g.we) + to_seconds($bucket_s::DOUBLE) AS window_end,
  count(*) AS requests, count(*) FILTER (WHERE g.retries > 0) AS retried_requests,
  sum(g.attempts)::BIGINT AS calls, sum(g.retries)::BIGINT AS retries,
  (sum(g.errors) FILTER (WHERE g.retries > 0) / sum(g.attempts) FILTER (WHERE g.retries > 0))::DOUBLE AS error_share,
  quantile_disc(g.attempts, 0.5) FILTER (WHERE g.retries > 0) AS attempts_p50,
  quantile_disc(g.attempts, 0.9) FILTER (WHERE g.retries > 0) AS attempts_p90,
  max(g.attempts) FILTER (WHERE g.retries > 0) AS attempts_max,
  median(g.gap_ms) FILTER (WHERE g.retries > 0) AS gap_ms_p50,
  median(g.growth) AS backoff_growth, bool_or(g.marked) AS marked, bool_or(g.inside) AS inside,
  min(g.first_start) FILTER (WHERE g.retries > 0) AS first_start,
  max(g.last_end) FILTER (WHERE g.retries > 0) AS last_end,
  max_by(g.trace_id, (g.retries * 1e6 + g.attempts, g.trace_id), {EXEMPLARS}) FILTER (WHERE g.retries > 0) AS exemplars,
  max_by(g.source_sid, (g.retries * 1e6 + g.attempts, g.trace_id)) FILTER (WHERE g.retries > 0) AS source_sid,
  any_value(vm.version) AS version
FROM g LEFT JOIN vm USING ({key})
GROUP BY ALL HAVING sum(g.retries) > 0
"""


def _amplification_sql(calls: str, keys: str) -> str:
    """Amplified buckets per (service, target, target operation) (params: see detector).

    Calls (attempts: a call with retries inside counts each) are counted per (kid, bucket)
    first, on fixed-width keys, then named with ``keys``; only the calls of amplified buckets
    are looked up in ``spans`` (trace and file:line of the exemplars). Groups with amplified
    buckets are returned whatever their number (``amplified_buckets``; the detector compares it
    with ``min_amplified_buckets``).
    """
    bucket = "time_bucket(to_seconds($bucket_s::DOUBLE), start_time)"
    return f"""
WITH inb AS ({_INBOUND_SQL}),
ob AS (
  SELECT kid, {bucket} AS bucket, CAST(sum(attempts) AS BIGINT) AS outbound,
    CAST(sum(failed_attempts) AS BIGINT) AS errors
  FROM {calls} GROUP BY ALL),
outb AS (
  SELECT k.service, k.target, k.target_operation, o.bucket, sum(o.outbound)::BIGINT AS outbound,
    sum(o.errors)::BIGINT AS errors
  FROM ob o JOIN {keys} k ON k.kid = o.kid GROUP BY ALL),
j AS (SELECT o.*, i.inbound, o.outbound / i.inbound AS ratio
      FROM outb o JOIN inb i USING (service, bucket) WHERE i.inbound >= $min_inbound),
b AS (SELECT service, target, target_operation, median(ratio) AS base_ratio, median(inbound) AS base_inbound,
        count(*) AS buckets FROM j GROUP BY ALL HAVING count(*) >= {MIN_BASELINE_BUCKETS}),
f AS (SELECT j.*, b.base_ratio, b.base_inbound, b.buckets, j.ratio / b.base_ratio AS amplification
      FROM j JOIN b USING (service, target, target_operation)
      WHERE j.ratio >= $min_amp * b.base_ratio AND j.outbound - b.base_ratio * j.inbound >= $min_extra
        AND j.inbound BETWEEN b.base_inbound / $tol AND b.base_inbound * $tol),
fk AS (SELECT k.kid, f.service, f.target, f.target_operation, f.bucket FROM f JOIN {keys} k
       ON k.service = f.service AND k.target = f.target AND k.target_operation = f.target_operation),
tn AS (SELECT fk.service, fk.target, fk.target_operation, c.tid, count(*) AS n FROM {calls} c
       JOIN fk ON fk.kid = c.kid AND fk.bucket = time_bucket(to_seconds($bucket_s::DOUBLE), c.start_time)
       GROUP BY ALL),
cand AS (SELECT * FROM (SELECT *, rank() OVER (PARTITION BY service, target, target_operation ORDER BY n DESC) AS rk
                        FROM tn) WHERE rk <= {EXEMPLARS}),
tr AS (SELECT {trace_key_sql('s')} AS tid, any_value(s.trace_id) AS trace_id FROM spans s
       WHERE {trace_key_sql('s')} IN (SELECT tid FROM cand) GROUP BY 1),
ex AS (
  SELECT service, target, target_operation, max_by(tr.trace_id, (n, tr.trace_id), {EXEMPLARS}) AS exemplars,
    max_by(cand.tid, (n, tr.trace_id)) AS top_tid
  FROM cand JOIN tr ON tr.tid = cand.tid GROUP BY ALL),
src AS (
  SELECT ex.service, ex.target, ex.target_operation, min({source_sql('s')}) AS source
  FROM ex JOIN fk USING (service, target, target_operation)
  JOIN {calls} c ON c.tid = ex.top_tid AND c.kid = fk.kid AND fk.bucket = time_bucket(to_seconds($bucket_s::DOUBLE), c.start_time)
  JOIN spans s ON {span_key_sql('s')} = c.sid
  GROUP BY ALL)
SELECT service, target, target_operation, any_value(ex.exemplars) AS exemplars, any_value(src.source) AS source, count(*) AS amplified_buckets, any_value(buckets) AS buckets,
  any_value(base_ratio) AS base_ratio, sum(outbound) / sum(inbound) AS amplified_ratio,
  max(amplification) AS peak_amplification, sum(outbound) / sum(inbound) / any_value(base_ratio) AS amplification,
  sum(errors) / sum(outbound) AS error_share, min(bucket) AS window_start,
  max(bucket) + to_seconds($bucket_s::DOUBLE) AS window_end
FROM f JOIN ex USING (service, target, target_operation) LEFT JOIN src USING (service, target, target_operation)
GROUP BY service, target, target_operation
"""


#: inbound (server/consumer) requests per (service, bucket) (param: bucket_s)
_INBOUND_SQL = ("SELECT service, time_bucket(to_seconds($bucket_s::DOUBLE), start_time) AS bucket, count(*) AS inbound "
                "FROM spans WHERE kind IN ('server', 'consumer') GROUP BY ALL")


def _too_little_data_sql(calls: str, keys: str) -> str:
    """Dependency operations whose amplification cannot be judged: fewer than
    :data:`MIN_BASELINE_BUCKETS` buckets with ``$min_inbound`` inbound requests of the caller
    (params: bucket_s, min_inbound). Columns service, target, target_operation, calls, buckets."""
    return f"""
WITH inb AS ({_INBOUND_SQL}),
full_buckets AS (SELECT service, count(*) FILTER (WHERE inbound >= $min_inbound) AS buckets FROM inb GROUP BY ALL),
k AS (SELECT kid, count(*) AS calls FROM {calls} GROUP BY kid)
SELECT n.service, n.target, n.target_operation, sum(k.calls)::BIGINT AS calls,
  coalesce(any_value(f.buckets), 0) AS buckets
FROM k JOIN {keys} n USING (kid) LEFT JOIN full_buckets f ON f.service = n.service
GROUP BY ALL HAVING coalesce(any_value(f.buckets), 0) < {MIN_BASELINE_BUCKETS}
ORDER BY calls DESC, n.service, n.target, n.target_operation
"""


@detector("retry_storm")
def detect_retry_storm(case: "Case", *, min_retried_requests: int = 10, min_retry_share: float = 0.1,
                       min_backoff_ms: float = 10.0, bucket_s: float = 60.0, min_amplification: float = 1.5,
                       inbound_tolerance: float = 1.5, min_inbound: int = 20, min_extra_calls: int = 20,
                       min_amplified_buckets: int = 2, min_amplified_error_share: float = 0.1,
                       explain: bool = False) -> Findings:
    """Retry storms: repeated calls after failures and outbound traffic amplified beyond inbound.

    Parameters
    ----------
    case:
        The case whose ``spans`` are searched.
    min_retried_requests:
        Caller spans (requests) with retries of the same dependency operation needed for a
        finding above medium; with fewer (a single trace, a short incident) the evidence
        decides: at most medium when they look like a storm (p50 of 3+ attempts, half of them
        failed), else low.
    min_retry_share:
        Minimum share of the calls to the dependency operation that are retries (0.1 = 10 %).
    min_backoff_ms:
        A median gap between a failed attempt and its retry below this (milliseconds) is "no backoff".
    bucket_s:
        Width of the time buckets (retry window and amplification), in seconds.
    min_amplification:
        A bucket is amplified when outbound calls per inbound request reach this multiple of the baseline.
    inbound_tolerance:
        Inbound is "flat" within ``1/inbound_tolerance`` and ``inbound_tolerance`` x its median.
    min_inbound:
        Buckets with fewer inbound requests are ignored (too noisy).
    min_extra_calls:
        An amplified bucket must carry at least this many calls above what the baseline ratio
        predicts for its inbound (keeps 1 → 2 calls from looking like a 2x storm).
    min_amplified_buckets:
        Minimum amplified buckets for an amplification finding.
    min_amplified_error_share:
        Amplification without retries in the traces is reported only when at least this share
        of the amplified calls failed (more calls that all succeed is a fan-out change, e.g. an
        N+1, not a storm; ``explain=True`` shows it as a near miss).
    explain:
        Also return near misses: dependency operations with retries that failed a threshold.
    """
    if not has_spans(case):
        return Findings.empty()
    thresholds = {"min_retried_requests": min_retried_requests, "min_retry_share": min_retry_share,
                  "min_backoff_ms": min_backoff_ms, "bucket_s": bucket_s, "min_amplification": min_amplification,
                  "inbound_tolerance": inbound_tolerance, "min_inbound": min_inbound,
                  "min_extra_calls": min_extra_calls, "min_amplified_buckets": min_amplified_buckets,
                  "min_amplified_error_share": min_amplified_error_share}
    amp_params = {"bucket_s": bucket_s, "min_inbound": min_inbound, "min_amp": min_amplification,
                  "tol": inbound_tolerance, "min_extra": min_extra_calls}
    calls, keys = call_tables(case)
    with temp_table(case, _attempts_sql(calls, keys)) as chains, \
            temp_table(case, _chains_with_callers_sql(chains), {"bucket_s": bucket_s}) as cc:
        retry_rows = add_sources(case, rows(case, _retry_keys_sql(cc), {"bucket_s": bucket_s, "min_share": min_retry_share}))
        amp_rows = rows(case, _amplification_sql(calls, keys), amp_params)
        skipped = (rows(case, _too_little_data_sql(calls, keys), {"bucket_s": bucket_s, "min_inbound": min_inbound})
                   if explain else [])
    few = [a for a in amp_rows if a["amplified_buckets"] < min_amplified_buckets]
    amp = {(a["service"], a["target"], a["target_operation"]): a for a in amp_rows if a not in few}
    records: list[dict[str, Any]] = []
    used: set[tuple] = set()
    for r in sorted(retry_rows, key=lambda r: -r["retries"]):
        key = (r["service"], r["target"], r["target_operation"])
        a = amp.get(key) if key not in used else None
        used.add(key)
        rec = _retry_finding(r, a, thresholds, explain)
        if rec:
            records.append(rec)
    for k, a in amp.items():
        if k in used:
            continue
        check_err = check("min_amplified_error_share", round(a["error_share"], 4), min_amplified_error_share,
                          a["error_share"] >= min_amplified_error_share)
        if check_err["passed"]:
            records.append(_amplification_only(a, thresholds))
        elif explain:
            records.append(near_miss(_amplification_only(a, thresholds), [check_err]))
    if explain:
        records += [near_miss(_amplification_only(a, thresholds), [check(
            "min_amplified_buckets", a["amplified_buckets"], min_amplified_buckets, False)]) for a in few]
        if skipped:
            records.append(_skipped_record(skipped, thresholds))
    return to_findings(records)


def _checks(r: dict[str, Any], t: dict[str, Any]) -> list[dict[str, Any]]:
    share = r["retries"] / r["calls"]
    return [check("min_retry_share", round(share, 4), t["min_retry_share"], share >= t["min_retry_share"])]


def _evidence_cap(r: dict[str, Any], t: dict[str, Any]) -> str | None:
    """The most severe level a few retried requests support (None: enough requests)."""
    if r["retried_requests"] >= t["min_retried_requests"]:
        return None
    storm_like = ((r["attempts_p50"] or 1) >= SMALL_STORM_ATTEMPTS
                  and (r["error_share"] or 0) >= SMALL_STORM_ERROR_SHARE)
    return "medium" if storm_like else "low"


def _retry_finding(r: dict[str, Any], a: dict[str, Any] | None, t: dict[str, Any],
                   explain: bool) -> dict[str, Any] | None:
    checks = _checks(r, t)
    passed = all(c["passed"] for c in checks)
    if not passed and a is None and not explain:
        return None
    share = r["retries"] / r["calls"]
    no_backoff = r["gap_ms_p50"] is not None and r["gap_ms_p50"] < t["min_backoff_ms"]
    amplified = a["amplification"] if a is not None else 1.0
    if (share >= 0.5 and r["attempts_p90"] >= 3) or (no_backoff and amplified >= 3):
        severity = "critical"
    elif share >= 0.3 or (no_backoff and r["attempts_p90"] >= 3):
        severity = "high"
    else:
        severity = "medium"
    if a is not None and not passed:
        severity = "medium"
    cap = _evidence_cap(r, t)
    severity = cap_severity(severity, cap)
    svc, op, target, top = r["service"], r["operation"], r["target"], r["target_operation"]
    if r["gap_ms_p50"] is None:
        spacing = "spacing unknown"
    elif no_backoff:
        spacing = f"no backoff: median gap {fmt_ms(r['gap_ms_p50'])}"
    else:
        growth = r["backoff_growth"]
        kind = "growing" if growth and growth >= 1.5 else "fixed"
        spacing = f"{kind} backoff: median gap {fmt_ms(r['gap_ms_p50'])}"
    when = (f" between {r['window_start']:%H:%M} and {r['window_end']:%H:%M} UTC"
            if r["window_start"] is not None else "")
    text = (f"{svc} retries {top} on {target} in {r['retried_requests']} of {r['requests']} {op} requests{when} "
            f"({fmt_num(r['attempts_p50'])} attempts per retried request at p50, {r['error_share']:.0%} of attempts "
            f"failed, {spacing})")
    if a is not None:
        text += (f"; calls per inbound request rose {fmt_num(a['amplification'])}x "
                 f"({fmt_num(a['base_ratio'])} → {fmt_num(a['amplified_ratio'])}) while inbound stayed flat")
    evidence = {
        "exemplar_trace_ids": list(r["exemplars"] or []), "source": r["source"],
        "requests": r["requests"], "retried_requests": r["retried_requests"], "calls": r["calls"],
        "retries": r["retries"], "retry_share": share, "error_share_of_attempts": r["error_share"],
        "attempts_per_retried_request": {"p50": r["attempts_p50"], "p90": r["attempts_p90"], "max": r["attempts_max"]},
        "gap_ms_p50": r["gap_ms_p50"], "backoff": not no_backoff, "backoff_growth": r["backoff_growth"],
        "retry_attributes": r["marked"], "retries_inside_client_spans": r["inside"],
        "evidence_cap": cap, "window": {"start": r["window_start"], "end": r["window_end"]},
        "amplification": _amp_evidence(a), "thresholds": t,
    }
    record = {"detector": "retry_storm", "severity": severity,
              "title": f"retries: {svc} → {target} {top}", "service": svc, "operation": op, "target": target,
              "target_operation": top, "version": r["version"], "start_time": r["first_start"],
              "end_time": r["last_end"], "score": float(share * (r["attempts_p50"] or 1)),
              "evidence": evidence, "summary": text + "."}
    if not passed and a is None:
        return near_miss(record, checks)
    return record


def _amp_evidence(a: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None:
        return None
    keys = ("amplification", "peak_amplification", "base_ratio", "amplified_ratio", "amplified_buckets", "buckets",
            "error_share", "window_start", "window_end")
    return {k: a[k] for k in keys}


def _amplification_only(a: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    svc, target, top = a["service"], a["target"], a["target_operation"]
    severity = "high" if a["amplification"] >= 3 else "medium" if a["amplification"] >= 2 else "low"
    text = (f"Calls from {svc} to {target} {top} per inbound request rose {fmt_num(a['amplification'])}x "
            f"({fmt_num(a['base_ratio'])} → {fmt_num(a['amplified_ratio'])}) in {a['amplified_buckets']} "
            f"{fmt_num(t['bucket_s'])} s buckets while inbound traffic stayed flat, "
            f"{a['error_share']:.0%} of them failing.")
    return {"detector": "retry_storm", "severity": severity, "title": f"amplification: {svc} → {target} {top}",
            "service": svc, "operation": None, "target": target, "target_operation": top, "version": None,
            "start_time": a["window_start"], "end_time": a["window_end"], "score": float(a["amplification"]),
            "evidence": {"exemplar_trace_ids": list(a["exemplars"] or []), "source": a["source"], "amplification": _amp_evidence(a),
                         "thresholds": t}, "summary": text}


def _skipped_record(skipped: list[dict[str, Any]], t: dict[str, Any]) -> dict[str, Any]:
    """One info record naming the dependency operations whose amplification was not judged."""
    names = [f"{r['service']} → {r['target']} {r['target_operation']}" for r in skipped]
    shown = "; ".join(names[:5]) + (f"; and {len(names) - 5} more" if len(names) > 5 else "")
    return {"detector": "retry_storm", "severity": "info", "title": "amplification not judged: too little data",
            "service": None, "operation": None, "target": None, "target_operation": None, "version": None,
            "start_time": None, "end_time": None, "score": 0.0,
            "evidence": {"near_miss": True, "skipped": "too little data", "failed": ["min_inbound"],
                         "groups": [{k: r[k] for k in ("service", "target", "target_operation", "calls", "buckets")}
                                    for r in skipped],
                         "thresholds": t},
            "summary": (f"Outbound calls per inbound request were not compared over time for {len(names)} "
                        f"dependency operation(s): their callers have fewer than {MIN_BASELINE_BUCKETS} "
                        f"{fmt_num(t['bucket_s'])} s buckets with {t['min_inbound']}+ inbound requests ({shown}).")}
