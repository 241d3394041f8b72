"""Version regressions: an operation that got slower, failed more, failed differently or calls
its dependencies differently after a new version of its service.

For every (service, operation) of server/consumer spans, each version is compared with the
version that preceded it: versions of a service are ordered by their deploy event when the
``events`` table has one (``kind = 'deploy'``), else by the time they were first seen; spans
without ``service.version`` fall into cohorts before/after deploy events (see
:func:`forensics.detectors._common.version_sql`). Checks, each with its own evidence:

* **latency**: one-sided Mann–Whitney U (new slower than baseline, ``scipy.stats``) with
  ``p < alpha`` *and* effect size: p95 at least ``min_latency_increase`` (relative) *and*
  ``min_latency_increase_ms`` (absolute) above the baseline's;
* **error rate** (status error or HTTP 5xx): one-sided Fisher exact test ``p < alpha`` *and* an
  increase of at least ``min_error_rate_increase`` (absolute, 0.01 = 1 percentage point);
* **new error types**: normalized error status messages, and templates of warn/error logs
  (``logs.template``; a log's version comes from its resource ``service.version``, its trace,
  or else the version deployed last before it), seen at least
  ``min_new_error_count`` times in a service version and never in the service's preceding
  version (any operation), and more often than chance allows (one-sided Fisher exact test of
  its count in the new version's requests against none in the baseline's, ``p < alpha``);
  reported on the operation where they occur when it is compared, else on the version's
  busiest compared operation;
* **changed call patterns**: downstream calls per request by (target, operation), from calls
  whose parent or grandparent is the request span; changed when the mean per request moves by
  at least ``min_call_change`` calls *and* doubles or halves.

Both versions need ``min_samples`` requests. One finding per regressed (service, operation,
version); severity from the largest effect (p95 ratio, error-rate increase, new error share).
A change of call pattern alone is reported at ``low``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from scipy import stats

from .._db import query_arrow
from ..findings import Findings
from ..semantics import is_error_sql, server_operation_key_sql, with_server_operation_sql
from ..semantics.logs import warning_sql
from ..semantics.normalize import normalize_text_sql
from ._calls import call_counts_sql
from ._common import (add_sources, check, clean, deploy_times_sql, fmt_ms, fmt_num, near_miss,
                      rows, span_key_sql, temp_table, to_findings, version_sql, vlabel)
from ._control import NO_CONTROL, callers_sql, control_note, control_sql, controls
from ._skipped import too_little_data
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case

MAX_SAMPLES = 200_000  #: per side of a Mann–Whitney test (deterministic hash sample beyond)
EXEMPLARS = 5


def _requests_sql(case: "Case") -> str:
    """Every server/consumer span with a duration: keys, effective version, operation, error."""
    vjoin, vexpr = version_sql(case, "s")
    return with_server_operation_sql(f"""
SELECT s.trace_id, {span_key_sql('s')} AS sid, hash(s.span_id) AS sample_key, s.service, {vexpr} AS version,
  s.name, s.http_route, s.http_method, {server_operation_key_sql('s')} AS opkey, s.start_time, s.end_time, s.duration_ms,
  {is_error_sql('s')} AS is_error,
  CASE WHEN {is_error_sql('s')} THEN
    coalesce({normalize_text_sql('s.status_message')}, 'HTTP ' || s.http_status_code::VARCHAR) END AS error_type
FROM spans s {vjoin}
WHERE s.kind IN ('server', 'consumer') AND s.duration_ms IS NOT NULL""",
        "r.trace_id, r.sid, r.sample_key, r.service, r.version, r.start_time, r.end_time, r.duration_ms, "
        "r.is_error, r.error_type")


def _versions_sql(req: str) -> str:
    """Per (service, version): order time (deploy, else first seen) and the preceding version."""
    return f"""
SELECT *, lag(version) OVER (PARTITION BY service ORDER BY order_time, version) AS base_version FROM (
  SELECT r.service, r.version, coalesce(min(d.deployed_at), min(r.start_time)) AS order_time
  FROM {req} r LEFT JOIN ({deploy_times_sql()}) d ON d.service = r.service AND d.version = r.version
  WHERE r.version IS NOT NULL GROUP BY ALL)
"""


def _pairs_sql(req: str, versions: str) -> str:
    """Per (service, operation, version) stats and the preceding version's (params: min_samples)."""
    return f"""
WITH v AS (
  SELECT service, operation, version, count(*) AS n, min(start_time) AS first_seen, max(end_time) AS last_seen,
    quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q, avg(is_error::DOUBLE) AS error_rate,
    count(*) FILTER (WHERE is_error) AS errors,
    max_by(trace_id, (duration_ms, trace_id), {EXEMPLARS}) AS slow_traces,
    max_by(sid, (duration_ms, trace_id)) AS slow_sid,
    max_by(trace_id, (duration_ms, trace_id), {EXEMPLARS}) FILTER (WHERE is_error) AS error_traces,
    max_by(sid, (duration_ms, trace_id)) FILTER (WHERE is_error) AS error_sid
  FROM {req} WHERE version IS NOT NULL GROUP BY ALL),
l AS (
  SELECT v.*, o.order_time,
    lag(v.version) OVER w AS base_version, lag(v.n) OVER w AS base_n, lag(v.q) OVER w AS base_q,
    lag(v.error_rate) OVER w AS base_error_rate, lag(v.errors) OVER w AS base_errors,
    lag(v.first_seen) OVER w AS base_first_seen, lag(v.last_seen) OVER w AS base_last_seen
  FROM v JOIN {versions} o USING (service, version)
  WINDOW w AS (PARTITION BY v.service, v.operation ORDER BY o.order_time, v.version))
SELECT *, n >= $min_samples AND base_n >= $min_samples AS tested FROM l WHERE base_version IS NOT NULL
"""


def _new_kinds_sql(kinds: str, versions: str) -> str:
    """Kinds (service, version, kind, operation, n, trace_id) of a version never seen in the
    service's preceding version, with at least ``$min_new`` occurrences."""
    return f"""
WITH k AS (SELECT service, version, kind, arg_max(operation, (n, operation)) AS operation, sum(n)::BIGINT AS n,
                  arg_max(trace_id, (n, trace_id)) AS trace_id, any_value(origin) AS origin
           FROM ({kinds}) GROUP BY service, version, kind)
SELECT k.* FROM k JOIN {versions} v USING (service, version)
WHERE v.base_version IS NOT NULL AND k.n >= $min_new
  AND NOT EXISTS (SELECT 1 FROM k b WHERE b.service = k.service AND b.version = v.base_version AND b.kind = k.kind)
"""


def _error_kinds_sql(req: str) -> str:
    """Normalized error status messages per (service, version, operation)."""
    return f"""
SELECT service, version, operation, error_type AS kind, count(*) AS n, min(trace_id) AS trace_id,
  'status' AS origin
FROM {req} WHERE error_type IS NOT NULL AND version IS NOT NULL GROUP BY ALL
"""


def _log_kinds_sql(req: str, versions: str) -> str:
    """Warn/error log templates per (service, version, operation).

    A log's version is its resource ``service.version``; else that of its trace's first request
    span in the same service (which also gives the operation); else, for logs without a trace,
    the service version deployed (or first seen) last before the log (operation unknown).
    """
    return f"""
WITH tr AS (SELECT trace_id, service, arg_min(operation, start_time) AS operation, any_value(version) AS version
            FROM {req} WHERE version IS NOT NULL GROUP BY trace_id, service),
g AS (SELECT service, time, trace_id, template, resource_attributes['service.version'] AS res_version FROM logs l
      WHERE template IS NOT NULL AND service IS NOT NULL AND time IS NOT NULL AND {warning_sql('l')}),
gv AS (SELECT g.*, v.version AS time_version FROM g ASOF LEFT JOIN {versions} v
       ON v.service = g.service AND g.time >= v.order_time)
SELECT gv.service, coalesce(gv.res_version, tr.version, gv.time_version) AS version, tr.operation,
  gv.template AS kind, count(*) AS n, any_value(gv.trace_id) AS trace_id, 'log' AS origin
FROM gv LEFT JOIN tr ON tr.trace_id = gv.trace_id AND tr.service = gv.service
GROUP BY ALL HAVING coalesce(gv.res_version, tr.version, gv.time_version) IS NOT NULL
"""


def _call_pattern_sql(counts: str, req: str, pairs: str) -> str:
    """Mean downstream calls per request by (target, operation) for both versions of a pair.

    A call belongs to the request span that is its parent, or its grandparent through one
    internal span. ``counts``: calls per (caller span key ``psid``, target, target_operation).
    """
    return f"""
WITH pc AS MATERIALIZED ({counts}),
m AS (SELECT {span_key_sql('m')} AS sid, {span_key_sql('m', 'parent_span_id')} AS psid FROM spans m
      WHERE m.kind NOT IN ('server', 'consumer') AND m.parent_span_id IS NOT NULL
        AND {span_key_sql('m')} IN (SELECT psid FROM pc)),
rc AS (
  SELECT r.service, r.operation, r.version, pc.target, pc.target_operation, sum(pc.calls) AS calls
  FROM pc LEFT JOIN m ON m.sid = pc.psid
  JOIN {req} r ON r.sid = coalesce(m.psid, pc.psid)
  GROUP BY ALL)
SELECT p.service, p.operation, p.version, rc.target, rc.target_operation,
  coalesce(sum(rc.calls) FILTER (WHERE rc.version = p.version), 0) / any_value(p.n) AS new_per_request,
  coalesce(sum(rc.calls) FILTER (WHERE rc.version = p.base_version), 0) / any_value(p.base_n) AS base_per_request
FROM {pairs} p JOIN rc ON rc.service = p.service AND rc.operation = p.operation
  AND rc.version IN (p.version, p.base_version)
GROUP BY p.service, p.operation, p.version, rc.target, rc.target_operation
"""


@detector("version_regression")
def detect_version_regression(case: "Case", *, alpha: float = 0.01, min_latency_increase: float = 0.10,
                              min_latency_increase_ms: float = 20.0, min_error_rate_increase: float = 0.01,
                              min_new_error_count: int = 2, min_call_change: float = 1.0, min_samples: int = 5,
                              min_control_samples: int = 10, explain: bool = False) -> Findings:
    """Version regressions: slower, more errors, new error types or new call patterns after a version change.

    Parameters
    ----------
    case:
        The case whose server/consumer ``spans`` (and ``logs`` templates, ``events`` deploys) are used.
    alpha:
        Significance level of the one-sided tests (Mann–Whitney U on latency, Fisher exact on errors).
    min_latency_increase:
        Minimum relative p95 increase over the baseline version (0.10 = +10 %).
    min_latency_increase_ms:
        Minimum absolute p95 increase, in milliseconds.
    min_error_rate_increase:
        Minimum error-rate increase, as a fraction of requests (0.01 = 1 percentage point).
    min_new_error_count:
        Occurrences a new error type (status message or log template) needs in the new version.
    min_call_change:
        Minimum change of mean downstream calls per request for a (target, operation); it must
        also at least double or halve.
    min_samples:
        Minimum requests of the operation in each of the two versions (5: the fewest with which
        a one-sided Mann–Whitney or Fisher test can reach p < 0.01; above it the tests decide).
    min_control_samples:
        Requests a control group (an operation of another, unchanged service) needs in each
        of the two windows to count in the control (10: a median of fewer moves too much).
    explain:
        Also return near misses: version pairs whose latency or error change failed a
        threshold, and one record listing the pairs skipped for fewer than ``min_samples``.

    Notes
    -----
    Latency is judged against a control (difference in differences): the operations of other
    services whose version did not change, except the compared service's callers (their
    latency includes its own), and how their median latency moved between the baseline's
    window and the new version's window. The largest of those changes (their 90th percentile
    above 5 operations), when above 1, divides the new version's latencies before the test
    and the effect sizes: a version is blamed only for a slowdown beyond what unchanged code
    went through at the same time, so a no-op redeploy while the whole machine slowed down is
    not a regression. ``evidence.latency.control`` gives the factor, the operations it came
    from and the callers left out.
    """
    thresholds = {"alpha": alpha, "min_latency_increase": min_latency_increase,
                  "min_latency_increase_ms": min_latency_increase_ms,
                  "min_error_rate_increase": min_error_rate_increase, "min_new_error_count": min_new_error_count,
                  "min_call_change": min_call_change, "min_samples": min_samples,
                  "min_control_samples": min_control_samples}
    with temp_table(case, _requests_sql(case)) as req, temp_table(case, _versions_sql(req)) as versions, \
            temp_table(case, _pairs_sql(req, versions), {"min_samples": min_samples}) as pairs:
        skipped = [] if not explain else too_little_data("version_regression", "min_samples", min_samples, [
            {"label": f"{r['service']} {r['operation']} {vlabel(r['version'])} vs {vlabel(r['base_version'])}",
             "count": min(r["n"], r["base_n"]), **r}
            for r in rows(case, f"SELECT service, operation, version, base_version, n, base_n FROM {pairs} "
                                "WHERE NOT tested")], thresholds, unit="requests per version")
        pair_rows = add_sources(case, rows(case, f"SELECT * FROM {pairs} WHERE tested "
                                                 "ORDER BY service, version, n DESC, operation"),
                                "slow_sid", "error_sid")
        if not pair_rows:
            return to_findings(skipped)
        kinds = _error_kinds_sql(req)
        if rows(case, "SELECT 1 FROM logs WHERE template IS NOT NULL LIMIT 1"):
            kinds = f"SELECT * FROM ({kinds}) UNION ALL SELECT * FROM ({_log_kinds_sql(req, versions)})"
        new_kinds = rows(case, _new_kinds_sql(kinds, versions), {"min_new": min_new_error_count})
        tested = f"(SELECT * FROM {pairs} WHERE tested)"
        patterns = rows(case, _call_pattern_sql(call_counts_sql(case), req, tested))
        with temp_table(case, callers_sql(req, pairs)) as callers:
            control_by_pair = controls(rows(case, control_sql(req, pairs, callers), {"min_control": min_control_samples}),
                                 rows(case, f"SELECT * FROM {callers} ORDER BY t_service, share DESC, service, operation"))
        samples = _samples(case, req, pair_rows)
    # new error types belong to the service version: shown on its own operation's pair, else on
    # the version's busiest compared operation (pairs are ordered by requests)
    ops = {(p["service"], p["operation"], p["version"]) for p in pair_rows}
    home = {}
    for p in pair_rows:
        home.setdefault((p["service"], p["version"]), p["operation"])
    for k in new_kinds:
        if (k["service"], k["operation"], k["version"]) not in ops:
            k["operation"] = home.get((k["service"], k["version"]))
    records = skipped
    for p in pair_rows:
        key = (p["service"], p["operation"], p["version"])
        p["control"] = control_by_pair.get(key, NO_CONTROL)
        rec = _judge(p, samples, [k for k in new_kinds if (k["service"], k["operation"], k["version"]) == key],
                     [c for c in patterns if (c["service"], c["operation"], c["version"]) == key], thresholds, explain)
        if rec:
            records.append(rec)
    return to_findings(records)


def _samples(case: "Case", req: str, pairs: list[dict[str, Any]]) -> dict[tuple, np.ndarray]:
    """Latencies per (service, operation, version) for the versions in ``pairs`` (one query)."""
    keys = {(p["service"], p["operation"], v) for p in pairs for v in (p["version"], p["base_version"])}
    table = pa.table({"service": [k[0] for k in keys], "operation": [k[1] for k in keys],
                      "version": [k[2] for k in keys]})
    name = f"{req}_keys"
    case.con.register(name, table)
    try:
        got = query_arrow(case.con, f"""
SELECT service, operation, version, list(duration_ms) AS d FROM (
  SELECT r.service, r.operation, r.version, r.duration_ms,
    row_number() OVER (PARTITION BY r.service, r.operation, r.version ORDER BY r.sample_key) AS k
  FROM {req} r JOIN {name} USING (service, operation, version))
WHERE k <= {MAX_SAMPLES} GROUP BY ALL""").to_pylist()
    finally:
        case.con.unregister(name)
    return {(g["service"], g["operation"], g["version"]): np.asarray(g["d"], dtype=float) for g in got}


def _latency(p: dict[str, Any], samples: dict[tuple, np.ndarray], t: dict[str, Any]) -> dict[str, Any]:
    """The latency comparison, with the new version's latencies divided by the control's
    applied factor (see :func:`forensics.detectors._control.controls`)."""
    control = p["control"]
    f = control["applied_factor"]
    new = samples[(p["service"], p["operation"], p["version"])] / f
    base = samples[(p["service"], p["operation"], p["base_version"])]
    res = stats.mannwhitneyu(new, base, alternative="greater")
    (b50, b95, b99), (n50, n95, n99) = p["base_q"], p["q"]
    raw_ratio = n95 / b95 if b95 > 0 else float("inf")
    ratio = raw_ratio / f
    increase_ms = n95 / f - b95
    raw_p = float(stats.mannwhitneyu(new * f, base, alternative="greater").pvalue) if f != 1.0 else None
    raw_regressed = f != 1.0 and raw_p < t["alpha"] and raw_ratio - 1 >= t["min_latency_increase"] \
        and n95 - b95 >= t["min_latency_increase_ms"]
    checks = [check("alpha", float(res.pvalue), f"< {t['alpha']}", res.pvalue < t["alpha"]),
              check("min_latency_increase", round(ratio - 1, 4), t["min_latency_increase"],
                    ratio - 1 >= t["min_latency_increase"]),
              check("min_latency_increase_ms", round(increase_ms, 3), t["min_latency_increase_ms"],
                    increase_ms >= t["min_latency_increase_ms"])]
    return {"base": {"n": p["base_n"], "p50_ms": b50, "p95_ms": b95, "p99_ms": b99},
            "new": {"n": p["n"], "p50_ms": n50, "p95_ms": n95, "p99_ms": n99},
            "mann_whitney_p": float(res.pvalue),
            "prob_superiority": float(res.statistic) / (len(new) * len(base)),
            "p95_ratio": clean(ratio), "p95_ratio_raw": clean(raw_ratio), "p95_increase_ms": clean(increase_ms),
            "control": control, "checks": checks, "regressed": all(c["passed"] for c in checks),
            "raw_mann_whitney_p": raw_p, "raw_regressed": bool(raw_regressed)}


def _errors(p: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    table = [[p["errors"], p["n"] - p["errors"]], [p["base_errors"], p["base_n"] - p["base_errors"]]]
    pvalue = float(stats.fisher_exact(table, alternative="greater").pvalue)
    diff = p["error_rate"] - p["base_error_rate"]
    checks = [check("alpha", pvalue, f"< {t['alpha']}", pvalue < t["alpha"]),
              check("min_error_rate_increase", round(diff, 4), t["min_error_rate_increase"],
                    diff >= t["min_error_rate_increase"])]
    return {"base_rate": p["base_error_rate"], "new_rate": p["error_rate"], "increase": diff,
            "fisher_p": pvalue, "checks": checks, "regressed": all(c["passed"] for c in checks)}


def _new_kind_p(count: int, n: int, base_n: int) -> float:
    """One-sided Fisher p-value of an error type seen ``count`` times in the new version's ``n``
    requests and never in the baseline's ``base_n`` (a type seen twice in 100 requests could as
    well have been missed by chance in the baseline's 100)."""
    k = min(int(count), int(n))
    return float(stats.fisher_exact([[k, n - k], [0, base_n]], alternative="greater").pvalue)


def _changed_calls(patterns: list[dict[str, Any]], t: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in patterns:
        a, b = c["new_per_request"], c["base_per_request"]
        if abs(a - b) >= t["min_call_change"] and (a >= 2 * b or b >= 2 * a):
            out.append({"target": c["target"], "target_operation": c["target_operation"],
                        "base_per_request": b, "new_per_request": a})
    return sorted(out, key=lambda c: -abs(c["new_per_request"] - c["base_per_request"]))


def _judge(p: dict[str, Any], samples: dict[tuple, np.ndarray], kinds: list[dict[str, Any]],
           patterns: list[dict[str, Any]], t: dict[str, Any], explain: bool) -> dict[str, Any] | None:
    lat, err = _latency(p, samples, t), _errors(p, t)
    new_kinds = [{"origin": k["origin"], "kind": k["kind"], "count": k["n"], "trace_id": k["trace_id"],
                  "operation": k["operation"], "fisher_p": _new_kind_p(k["n"], p["n"], p["base_n"])}
                 for k in sorted(kinds, key=lambda k: -k["n"])]
    new_kinds = [k for k in new_kinds if k["fisher_p"] < t["alpha"]]
    calls = _changed_calls(patterns, t)
    if not (lat["regressed"] or err["regressed"] or new_kinds or calls):
        if not explain:
            return None
        # the aspect (latency or errors) that moved the wrong way and passed most of its checks
        moved = [a for a, up in ((lat, lat["new"]["p95_ms"] > lat["base"]["p95_ms"]), (err, err["increase"] > 0)) if up]
        best = max(moved, key=lambda a: sum(c["passed"] for c in a["checks"]), default=None)
        if lat["raw_regressed"]:  # a slowdown the control explains: say so
            best = lat
        if best is None or not any(c["passed"] for c in best["checks"]) and best is not lat:
            return None
        if best is lat and not lat["raw_regressed"] and not any(c["passed"] for c in lat["checks"]):
            return None
        return near_miss(_record(p, lat, err, new_kinds, calls, t, "info", 0.0), best["checks"])
    new_share = sum(k["count"] for k in new_kinds if k["origin"] == "status") / p["n"]
    sev_lat = _grade(lat["p95_ratio"] or 0.0, (3.0, 1.5, 1.2)) if lat["regressed"] else 4
    sev_err = _grade(err["increase"], (0.10, 0.05, 0.02)) if err["regressed"] else 4
    sev_new = (1 if new_share >= 0.05 else 2) if new_kinds else 4
    rank = min(sev_lat, sev_err, sev_new, 3)
    severity = ("critical", "high", "medium", "low")[rank]
    score = max((lat["p95_ratio"] or 1.0) - 1 if lat["regressed"] else 0.0, 10 * err["increase"] if err["regressed"] else 0.0,
                10 * new_share, 0.1 if calls else 0.0)
    return _record(p, lat, err, new_kinds, calls, t, severity, float(score))


def _grade(value: float, cuts: tuple[float, float, float]) -> int:
    """0 critical, 1 high, 2 medium, 3 low for ``value`` against descending ``cuts``."""
    return next((i for i, cut in enumerate(cuts) if value >= cut), 3)


def _record(p: dict[str, Any], lat: dict[str, Any], err: dict[str, Any], kinds: list[dict[str, Any]],
            calls: list[dict[str, Any]], t: dict[str, Any], severity: str, score: float) -> dict[str, Any]:
    svc, op, ver, base = p["service"], p["operation"], p["version"], p["base_version"]
    parts, what = [], []
    if lat["regressed"]:
        what.append("slower")
        parts.append(f"p99 {fmt_ms(lat['base']['p99_ms'])} → {fmt_ms(lat['new']['p99_ms'])} "
                     f"(p95 +{fmt_ms(lat['p95_increase_ms'])}{control_note(lat)}, "
                     f"Mann–Whitney p={lat['mann_whitney_p']:.1g})")
    if err["regressed"]:
        what.append("failing more")
        parts.append(f"errors {err['base_rate']:.1%} → {err['new_rate']:.1%}")
    if kinds:
        what.append("failing differently")
        parts.append(f"{len(kinds)} new error type{'s' if len(kinds) > 1 else ''} such as "
                     f"“{kinds[0]['kind']}” ({kinds[0]['count']}x)")
    if calls:
        c = calls[0]
        parts.append(f"{c['target_operation']} calls to {c['target']} per request "
                     f"{fmt_num(c['base_per_request'])} → {fmt_num(c['new_per_request'])}")
    if severity == "info":  # a near miss: say what moved
        summary = (f"{svc} {op} in {vlabel(ver)} vs {vlabel(base)}: p95 {fmt_ms(lat['base']['p95_ms'])} → "
                   f"{fmt_ms(lat['new']['p95_ms'])}{control_note(lat)} (Mann–Whitney "
                   f"p={lat['mann_whitney_p']:.1g}), errors {err['base_rate']:.1%} → {err['new_rate']:.1%}.")
    else:
        verdict = " and ".join(what) or "calling its dependencies differently"
        summary = f"{svc} {op} is {verdict} in {vlabel(ver)} than in {vlabel(base)}: " + "; ".join(parts) + "."
    use_errors = err["regressed"] and not lat["regressed"]
    evidence = {
        "exemplar_trace_ids": list((p["error_traces"] if use_errors else p["slow_traces"]) or []),
        "source": p["error_source"] if use_errors else p["slow_source"],
        "baseline_version": base, "requests": {"baseline": p["base_n"], "new": p["n"]},
        "latency": {k: v for k, v in lat.items() if k != "checks"}, "errors": {k: v for k, v in err.items() if k != "checks"},
        "new_error_types": kinds, "changed_calls": calls,
        "checks": {"latency": lat["checks"], "errors": err["checks"]}, "thresholds": t,
    }
    return {"detector": "version_regression", "severity": severity,
            "title": f"{svc} {op} regressed in {vlabel(ver)}", "service": svc, "operation": op,
            "target": calls[0]["target"] if calls else None,
            "target_operation": calls[0]["target_operation"] if calls else None, "version": ver,
            "start_time": p["first_seen"], "end_time": p["last_seen"], "score": score,
            "evidence": evidence, "summary": summary}
