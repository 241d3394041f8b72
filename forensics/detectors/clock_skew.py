"""Clock skew: server spans that start before, or end after, the client span that called them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.clock_skew import adjusted_pairs_sql, edges_sql, span_shifts
from ..findings import Findings
from ._common import check, clean, fmt_ms, near_miss, rows, temp_table, to_findings
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case


@detector("clock_skew")
def detect_clock_skew(case: "Case", *, tolerance_ms: float = 1.0, min_violations: int = 3,
                      explain: bool = False) -> Findings:
    """Hosts whose clock is off: their server spans stick out of the client spans calling them.

    Only cross-host client -> server pairs are judged (see :mod:`forensics.analysis.clock_skew`);
    a pair violates when the server span starts more than ``tolerance_ms`` before the client
    span or ends more than ``tolerance_ms`` after it. Per server host (``host_name``, else the
    service), the offset estimate is the median pair offset (midpoint method: positive means the
    host's clock is ahead). Callers' times are first corrected by their own clock's estimated
    shift, so a host downstream of a skewed one is not blamed for it. Correct the times with
    :func:`forensics.analysis.clock_skew.adjust_clock_skew`.

    Parameters
    ----------
    tolerance_ms:
        Slack (ms) before a server span sticking out of its client span counts; 1 ms absorbs
        rounding of exporters with millisecond timestamps.
    min_violations:
        Violating pairs a host needs (count).
    explain:
        Also report hosts with at least one violation below ``min_violations``.

    Notes
    -----
    Severity: medium when at least half of the host's pairs violate (a systematic offset that
    distorts every waterfall and latency split across that boundary), low otherwise.
    """
    thresholds = {"tolerance_ms": tolerance_ms, "min_violations": min_violations}
    tol_us = tolerance_ms * 1000.0
    records = []
    with temp_table(case, edges_sql()) as edges, \
            span_shifts(case, edges, tolerance_ms=tolerance_ms) as shifts:
        for r in rows(case, _hosts_sql(adjusted_pairs_sql(edges, shifts)), [tol_us] * 2):
            checks = [check("min_violations", r["violations"], min_violations, r["violations"] >= min_violations)]
            if not checks[0]["passed"] and not explain:
                continue
            rec = _record(r, thresholds)
            records.append(rec if checks[0]["passed"] else near_miss(rec, checks))
    return to_findings(records)


def _hosts_sql(pairs: str) -> str:
    """Per server host with a violating pair: counts, offset quantiles (ms), the usual caller
    and exemplars (two ``?``: the tolerance in microseconds). Modes and exemplars break ties
    by value, so every engine picks the same."""
    worst = "(-abs(offset_us), trace_id, span_id)"
    return f"""
WITH p AS MATERIALIZED (SELECT *, lead_us < -? OR trail_us < -? AS bad FROM ({pairs})),
svc AS (
  SELECT host, arg_min(service, (-n, service)) AS service FROM (
    SELECT host, service, count(*) AS n FROM p WHERE service IS NOT NULL GROUP BY host, service) GROUP BY host
),
caller AS (
  SELECT host, arg_min(parent_host, (-n, parent_host)) AS parent_host FROM (
    SELECT host, parent_host, count(*) AS n FROM p WHERE bad AND parent_host IS NOT NULL GROUP BY host, parent_host)
  GROUP BY host
),
agg AS (
  SELECT host, count(*) AS pairs, count(*) FILTER (WHERE bad) AS violations,
    median(offset_us) / 1e3 AS offset_ms, quantile_cont(offset_us, 0.1) / 1e3 AS p10_offset_ms,
    quantile_cont(offset_us, 0.9) / 1e3 AS p90_offset_ms, count(DISTINCT parent_host) AS parent_hosts,
    min(start_time) FILTER (WHERE bad) AS first, max(start_time) FILTER (WHERE bad) AS last,
    min_by(trace_id, {worst}, 5) FILTER (WHERE bad) AS exemplars,
    arg_min(source, {worst}) FILTER (WHERE bad) AS source
  FROM p GROUP BY host
)
SELECT agg.host, svc.service, agg.pairs, agg.violations, agg.offset_ms, agg.p10_offset_ms, agg.p90_offset_ms,
  caller.parent_host, agg.parent_hosts, agg.first, agg.last, agg.exemplars, agg.source
FROM agg LEFT JOIN svc ON svc.host = agg.host LEFT JOIN caller ON caller.host = agg.host
WHERE agg.violations > 0 ORDER BY agg.violations DESC, agg.host
"""


def _record(r: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    share = r["violations"] / r["pairs"]
    off = r["offset_ms"]
    direction = "ahead of" if off > 0 else "behind"
    summary = (f"The clock of {r['host']} ({r['service']}) looks {fmt_ms(abs(off))} {direction} its callers' clocks: "
               f"{r['violations']} of its {r['pairs']} server spans ({share:.0%}) start before or end after "
               f"the client span that called them.")
    evidence = {
        "host": r["host"], "pairs": r["pairs"], "violations": r["violations"], "violation_share": share,
        "offset_ms": clean(off), "p10_offset_ms": clean(r["p10_offset_ms"]),
        "p90_offset_ms": clean(r["p90_offset_ms"]), "caller_host": r["parent_host"],
        "caller_hosts": r["parent_hosts"], "exemplar_trace_ids": r["exemplars"], "source": r["source"],
        "thresholds": thresholds,
    }
    return {"detector": "clock_skew", "severity": "medium" if share >= 0.5 else "low",
            "title": f"clock skew on {r['host']}", "service": r["service"], "operation": None,
            "target": None, "target_operation": None, "version": None, "start_time": r["first"],
            "end_time": r["last"], "score": abs(clean(off) or 0.0), "evidence": evidence, "summary": summary}
