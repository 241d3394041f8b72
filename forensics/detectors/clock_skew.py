"""Clock skew: server spans that start before, or end after, the client span that called them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.clock_skew import adjusted_pairs_sql, edges_sql, judged_pairs_sql, span_shifts
from ..findings import Findings
from ._common import check, clean, fmt_ms, near_miss, rows, temp_table, to_findings
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case


@detector("clock_skew")
def detect_clock_skew(case: "Case", *, tolerance_ms: float = 1.0, min_skew_ms: float = 5.0,
                      min_violations: int = 1, min_violations_medium: int = 3,
                      min_violation_share_medium: float = 0.5, explain: bool = False) -> Findings:
    """Hosts whose clock is off: their server spans stick out of the client spans calling them.

    Only cross-host client -> server pairs are judged (see :mod:`forensics.analysis.clock_skew`);
    a pair violates when the server span starts more than the pair's tolerance before its
    client span, or ends more than that after it while being no longer than it (see
    :func:`forensics.analysis.clock_skew.judged_pairs_sql`: a server span longer than its client
    whose start agrees, such as a hung request the client gave up on, is not skew). The pair's
    tolerance is ``tolerance_ms`` plus the timestamp resolution of both hosts, read from the
    data (an exporter writing whole milliseconds rounds each side by up to 1 ms). Per server
    host (``host_name``, else the service), the offset estimate is the median pair offset
    (midpoint method: positive means the host's clock is ahead). Callers' times are first
    corrected by their own clock's estimated shift, so a host downstream of a skewed one is not
    blamed for it. Correct the times with :func:`forensics.analysis.clock_skew.adjust_clock_skew`.

    Parameters
    ----------
    tolerance_ms:
        Slack (ms), on top of the timestamp resolutions, before a server span sticking out of
        its client span counts.
    min_skew_ms:
        Smallest offset (ms) reported: below it a server span ending a little after its client
        (a span ended after the response was written, a busy scheduler) is as likely as a clock
        offset, and NTP keeps hosts of one network within about a millisecond anyway. The
        offset must also exceed the pairs' tolerance.
    min_violations:
        Violating pairs a host needs (count); one pair is enough, as for Jaeger's adjuster, when
        its offset clears ``min_skew_ms``.
    min_violations_medium:
        Violating pairs a host needs for severity medium (fewer: low; one trace is anecdotal).
    min_violation_share_medium:
        Share (0-1) of the host's pairs that must violate for medium (a systematic offset that
        distorts every waterfall and latency split across that boundary).
    explain:
        Also report hosts with a violation that failed ``min_violations`` or ``min_skew_ms``.
    """
    thresholds = {"tolerance_ms": tolerance_ms, "min_skew_ms": min_skew_ms, "min_violations": min_violations,
                  "min_violations_medium": min_violations_medium,
                  "min_violation_share_medium": min_violation_share_medium}
    records = []
    with temp_table(case, edges_sql()) as edges, \
            span_shifts(case, edges, tolerance_ms=tolerance_ms) as shifts:
        judged = judged_pairs_sql(f"({adjusted_pairs_sql(edges, shifts)})", ("caller_shift_us",))
        for r in rows(case, _hosts_sql(judged), {"tol_us": tolerance_ms * 1000.0}):
            off = abs(r["offset_ms"]) if r["offset_ms"] is not None else 0.0
            checks = [check("min_violations", r["violations"], min_violations, r["violations"] >= min_violations),
                      check("min_skew_ms", round(off, 3), max(min_skew_ms, r["tolerance_ms"]),
                            off >= max(min_skew_ms, r["tolerance_ms"]))]
            if not all(c["passed"] for c in checks) and not explain:
                continue
            rec = _record(r, thresholds)
            records.append(rec if all(c["passed"] for c in checks) else near_miss(rec, checks))
    return to_findings(records)


def _hosts_sql(judged: str) -> str:
    """Per server host with a violating pair: counts, offset quantiles (ms, over the pairs that
    say something about the clocks), tolerance and resolutions (ms), the usual caller and
    exemplars (named parameter ``$tol_us``). Modes and exemplars break ties by value, so every
    engine picks the same."""
    worst = "(-abs(offset_us), trace_id, span_id)"
    return f"""
WITH p AS MATERIALIZED ({judged}),
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
    count(offset_us) AS timed_pairs, median(offset_us) / 1e3 AS offset_ms,
    quantile_cont(offset_us, 0.1) / 1e3 AS p10_offset_ms, quantile_cont(offset_us, 0.9) / 1e3 AS p90_offset_ms,
    max(tol_us) / 1e3 AS tolerance_ms, max(res_us) / 1e3 AS resolution_ms, max(parent_res_us) / 1e3 AS caller_resolution_ms,
    count(*) FILTER (WHERE offset_us IS NULL) AS longer_pairs, count(DISTINCT parent_host) AS parent_hosts,
    min(start_time) FILTER (WHERE bad) AS first, max(start_time) FILTER (WHERE bad) AS last,
    min_by(trace_id, {worst}, 5) FILTER (WHERE bad) AS exemplars,
    arg_min(source, {worst}) FILTER (WHERE bad) AS source
  FROM p GROUP BY host
)
SELECT agg.host, svc.service, agg.pairs, agg.violations, agg.timed_pairs, agg.offset_ms, agg.p10_offset_ms,
  agg.p90_offset_ms, agg.tolerance_ms, agg.resolution_ms, agg.caller_resolution_ms, agg.longer_pairs,
  caller.parent_host, agg.parent_hosts, agg.first, agg.last, agg.exemplars, agg.source
FROM agg LEFT JOIN svc ON svc.host = agg.host LEFT JOIN caller ON caller.host = agg.host
WHERE agg.violations > 0 ORDER BY agg.violations DESC, agg.host
"""


def _record(r: dict[str, Any], thresholds: dict[str, Any]) -> dict[str, Any]:
    share = r["violations"] / r["pairs"]
    off = r["offset_ms"] or 0.0
    direction = "ahead of" if off > 0 else "behind"
    medium = (r["violations"] >= thresholds["min_violations_medium"]
              and share >= thresholds["min_violation_share_medium"])
    if r["pairs"] == 1:
        pairs = "its one server span called from another host sticks out of the client span that called it"
    else:
        pairs = (f"{r['violations']} of its {r['pairs']} server spans ({share:.0%}) start before or end after "
                 f"the client span that called them")
    summary = f"The clock of {r['host']} ({r['service']}) looks {fmt_ms(abs(off))} {direction} its callers' clocks: {pairs}."
    evidence = {
        "host": r["host"], "pairs": r["pairs"], "violations": r["violations"], "violation_share": share,
        "offset_ms": clean(off), "p10_offset_ms": clean(r["p10_offset_ms"]),
        "p90_offset_ms": clean(r["p90_offset_ms"]), "pairs_with_offset": r["timed_pairs"],
        "longer_server_spans": r["longer_pairs"], "tolerance_ms": clean(r["tolerance_ms"]),
        "resolution_ms": clean(r["resolution_ms"]), "caller_resolution_ms": clean(r["caller_resolution_ms"]),
        "caller_host": r["parent_host"], "caller_hosts": r["parent_hosts"],
        "exemplar_trace_ids": r["exemplars"], "source": r["source"], "thresholds": thresholds,
    }
    return {"detector": "clock_skew", "severity": "medium" if medium else "low",
            "title": f"clock skew on {r['host']}", "service": r["service"], "operation": None,
            "target": None, "target_operation": None, "version": None, "start_time": r["first"],
            "end_time": r["last"], "score": abs(clean(off) or 0.0), "evidence": evidence, "summary": summary}
