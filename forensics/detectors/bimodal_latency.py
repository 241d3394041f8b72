"""Bimodal latency: an operation whose latency has two modes (often a fast path and a timeout).

Per (service, operation) of server/consumer spans, and per (caller, dependency, operation) of
outbound calls, the log latencies are tested for unimodality with Hartigan's dip test and fitted
with one and two Gaussian components. A group is bimodal when a test says so *and* the two
modes are far apart and the minor one is not negligible. The finding describes both modes, says
whether the slow one looks like a timeout, and names the attribute values that separate the
slow requests from the fast ones (via :func:`forensics.analysis.compare`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._db import query_arrow
from ..analysis._tree import is_error_sql
from ..analysis.compare import DIMENSIONS, value_shares_sql
from ..findings import Findings
from ..stats import dip_test, two_mode_mixture
from ._common import calls_sql, check, clean, fmt_ms, near_miss, rows, source_sql, temp_table, to_findings
from ._normalize import server_operation_sql
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case

#: timeouts people configure, in ms: a tight slow mode near one of these is "timeout-like"
ROUND_TIMEOUTS_MS = (100, 200, 250, 300, 500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 10000,
                     15000, 20000, 30000, 60000, 120000)
_KEYS = ("side", "service", "operation", "target", "target_operation")
#: dimensions that cannot separate two modes of one group (constant within it), or that describe
#: the outcome (errors are reported as the slow mode's error share) rather than a cause
_NOT_CAUSES = {"service", "name", "kind", "status", "status_message", "http_status_code"}
_OUTCOME_ATTRIBUTES = [f"attributes.{k}" for k in (
    "error", "error.type", "error.message", "exception.type", "exception.message", "exception.stacktrace",
    "otel.status_code", "otel.status_description", "rpc.grpc.status_code", "http.status_code",
    "http.response.status_code")]


def _candidates_sql(case: "Case") -> str:
    server = (f"SELECT 'server' AS side, s.service, {server_operation_sql('s')} AS operation, "
              "NULL::VARCHAR AS target, NULL::VARCHAR AS target_operation, s.trace_id, s.span_id, "
              f"s.start_time, s.duration_ms, coalesce({is_error_sql('s')}, false) AS is_error, {source_sql('s')} AS source "
              "FROM spans s WHERE s.kind IN ('server', 'consumer')")
    client = ("SELECT 'client', c.service, NULL, c.target, c.target_operation, c.trace_id, c.span_id, "
              f"c.start_time, c.duration_ms, coalesce(c.is_error, false), c.source FROM ({calls_sql(case)}) c")
    return f"SELECT * FROM ({server} UNION ALL {client}) WHERE duration_ms > 0 AND service IS NOT NULL"


@detector("bimodal_latency")
def detect_bimodal_latency(case: "Case", *, min_samples: int = 200, max_dip_p: float = 0.01,
                           min_bic_delta: float = 10.0, min_mode_share: float = 0.02,
                           min_separation: float = 2.0, min_mode_ratio: float = 1.5,
                           max_timeout_spread: float = 0.1, timeout_tolerance: float = 0.05,
                           max_samples: int = 5000, seed: int = 0, explain: bool = False) -> Findings:
    """Operations whose latency has two modes (a fast path and a slow or timeout mode).

    Parameters
    ----------
    min_samples:
        Spans a group needs to be tested (count).
    max_dip_p:
        Dip-test p-value below which unimodality is rejected. A group also counts as multimodal
        when two mixture components beat one by ``min_bic_delta``.
    min_bic_delta:
        BIC(one component) - BIC(two components) that counts as strong evidence for two modes.
    min_mode_share:
        Share (0-1) of the smaller mode; below it the second mode is noise.
    min_separation:
        Ashman's D between the two modes in log latency (D > 2: clearly separated).
    min_mode_ratio:
        Centre of the slow mode / centre of the fast mode (ms/ms).
    max_timeout_spread:
        The slow mode is "tight" when (p90 - p10) / p50 of its durations is at most this.
    timeout_tolerance:
        Relative distance of the slow mode's median to a round timeout value
        (:data:`ROUND_TIMEOUTS_MS`) that counts as "at" that value.
    max_samples:
        Larger groups are subsampled deterministically (by span id hash) for the tests.
    seed:
        Random state of the mixture fit.
    explain:
        Also report near misses (groups that failed exactly one criterion).

    Notes
    -----
    A slow mode is *timeout-like* when it is tight and either sits at a round timeout value or
    mostly errors (>= 50%). Severity: high for a timeout-like mode that mostly errors, medium
    when the slow mode holds >= 10% of requests or is timeout-like, low otherwise.
    """
    thresholds = {"min_samples": min_samples, "max_dip_p": max_dip_p, "min_bic_delta": min_bic_delta,
                  "min_mode_share": min_mode_share, "min_separation": min_separation,
                  "min_mode_ratio": min_mode_ratio, "max_timeout_spread": max_timeout_spread,
                  "timeout_tolerance": timeout_tolerance}
    records: list[dict[str, Any]] = []
    with temp_table(case, _candidates_sql(case)) as cand:
        groups_sql = (f"SELECT {', '.join(_KEYS)}, count(*) AS n, row_number() OVER () AS gid, "
                      f"greatest(1, ceil(count(*) / ?))::BIGINT AS stride FROM {cand} "
                      "GROUP BY ALL HAVING count(*) >= ?")
        with temp_table(case, groups_sql, [max_samples, max(int(min_samples), 4)]) as grp:
            on = " AND ".join(f"c.{k} IS NOT DISTINCT FROM g.{k}" for k in _KEYS)
            with temp_table(case, f"SELECT g.gid, c.* FROM {cand} c JOIN {grp} g ON {on}") as spans:
                groups = {r["gid"]: r for r in rows(case, f"SELECT * FROM {grp}")}
                sample = query_arrow(case.con, f"SELECT s.gid, s.duration_ms FROM {spans} s JOIN {grp} g "
                                     "USING (gid) WHERE hash(s.span_id) % g.stride = 0 ORDER BY s.gid")
                gids = sample.column("gid").to_numpy()
                values = np.log(sample.column("duration_ms").to_numpy())
                bounds = np.flatnonzero(np.diff(gids)) + 1
                judged = {}
                for chunk_gids, chunk in zip(np.split(gids, bounds), np.split(values, bounds)):
                    if chunk.size:
                        verdict = _judge(chunk, thresholds, seed, explain)
                        if verdict is not None:
                            judged[int(chunk_gids[0])] = verdict
                if judged:
                    splits = (list(judged), [v["split_ms"] for v in judged.values()])
                    modes = _mode_stats(case, spans, *splits)
                    seps = _separators(case, spans, grp, *splits)
                    for gid, v in judged.items():
                        if gid in modes:
                            rec = _record(groups[gid], modes[gid], seps.get(gid, []), v, thresholds)
                            records.append(near_miss(rec, v["checks"]) if v["failed"] else rec)
    return to_findings(records)


def _judge(log_ms: np.ndarray, thresholds: dict[str, Any], seed: int, explain: bool) -> dict[str, Any] | None:
    """Test one group's log latencies: None (not bimodal, not a near miss) or the verdict
    (split, test statistics, checks and the names of failed criteria)."""
    dip, p = dip_test(log_ms)
    mix = two_mode_mixture(log_ms, seed=seed)
    if mix is None:
        return None
    ratio = math.exp(mix.means[1] - mix.means[0])
    criteria = {
        "modality": [check("max_dip_p", p, thresholds["max_dip_p"], p < thresholds["max_dip_p"]),
                     check("min_bic_delta", mix.bic_delta, thresholds["min_bic_delta"],
                           mix.bic_delta >= thresholds["min_bic_delta"])],
        "share": [check("min_mode_share", mix.minor_share, thresholds["min_mode_share"],
                        mix.minor_share >= thresholds["min_mode_share"])],
        "separation": [check("min_separation", mix.separation, thresholds["min_separation"],
                             mix.separation >= thresholds["min_separation"]),
                       check("min_mode_ratio", ratio, thresholds["min_mode_ratio"],
                             ratio >= thresholds["min_mode_ratio"])],
    }
    passed = {"modality": any(c["passed"] for c in criteria["modality"]),
              "share": criteria["share"][0]["passed"],
              "separation": all(c["passed"] for c in criteria["separation"])}
    failed = [k for k, ok in passed.items() if not ok]
    if len(failed) > 1 or (failed and not explain):
        return None
    checks = [c for cs in criteria.values() for c in cs]
    if passed["modality"]:  # either test is enough: do not list the other as failed
        checks = [{**c, "passed": True} if c["name"] in ("max_dip_p", "min_bic_delta") else c for c in checks]
    stats = {"dip": dip, "dip_p": p, "bic_one": mix.bic_one, "bic_two": mix.bic_two,
             "separation": mix.separation, "sampled": int(log_ms.size)}
    return {"split_ms": float(math.exp(mix.split)), "stats": stats, "checks": checks, "failed": failed}


def _splits_sql() -> str:
    """Per candidate group its split (two list parameters: gids, split_ms)."""
    return "(SELECT unnest(?::BIGINT[]) AS gid, unnest(?::DOUBLE[]) AS split_ms)"


def _mode_stats(case: "Case", spans: str, gids: list, splits: list) -> dict[int, dict[str, Any]]:
    """Exact per-mode statistics over every span of each candidate group (not the sample):
    ``{gid: {"fast": {...}, "slow": {...}}}`` for groups with spans in both modes."""
    q = f"""
SELECT s.gid, s.duration_ms >= k.split_ms AS slow, count(*) AS n, median(duration_ms) AS p50_ms,
  quantile_cont(duration_ms, 0.1) AS p10_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
  avg(is_error::INT) AS error_share, min(start_time) AS first, max(start_time) AS last,
  list(trace_id ORDER BY is_error DESC, start_time, span_id)[1:5] AS exemplars,
  arg_min(source, (NOT is_error, start_time)) AS source
FROM {spans} s JOIN {_splits_sql()} k USING (gid) GROUP BY ALL"""
    out: dict[int, dict[str, Any]] = {}
    for r in rows(case, q, [gids, splits]):
        out.setdefault(r["gid"], {})["slow" if r["slow"] else "fast"] = r
    return {g: m for g, m in out.items() if len(m) == 2}


def _record(group: dict[str, Any], modes: dict[str, Any], separators: list[dict[str, Any]],
            verdict: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    fast, slow = modes["fast"], modes["slow"]
    split_ms, stats = verdict["split_ms"], verdict["stats"]
    n = fast["n"] + slow["n"]
    slow_share = slow["n"] / n
    spread = (slow["p90_ms"] - slow["p10_ms"]) / slow["p50_ms"] if slow["p50_ms"] else math.inf
    nearest = min(ROUND_TIMEOUTS_MS, key=lambda r: abs(slow["p50_ms"] - r) / r)
    at_round = abs(slow["p50_ms"] - nearest) / nearest <= thresholds["timeout_tolerance"]
    tight = spread <= thresholds["max_timeout_spread"]
    erroring = slow["error_share"] >= 0.5
    timeout_like = tight and (at_round or erroring)
    version = next((s["value"] for s in separators if s["dimension"] == "service_version"), None)
    severity = ("high" if timeout_like and erroring else
                "medium" if timeout_like or slow_share >= 0.1 else "low")
    where = (f"{group['service']} {group['operation']}" if group["side"] == "server"
             else f"{group['service']} calls to {group['target']} {group['target_operation']}")
    shape = ""
    if timeout_like:
        shape = (f", a tight cluster at {'the ' + fmt_ms(nearest) + ' timeout' if at_round else fmt_ms(slow['p50_ms'])}"
                 f" with {slow['error_share']:.0%} errors")
    elif slow["error_share"] >= 0.2:
        shape = f" with {slow['error_share']:.0%} errors"
    why = ""
    if separators:
        s0 = separators[0]
        why = (f"; slow requests are mostly {s0['dimension']}={s0['value']} "
               f"({s0['selection_pct']:.0f}% vs {s0['baseline_pct']:.0f}% of fast ones)")
    summary = (f"{where} is bimodal: {1 - slow_share:.0%} of requests take ~{fmt_ms(fast['p50_ms'])} "
               f"and {slow_share:.0%} take ~{fmt_ms(slow['p50_ms'])}{shape}{why}.")
    evidence = {
        "side": group["side"], "count": n, "split_ms": split_ms,
        "modes": [{"name": name, "centre_ms": m["p50_ms"], "p10_ms": m["p10_ms"], "p90_ms": m["p90_ms"],
                   "share": m["n"] / n, "count": m["n"], "error_share": m["error_share"]}
                  for name, m in (("fast", fast), ("slow", slow))],
        "slow_relative_spread": clean(spread), "timeout_like": timeout_like, "tight": tight,
        "nearest_round_timeout_ms": nearest, "at_round_timeout": at_round,
        "separated_by": separators, "exemplar_trace_ids": slow["exemplars"],
        "fast_exemplar_trace_ids": fast["exemplars"][:2], "source": slow["source"],
        **{k: clean(v) for k, v in stats.items()}, "thresholds": thresholds,
    }
    return {"detector": "bimodal_latency", "severity": severity,
            "title": f"bimodal latency: {where}", "service": group["service"],
            "operation": group["operation"], "target": group["target"],
            "target_operation": group["target_operation"], "version": version,
            "start_time": slow["first"], "end_time": slow["last"],
            "score": slow_share * math.log2(max(slow["p50_ms"], 1e-9) / max(fast["p50_ms"], 1e-9)),
            "evidence": evidence, "summary": summary}


def _separators(case: "Case", spans: str, grp: str, gids: list, splits: list, *, min_diff_pct: float = 20.0,
                min_lift: float = 2.0, top: int = 3) -> dict[int, list[dict[str, Any]]]:
    """Per candidate group, the attribute values over-represented among its slow spans (the
    possible causes: status and error attributes are left out, the error share says that; the
    value-share table of :func:`forensics.analysis.compare`, computed for all groups at once,
    over the same deterministic subsample of at most ``max_samples`` spans per group as the
    tests: counts are sample counts, shares estimate the group's)."""
    dims = [d for d in DIMENSIONS if d not in _NOT_CAUSES]
    cols = ", ".join([f"s.{d}" for d in dims] + ["s.attributes", "s.resource_attributes"])
    flagged = (f"SELECT m.gid, {cols}, m.duration_ms >= k.split_ms AS _sel, m.duration_ms < k.split_ms AS _base "
               f"FROM {spans} m JOIN {_splits_sql()} k USING (gid) JOIN {grp} g USING (gid) "
               "JOIN spans s ON s.trace_id = m.trace_id AND s.span_id = m.span_id "
               "WHERE hash(m.span_id) % g.stride = 0")
    shares, params = value_shares_sql(flagged, dims, by="gid", exclude=_OUTCOME_ATTRIBUTES)
    q = f"""
SELECT * FROM ({shares}) WHERE diff_pct >= ? AND lift >= ?
QUALIFY row_number() OVER (PARTITION BY gid ORDER BY diff_pct DESC, selection_count DESC, dimension, value) <= ?"""
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows(case, q, [gids, splits] + params + [min_diff_pct, min_lift, top]):
        gid = r.pop("gid")
        out.setdefault(gid, []).append({k: clean(v) for k, v in r.items()})
    for v in out.values():
        v.sort(key=lambda r: (-r["diff_pct"], -r["selection_count"]))
    return out
