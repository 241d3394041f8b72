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
from scipy.stats import mannwhitneyu

from .._db import query_arrow, run
from ..analysis._tree import id_order_sql
from ..analysis.compare import DIMENSIONS, value_shares_sql
from ..findings import Findings
from ..semantics import is_error_sql, server_operation_sql
from ..stats import dip_test, two_mode_mixture
from ._calls import call_tables
from ._common import (add_sources, check, clean, fmt_ms, near_miss, rows, span_key_sql, temp_table,
                      to_findings)
from ._skipped import too_little_data
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


def _groups_sql(calls: str, keys: str) -> str:
    """Per raw group (side, rkey): its group's gid, size n, stride, columns and ``tested`` (named
    parameters ``$min_samples``, ``$max_samples``, ``$min_gap_ms``, ``$min_ratio``).

    Groups are (side, service, operation, target, target_operation) over server/consumer spans
    and outbound calls (tables ``calls`` and ``keys`` of
    :func:`forensics.detectors._calls.call_tables`) with a positive duration. A raw group is
    the service, name, route and method of a server span (``rkey`` hashes them; its operation
    is normalized once per raw group), or a call's ``kid``. gids number groups in key order.
    A group is ``tested`` when it has ``$min_samples`` spans and its range of durations could
    hold two modes at least ``$min_gap_ms`` apart and ``$min_ratio`` times slower (a cheap
    bound that spares the mixture fit of every fast, narrow operation).
    """
    null = "CAST(NULL AS VARCHAR)"
    return f"""
WITH named AS (
  SELECT 'server' AS side, r.rkey, r.n, r.lo, r.hi, r.service, {server_operation_sql('r')} AS operation,
    {null} AS target, {null} AS target_operation
  FROM (SELECT {_SERVER_KEY} AS rkey, count(*) AS n, min(duration_ms) AS lo, max(duration_ms) AS hi,
               any_value(service) AS service, any_value(name) AS name, any_value(http_route) AS http_route,
               any_value(http_method) AS http_method
        FROM spans s WHERE {_SERVER_WHERE} GROUP BY 1) r
  UNION ALL
  SELECT 'client', c.rkey, c.n, c.lo, c.hi, k.service, {null}, k.target, k.target_operation
  FROM (SELECT kid AS rkey, count(*) AS n, min(duration_ms) AS lo, max(duration_ms) AS hi FROM {calls}
        WHERE duration_ms > 0 GROUP BY kid) c
  JOIN {keys} k ON k.kid = c.rkey WHERE k.service IS NOT NULL
),
grp AS (
  SELECT *, dense_rank() OVER (ORDER BY side, service, operation, target, target_operation) AS gid,
    n >= $min_samples AND hi - lo >= $min_gap_ms AND hi >= $min_ratio * lo AS tested FROM (
    SELECT side, service, operation, target, target_operation, sum(n) AS n, min(lo) AS lo, max(hi) AS hi
    FROM named GROUP BY side, service, operation, target, target_operation)
)
SELECT nm.side, nm.rkey, g.gid, g.n, g.tested, CAST(greatest(1, ceil(g.n / $max_samples)) AS BIGINT) AS stride,
  g.service, g.operation, g.target, g.target_operation
FROM named nm JOIN grp g ON g.side = nm.side AND g.service = nm.service
  AND g.operation IS NOT DISTINCT FROM nm.operation AND g.target IS NOT DISTINCT FROM nm.target
  AND g.target_operation IS NOT DISTINCT FROM nm.target_operation"""


#: server/consumer spans that are latency samples, and their raw group key
_SERVER_WHERE = "s.kind IN ('server', 'consumer') AND s.duration_ms > 0 AND s.service IS NOT NULL"
_SERVER_KEY = "hash(s.service, s.name, s.http_route, s.http_method)"


def _samples_sql(calls: str, groups: str) -> str:
    """Every latency sample of a tested group (``groups``: :func:`_groups_sql`): gid, sid (span
    key), tb (orders span ids), start_time, duration_ms, is_error and ``sampled``: in the
    deterministic subsample of about ``max_samples`` spans per group, every ``stride``-th by a
    key read from the trace and span id digits (random ids, and every engine picks the same
    spans)."""
    def cols(s: str, g: str) -> str:
        tb = id_order_sql(f"{s}.span_id")
        return (f"{tb} AS tb, ({id_order_sql(f'{s}.trace_id')} + {tb}) % {g}.stride = 0 AS sampled, "
                f"{s}.start_time, {s}.duration_ms")
    return f"""
SELECT g.gid, {span_key_sql('s')} AS sid, {cols('s', 'g')}, coalesce({is_error_sql('s')}, false) AS is_error
FROM spans s JOIN {groups} g ON g.side = 'server' AND g.rkey = {_SERVER_KEY} AND g.tested
WHERE {_SERVER_WHERE}
UNION ALL
SELECT c.gid, c.sid, {cols('s', 'c')}, c.is_error
FROM (SELECT g.gid, g.stride, c.sid, coalesce(c.is_error, false) AS is_error
      FROM {calls} c JOIN {groups} g ON g.side = 'client' AND g.rkey = c.kid AND g.tested WHERE c.duration_ms > 0) c
JOIN spans s ON {span_key_sql('s')} = c.sid"""


@detector("bimodal_latency")
def detect_bimodal_latency(case: "Case", *, min_samples: int = 10, max_dip_p: float = 0.01,
                           min_bic_delta: float = 10.0, min_mode_share: float = 0.02,
                           min_separation: float = 2.0, min_mode_ratio: float = 1.5, min_gap_ms: float = 25.0,
                           min_visible_ms: float = 100.0, max_time_separation: float = 0.8,
                           max_timeout_spread: float = 0.1,
                           timeout_tolerance: float = 0.05, max_samples: int = 5000, seed: int = 0,
                           explain: bool = False) -> Findings:
    """Operations whose latency has two modes (a fast path and a slow or timeout mode).

    Parameters
    ----------
    min_samples:
        Spans a group needs to be tested (count; 10 at least, what a two-component fit needs).
        Above it the tests decide: on few points they only reject unimodality when the modes
        are far apart (150 requests, 35 of them 30x slower, are conclusive).
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
    min_gap_ms:
        Centre of the slow mode minus centre of the fast mode (ms) below which two modes are
        not reported: a thread that is runnable waits up to one scheduling period for a CPU
        (Linux CFS: 6 ms x (1 + log2 CPUs), 24 ms from 8 CPUs), so modes closer than that are
        what a busy healthy host looks like ("70% ~4 ms / 30% ~13 ms").
    min_visible_ms:
        Gap (ms) from which the slow mode is user-visible (100 ms: the limit for a response to
        feel instantaneous, Card, Robertson and Mackinlay 1991). A finding is rated above low
        only with a user-visible effect: this gap between modes that the dip test confirms and
        that interleave in time, a slow mode that mostly fails, or a timeout-like slow mode. (The
        mixture alone is not enough above low: two Gaussians beat one on any skewed unimodal
        latency, as on a busy host.)
    max_time_separation:
        Time separation (0-1, :func:`time_separation`) from which the two "modes" are a shift
        over time (every slow request after every fast one: the host slowed down, a deploy)
        rather than two paths taken at the same time; such a shift alone stays low (other
        detectors judge changes over time).
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
    mostly errors (>= 50%). Severity: high for a timeout-like mode that mostly errors; medium
    when the slow mode is user-visible (``min_visible_ms``, mostly failing, or timeout-like) and
    holds >= 10% of requests or is timeout-like; low otherwise. With ``explain``, near misses
    and one record listing the groups skipped for fewer than ``min_samples`` spans.
    """
    thresholds = {"min_samples": min_samples, "max_dip_p": max_dip_p, "min_bic_delta": min_bic_delta,
                  "min_mode_share": min_mode_share, "min_separation": min_separation,
                  "min_mode_ratio": min_mode_ratio, "min_gap_ms": min_gap_ms, "min_visible_ms": min_visible_ms,
                  "max_time_separation": max_time_separation,
                  "max_timeout_spread": max_timeout_spread, "timeout_tolerance": timeout_tolerance}
    records: list[dict[str, Any]] = []
    calls = call_tables(case)
    params = {"min_samples": max(int(min_samples), 10), "max_samples": max_samples,
              # near misses may fail the gap or the ratio: only the sample count bounds what is tested
              "min_gap_ms": 0.0 if explain else min_gap_ms, "min_ratio": 0.0 if explain else min_mode_ratio}
    with temp_table(case, _groups_sql(calls.calls, calls.keys), params) as grp, \
            temp_table(case, _samples_sql(calls.calls, grp)) as spans:
        groups = {r["gid"]: r for r in rows(case, f"SELECT DISTINCT gid, side, service, operation, target, "
                                                  f"target_operation FROM {grp} WHERE tested")}
        if explain:
            records += too_little_data("bimodal_latency", "min_samples", params["min_samples"], [
                {"label": _where(g), "count": g["n"], **{k: g[k] for k in _KEYS}}
                for g in rows(case, f"SELECT DISTINCT side, service, operation, target, target_operation, n "
                                    f"FROM {grp} WHERE n < ?", [params["min_samples"]])], thresholds, unit="spans")
        sample = query_arrow(case.con, f"SELECT gid, duration_ms, epoch_us(start_time) AS t FROM {spans} "
                                       "WHERE sampled ORDER BY gid, duration_ms, t")
        gids = sample.column("gid").to_numpy()
        values = np.log(sample.column("duration_ms").to_numpy())
        times = sample.column("t").to_numpy(zero_copy_only=False).astype(float)
        bounds = np.flatnonzero(np.diff(gids)) + 1
        judged = {}
        for chunk_gids, chunk, when in zip(np.split(gids, bounds), np.split(values, bounds), np.split(times, bounds)):
            if chunk.size:
                verdict = _judge(chunk, when, thresholds, seed, explain)
                if verdict is not None:
                    judged[int(chunk_gids[0])] = verdict
        if judged:
            splits = (list(judged), [v["split_ms"] for v in judged.values()])
            modes = _mode_stats(case, spans, *splits)
            seps = _separators(case, spans, *splits)
            for gid, v in judged.items():
                if gid in modes:
                    rec = _record(groups[gid], modes[gid], seps.get(gid, []), v, thresholds)
                    records.append(near_miss(rec, v["checks"]) if v["failed"] else rec)
    return to_findings(records)


def _judge(log_ms: np.ndarray, times: np.ndarray, thresholds: dict[str, Any], seed: int,
           explain: bool) -> dict[str, Any] | None:
    """Test one group's log latencies (``times``: their start times, epoch microseconds): None (not
    bimodal, not a near miss) or the verdict (split, test statistics, checks and the names of
    failed criteria)."""
    dip, p = dip_test(log_ms)
    mix = two_mode_mixture(log_ms, seed=seed)
    if mix is None:
        return None
    ratio = math.exp(mix.means[1] - mix.means[0])
    gap = math.exp(mix.means[1]) - math.exp(mix.means[0])
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
        "gap": [check("min_gap_ms", round(gap, 3), thresholds["min_gap_ms"], gap >= thresholds["min_gap_ms"])],
    }
    passed = {"modality": any(c["passed"] for c in criteria["modality"]),
              "share": criteria["share"][0]["passed"],
              "separation": all(c["passed"] for c in criteria["separation"]),
              "gap": criteria["gap"][0]["passed"]}
    failed = [k for k, ok in passed.items() if not ok]
    if len(failed) > 1 or (failed and not explain):
        return None
    checks = [c for cs in criteria.values() for c in cs]
    if passed["modality"]:  # either test is enough: do not list the other as failed
        checks = [{**c, "passed": True} if c["name"] in ("max_dip_p", "min_bic_delta") else c for c in checks]
    stats = {"dip": dip, "dip_p": p, "bic_one": mix.bic_one, "bic_two": mix.bic_two,
             "separation": mix.separation, "sampled": int(log_ms.size),
             "time_separation": time_separation(times[log_ms >= mix.split], times[log_ms < mix.split])}
    return {"split_ms": float(math.exp(mix.split)), "stats": stats, "checks": checks, "failed": failed}


def time_separation(slow: np.ndarray, fast: np.ndarray) -> float:
    """How far apart in time the slow and the fast requests are, 0-1: ``|2 AUC - 1|`` where AUC
    is the probability that a slow request starts after a fast one (Mann–Whitney). 0: the two
    modes interleave (two paths at the same time); 1: every slow request comes after (or
    before) every fast one (a level shift over time, not two modes)."""
    if not slow.size or not fast.size:
        return 0.0
    u = mannwhitneyu(slow, fast, alternative="two-sided").statistic
    return float(abs(2.0 * u / (slow.size * fast.size) - 1.0))


def _splits_sql() -> str:
    """Per candidate group its split (two list parameters: gids, split_ms)."""
    return "(SELECT unnest(?::BIGINT[]) AS gid, unnest(?::DOUBLE[]) AS split_ms)"


def _mode_stats(case: "Case", spans: str, gids: list, splits: list) -> dict[int, dict[str, Any]]:
    """Exact per-mode statistics over every span of each candidate group (not the sample):
    ``{gid: {"fast": {...}, "slow": {...}}}`` for groups with spans in both modes. Exemplars
    (trace ids) are the erroring spans first, then the earliest, then by span id; ``source``
    is the first exemplar's."""
    q = f"""
SELECT s.gid, s.duration_ms >= k.split_ms AS slow, count(*) AS n, median(s.duration_ms) AS p50_ms,
  quantile_cont(s.duration_ms, 0.1) AS p10_ms, quantile_cont(s.duration_ms, 0.9) AS p90_ms,
  avg(CAST(s.is_error AS INT)) AS error_share, min(s.start_time) AS first, max(s.start_time) AS last,
  min_by(s.sid, (NOT s.is_error, s.start_time, s.tb), 5) AS exemplar_sids
FROM {spans} s JOIN {_splits_sql()} k USING (gid) GROUP BY ALL"""
    found = rows(case, q, [gids, splits])
    for r in found:
        r["source_sid"] = r["exemplar_sids"][0]
    add_sources(case, found)
    traces = _trace_ids(case, [sid for r in found for sid in r["exemplar_sids"]])
    out: dict[int, dict[str, Any]] = {}
    for r in found:
        r["exemplars"] = [traces.get(sid) for sid in r.pop("exemplar_sids")]
        out.setdefault(r["gid"], {})["slow" if r["slow"] else "fast"] = r
    return {g: m for g, m in out.items() if len(m) == 2}


def _trace_ids(case: "Case", sids: list) -> dict[Any, str]:
    """Trace id per span key (:func:`forensics.detectors._common.span_key_sql`) of ``sids``: a
    filter on one scan of the ids, the keys bound as an IN list."""
    wanted = sorted(set(sids))
    if not wanted:
        return {}
    q = (f"SELECT DISTINCT {span_key_sql('s')} AS sid, s.trace_id FROM spans s "
         f"WHERE {span_key_sql('s')} IN ({', '.join('?' * len(wanted))})")
    return dict(run(case.con, q, wanted))


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
    gap_ms = slow["p50_ms"] - fast["p50_ms"]
    shifted = stats["time_separation"] >= thresholds["max_time_separation"]
    confirmed = stats["dip_p"] < thresholds["max_dip_p"]
    visible = (gap_ms >= thresholds["min_visible_ms"] and confirmed and not shifted) or erroring or timeout_like
    version = next((s["value"] for s in separators if s["dimension"] == "service_version"), None)
    severity = ("high" if timeout_like and erroring else
                "medium" if visible and (timeout_like or slow_share >= 0.1) else "low")
    where = _where(group)
    shape = ""
    if timeout_like:
        shape = (f", a tight cluster at {'the ' + fmt_ms(nearest) + ' timeout' if at_round else fmt_ms(slow['p50_ms'])}"
                 f" with {slow['error_share']:.0%} errors")
    elif slow["error_share"] >= 0.2:
        shape = f" with {slow['error_share']:.0%} errors"
    if shifted:
        shape += (f"; the slow requests are {'the later' if slow['first'] >= fast['first'] else 'the earlier'} "
                  "ones (a shift over time, not two paths at once)")
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
        "gap_ms": clean(gap_ms), "user_visible": visible, "shift_over_time": shifted, "dip_confirmed": confirmed,
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


def _where(group: dict[str, Any]) -> str:
    """How a group is named in titles and summaries."""
    if group["side"] == "server":
        return f"{group['service']} {group['operation']}"
    return f"{group['service']} calls to {group['target']} {group['target_operation']}"


def _separators(case: "Case", spans: str, gids: list, splits: list, *, min_diff_pct: float = 20.0,
                min_lift: float = 2.0, top: int = 3) -> dict[int, list[dict[str, Any]]]:
    """Per candidate group, the attribute values over-represented among its slow spans (the
    possible causes: status and error attributes are left out, the error share says that; the
    value-share table of :func:`forensics.analysis.compare`, computed for all groups at once,
    over the same deterministic subsample of at most ``max_samples`` spans per group as the
    tests: counts are sample counts, shares estimate the group's)."""
    dims = [d for d in DIMENSIONS if d not in _NOT_CAUSES]
    cols = ", ".join([f"s.{d}" for d in dims] + ["s.attributes", "s.resource_attributes"])
    flagged = (f"SELECT m.gid, {cols}, m.duration_ms >= k.split_ms AS _sel, m.duration_ms < k.split_ms AS _base "
               f"FROM {spans} m JOIN {_splits_sql()} k USING (gid) "
               f"JOIN spans s ON {span_key_sql('s')} = m.sid WHERE m.sampled")
    shares, params = value_shares_sql(flagged, dims, by="gid", exclude=_OUTCOME_ATTRIBUTES)
    q = f"""
SELECT gid, dimension, value, selection_pct, baseline_pct, diff_pct, lift, selection_count, baseline_count
FROM ({shares}) WHERE diff_pct >= ? AND lift >= ?
QUALIFY row_number() OVER (PARTITION BY gid ORDER BY diff_pct DESC, selection_count DESC, dimension, value) <= ?"""
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows(case, q, [gids, splits] + params + [min_diff_pct, min_lift, top]):
        gid = r.pop("gid")
        out.setdefault(gid, []).append({k: clean(v) for k, v in r.items()})
    for v in out.values():
        v.sort(key=lambda r: (-r["diff_pct"], -r["selection_count"]))
    return out
