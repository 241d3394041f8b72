"""Critical path: operations whose own time dominates the critical path of slow traces."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..analysis.critical_path import critical_path_by_operation
from ..findings import Findings
from ._common import check, clean, fmt_ms, near_miss, to_findings
from ._skipped import too_little_data
from .registry import detector

if TYPE_CHECKING:
    from ..case import Case


@detector("critical_path")
def detect_critical_path(case: "Case", *, min_traces: int = 20, slow_quantile: float = 0.95,
                         min_slow_share: float = 0.5, min_share_increase: float = 0.2,
                         min_self_ratio: float = 5.0, min_slow_traces: int = 10,
                         explain: bool = False) -> Findings:
    """Operations that dominate the critical path of the slowest traces of an entry point.

    Per entry point (root service and operation), traces at or above the ``slow_quantile`` of
    root duration are the slow ones; for each (service, operation) the share of the slow
    traces' critical-path time spent in its own code (self time) is compared with its share
    over all traces (see :func:`forensics.analysis.critical_path.critical_path_by_operation`).

    Parameters
    ----------
    min_traces:
        Traces an entry point needs before its slow quantile means anything (count).
    slow_quantile:
        Quantile (0-1) of root duration from which a trace is slow (default p95).
    min_slow_share:
        Share (0-1) of slow traces' critical-path time an operation must hold to be reported.
    min_share_increase:
        Increase of that share over all traces (0-1) that, together with ``min_self_ratio``,
        makes the operation the reason the slow traces are slow: severity medium (otherwise
        low: a hotspot in every trace). The entry operation's own self time is reported only
        with such an increase.
    min_self_ratio:
        Mean self time per slow trace / mean self time per trace (ms/ms) needed for medium:
        the operation itself got slower (or ran more), not only its share shifted. Natural
        long tails in healthy services stay below ~3.
    min_slow_traces:
        Slow traces needed for medium (count); fewer is anecdotal and stays low.
    explain:
        Also report near misses (half of ``min_slow_share`` or short of ``min_traces``), and one
        record listing the entry points skipped for fewer than ``min_traces`` traces.
    """
    thresholds = {"min_traces": min_traces, "slow_quantile": slow_quantile, "min_slow_share": min_slow_share,
                  "min_share_increase": min_share_increase, "min_self_ratio": min_self_ratio,
                  "min_slow_traces": min_slow_traces}
    records: list[dict[str, Any]] = []
    found = critical_path_by_operation(case, slow_quantile=slow_quantile).dicts()
    if explain:
        entries = {(r["entry_service"], r["entry_operation"]): r["traces"] for r in found if r["traces"] < min_traces}
        records += too_little_data("critical_path", "min_traces", min_traces, [
            {"label": f"{svc} {op}", "count": n, "entry_service": svc, "entry_operation": op}
            for (svc, op), n in entries.items()], thresholds, unit="traces")
    for r in found:
        slow_share, share = r["slow_share"], r["share"]
        if slow_share is None or share is None or not r["slow_traces"]:
            continue
        increase = slow_share - share
        is_entry = (r["service"], r["operation"]) == (r["entry_service"], r["entry_operation"])
        if is_entry and increase < min_share_increase:
            continue
        checks = [check("min_traces", r["traces"], min_traces, r["traces"] >= min_traces),
                  check("min_slow_share", slow_share, min_slow_share, slow_share >= min_slow_share)]
        failed = [c for c in checks if not c["passed"]]
        if failed and not (explain and len(failed) == 1 and slow_share >= min_slow_share / 2):
            continue
        ratio = (r["slow_self_ms"] / r["slow_traces"]) / (r["self_ms"] / r["traces"]) if r["self_ms"] else 0.0
        rec = _record(r, increase, thresholds, medium=increase >= min_share_increase and ratio >= min_self_ratio
                      and r["slow_traces"] >= min_slow_traces)
        rec["evidence"]["self_ratio"] = clean(ratio)
        records.append(near_miss(rec, checks) if failed else rec)
    return to_findings(records)


def _record(r: dict[str, Any], increase: float, thresholds: dict[str, Any], *, medium: bool) -> dict[str, Any]:
    entry = f"{r['entry_service']} {r['entry_operation']}"
    op = f"{r['service']} {r['operation']}"
    summary = (f"In the slowest {1 - thresholds['slow_quantile']:.0%} of {entry} requests "
               f"(>= {fmt_ms(r['p95_root_ms'])}), {op} accounts for {r['slow_share']:.0%} of the "
               f"critical path (vs {r['share']:.0%} across all {r['traces']} requests).")
    evidence = {
        "entry_service": r["entry_service"], "entry_operation": r["entry_operation"],
        "traces": r["traces"], "slow_traces": r["slow_traces"], "on_path_traces": r["on_path_traces"],
        "slow_cut_ms": clean(r["p95_root_ms"]), "share": clean(r["share"]),
        "slow_share": clean(r["slow_share"]), "share_increase": clean(increase),
        "self_ms": clean(r["self_ms"]), "slow_self_ms": clean(r["slow_self_ms"]),
        "exemplar_trace_ids": r["exemplar_trace_ids"], "source": r["source"], "thresholds": thresholds,
    }
    return {"detector": "critical_path", "severity": "medium" if medium else "low",
            "title": f"critical path of slow {entry} dominated by {op}",
            "service": r["service"], "operation": r["operation"], "target": None,
            "target_operation": None, "version": None, "start_time": r["slow_first"], "end_time": r["slow_last"],
            "score": float(r["slow_share"]), "evidence": evidence, "summary": summary}
