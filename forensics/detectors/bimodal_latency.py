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
from ..analysis._select import Predicate
from ..analysis._tree import is_error_sql
from ..analysis.compare import compare
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
#: dimensions that cannot separate two modes of one group (constant within it)
_CONSTANT = {"service", "name", "kind"}


def _candidates_sql(case: "Case") -> str:
    server = (f"SELECT 'server' AS side, s.service, {server_operation_sql('s')} AS operation, "
              "NULL::VARCHAR AS target, NULL::VARCHAR AS target_operation, s.trace_id, s.span_id, "
              f"s.start_time, s.duration_ms, {is_error_sql('s')} AS is_error, {source_sql('s')} AS source "
              "FROM spans s WHERE s.kind IN ('server', 'consumer')")
    client = ("SELECT 'client', c.service, NULL, c.target, c.target_operation, c.trace_id, c.span_id, "
              f"c.start_time, c.duration_ms, {is_error_sql('c')}, c.source FROM ({calls_sql(case)}) c")
    return f"SELECT * FROM ({server} UNION ALL {client}) WHERE duration_ms > 0 AND service IS NOT NULL"


@detector("bimodal_latency")
def detect_bimodal_latency(case: "Case", *, min_samples: int = 200, max_dip_p: float = 0.01,
                           min_bic_delta: float = 10.0, min_mode_share: float = 0.02,
                           min_separation: float = 2.0, min_mode_ratio: float = 1.5,
                           max_timeout_spread: float = 0.1, timeout_tolerance: float = 0.05,
                           max_samples: int = 20000, seed: int = 0, explain: bool = False) -> Findings:
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
                for chunk_gids, chunk in zip(np.split(gids, bounds), np.split(values, bounds)):
                    if chunk.size == 0:
                        continue
                    rec = _judge(case, spans, groups[int(chunk_gids[0])], chunk, thresholds, seed, explain)
                    if rec is not None:
                        records.append(rec)
    return to_findings(records)


def _judge(case: "Case", spans: str, group: dict[str, Any], log_ms: np.ndarray,
           thresholds: dict[str, Any], seed: int, explain: bool) -> dict[str, Any] | None:
    """Test one group; a finding record, a near-miss record, or None."""
    dip, p = dip_test(log_ms)
    mix = two_mode_mixture(log_ms, seed=seed)
    if mix is None:
        return None
    split_ms = float(math.exp(mix.split))
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
    modes = _mode_stats(case, spans, group["gid"], split_ms)
    if modes is None:
        return None
    stats = {"dip": dip, "dip_p": p, "bic_one": mix.bic_one, "bic_two": mix.bic_two,
             "separation": mix.separation, "sampled": int(log_ms.size)}
    record = _record(case, spans, group, modes, split_ms, stats, thresholds)
    if failed:
        checks = [c for cs in criteria.values() for c in cs]
        if passed["modality"]:  # either test is enough: do not list the other as failed
            checks = [c if c["name"] not in ("max_dip_p", "min_bic_delta") else {**c, "passed": True}
                      for c in checks]
        return near_miss(record, checks)
    return record


def _mode_stats(case: "Case", spans: str, gid: int, split_ms: float) -> dict[str, Any] | None:
    """Exact per-mode statistics over every span of the group (not the sample)."""
    q = f"""
SELECT duration_ms >= ? AS slow, count(*) AS n, median(duration_ms) AS p50_ms,
  quantile_cont(duration_ms, 0.1) AS p10_ms, quantile_cont(duration_ms, 0.9) AS p90_ms,
  avg(is_error::INT) AS error_share, min(start_time) AS first, max(start_time) AS last,
  list(trace_id ORDER BY is_error DESC, start_time, span_id)[1:5] AS exemplars,
  arg_min(source, (NOT is_error, start_time)) AS source
FROM {spans} WHERE gid = ? GROUP BY slow"""
    by = {r["slow"]: r for r in rows(case, q, [split_ms, gid])}
    if True not in by or False not in by:
        return None
    return {"fast": by[False], "slow": by[True]}


def _record(case: "Case", spans: str, group: dict[str, Any], modes: dict[str, Any], split_ms: float,
            stats: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    fast, slow = modes["fast"], modes["slow"]
    n = fast["n"] + slow["n"]
    slow_share = slow["n"] / n
    spread = (slow["p90_ms"] - slow["p10_ms"]) / slow["p50_ms"] if slow["p50_ms"] else math.inf
    nearest = min(ROUND_TIMEOUTS_MS, key=lambda r: abs(slow["p50_ms"] - r) / r)
    at_round = abs(slow["p50_ms"] - nearest) / nearest <= thresholds["timeout_tolerance"]
    tight = spread <= thresholds["max_timeout_spread"]
    erroring = slow["error_share"] >= 0.5
    timeout_like = tight and (at_round or erroring)
    separators = _separators(case, spans, group["gid"], split_ms)
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


def _separators(case: "Case", spans: str, gid: int, split_ms: float, *, min_diff_pct: float = 20.0,
                min_lift: float = 2.0, top: int = 3) -> list[dict[str, Any]]:
    """Attribute values over-represented among the slow spans of a group (compare())."""
    member = f"EXISTS (SELECT 1 FROM {spans} m WHERE m.gid = ? AND m.trace_id = spans.trace_id AND m.span_id = spans.span_id AND m.duration_ms {{}} ?)"
    res = compare(case, Predicate(member.format(">="), [gid, split_ms]),
                  Predicate(member.format("<"), [gid, split_ms]), top=50).dicts()
    out = [{k: clean(v) for k, v in r.items()} for r in res
           if r["dimension"] not in _CONSTANT and r["diff_pct"] >= min_diff_pct
           and (r["lift"] is None or r["lift"] >= min_lift)]
    return out[:top]
