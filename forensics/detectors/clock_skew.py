"""Clock skew: server spans that start before, or end after, the client span that called them."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.clock_skew import adjusted_pairs_sql
from ..findings import Findings
from ._common import check, clean, fmt_ms, near_miss, rows, to_findings
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
    q = f"""
WITH p AS (SELECT *, lead_us < -? OR trail_us < -? AS bad FROM ({adjusted_pairs_sql()}))
SELECT host, mode(service) AS service, count(*) AS pairs, count(*) FILTER (WHERE bad) AS violations,
  median(offset_us) / 1000.0 AS offset_ms, quantile_cont(offset_us, 0.1) / 1000.0 AS p10_offset_ms,
  quantile_cont(offset_us, 0.9) / 1000.0 AS p90_offset_ms,
  mode(parent_host) FILTER (WHERE bad) AS parent_host, count(DISTINCT parent_host) AS parent_hosts,
  min(start_time) FILTER (WHERE bad) AS first, max(start_time) FILTER (WHERE bad) AS last,
  list(trace_id ORDER BY abs(offset_us) DESC, trace_id) FILTER (WHERE bad)[1:5] AS exemplars,
  arg_max(source, abs(offset_us)) FILTER (WHERE bad) AS source
FROM p GROUP BY host HAVING count(*) FILTER (WHERE bad) > 0 ORDER BY violations DESC, host
"""
    tol_us = tolerance_ms * 1000.0
    records = []
    for r in rows(case, q, [tol_us] * 4):
        checks = [check("min_violations", r["violations"], min_violations, r["violations"] >= min_violations)]
        if not checks[0]["passed"] and not explain:
            continue
        rec = _record(r, thresholds)
        records.append(rec if checks[0]["passed"] else near_miss(rec, checks))
    return to_findings(records)


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
