"""Root-cause ranking: which service's own behaviour changed when the incident began.

:func:`rank_causes` compares a window (the incident) with a baseline (before it) and ranks
services, and the uninstrumented dependencies seen through their callers, by how far their
*own* signals moved: the own time of their requests (callees excluded), the time calls to them spend outside
their server spans (network, queueing), failures that start at them, the calls they make,
their log templates, their pods' resource metrics, their Kubernetes events and deploys. Time
and failures a service only inherits from its callees are not charged to it.

Modules: :mod:`~forensics.causes.periods` (window, baseline), :mod:`~forensics.causes.onset`
(the onset when no window is given),
:mod:`~forensics.causes.spans`, :mod:`~forensics.causes.others` (signals per bucket, SQL),
:mod:`~forensics.causes.series` (robust z per signal), :mod:`~forensics.causes.scoring`
(combination and sentences), :mod:`~forensics.causes.result` (the :class:`Causes` table).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .._db import run, setting
from .._duplicates import unique_spans
from ..errors import UsageError
from .others import event_signals, log_buckets, metric_buckets
from .periods import PeriodLike, Periods, resolve_periods
from .result import Causes
from .scoring import DETAILED, MAX_SIGNALS, MOVED, STRONG_SCORE, combine, directed, explain, inherited_note, natural, summary
from .series import compare_buckets, with_pod_baselines
from .spans import EXEMPLAR_FAMILIES, SpanSignals

if TYPE_CHECKING:
    from ..case import Case

__all__ = ["Causes", "Periods", "rank_causes"]

#: families whose strongest key names the candidate's operation
_OPERATION_FAMILIES = ("self_time", "errors", "call_ops", "calls", "gap", "dependency")
#: calls per request a call to one dependency operation needs in one period to count on its own
#: (calls to a dependency as a whole always count): operations named by their arguments (cache
#: keys, unnormalized URLs) would otherwise appear and vanish as noise
MIN_OPERATION_CALLS = 0.5


def rank_causes(case: "Case", *, window: PeriodLike = None, baseline: PeriodLike = None, buckets: int = 10,
                strong_score: float = STRONG_SCORE) -> Causes:
    """Rank candidate root causes of an incident by how much their own behaviour changed.

    Parameters
    ----------
    case:
        The case (spans; logs, metrics and events when loaded).
    window:
        The incident: ``(start, end)`` (datetimes, naive = UTC, or ISO 8601 strings; either may
        be None for the edge of the data) or ``"START..END"``. Default: from the onset (the
        strongest worsening change point of the entry points' latency or error rate, else of
        all spans' error rate or the share of warning logs, else the latest deploy) to the
        recovery or the end of the data (:mod:`forensics.causes.periods`).
    baseline:
        The period to compare with, same forms. Default: from the start of the data to the
        window's start.
    buckets:
        The shorter of the two periods is cut into this many buckets (the other at the same
        width); every signal is a per-bucket series.
    strong_score:
        Combined score (a robust z, unitless) a candidate needs to count as strong.

    Returns
    -------
    Causes
        Candidates, most likely first, each with a sentence, ``explain`` and evidence. Empty
        (with ``note``) when no onset is found and no window is given.

    Raises
    ------
    UsageError
        Empty case; a window or baseline outside the data or overlapping; no data in the
        window or the baseline.

    Examples
    --------
    ``forensics.rank_causes(case).top`` is the most likely cause (a dict with ``service``,
    ``summary``, ``evidence``...) when one is strong, else None; ``causes.note`` says why.
    """
    if buckets < 2:
        raise UsageError(f"buckets must be at least 2, got {buckets}")
    # the ranking's tables are sets: DuckDB may build and join them in any order (at 10M spans
    # keeping the insertion order made CREATE TABLE AS run on one thread: 68.6 s -> 47.5 s)
    with unique_spans(case) as hidden, setting(case.con, "preserve_insertion_order", False):
        causes = _rank(case, window, baseline, buckets, strong_score)
    if hidden:
        causes.note = "; ".join(filter(None, [causes.note, f"{hidden} repeated span rows (overlapping exports) "
                                                               "counted once"]))
    return causes


def _rank(case: "Case", window: PeriodLike, baseline: PeriodLike, buckets: int, strong_score: float) -> Causes:
    periods = resolve_periods(case, window, baseline)
    if periods is None:
        return Causes.empty(note="no change point in the entry points' latency or error rate and no deploy: "
                                 "nothing to explain (pass window=START..END to compare a period of your choice)")
    _check_overlap(periods)
    width_s = max(min(periods.window_s, periods.baseline_s) / buckets, 0.001)
    with SpanSignals(case, periods, width_s) as sig:
        frames = [sig.time_buckets(), sig.error_buckets(), sig.call_buckets(),
                  log_buckets(case, periods, width_s, *sig.reactions(), pods=sig.pods),
                  metric_buckets(case, periods, width_s, pods=sig.pods)]
        frames = [f for f in frames if not f.empty]
        if not frames:
            raise UsageError(f"no spans, logs or metrics in the {periods.describe()}: choose periods that hold data")
        _check_both_periods(pd.concat(frames, ignore_index=True), periods)
        compared = compare_buckets(with_pod_baselines(pd.concat(frames, ignore_index=True)))
        rare = (compared["family"] == "call_ops") & (compared[["base", "win"]].max(axis=1) < MIN_OPERATION_CALLS)
        compared = compared[~rare]
        events = event_signals(case, periods, width_s, pods=sig.pods)
        if not events.empty:
            compared = pd.concat([compared, events], ignore_index=True)
        signals = directed(compared)
        ranked = combine(signals, sig.edges(), strong_score)
        services = {r[0] for r in run(case.con, "SELECT DISTINCT service FROM spans")}
        records = _records(ranked, signals, sig, services, strong_score)
    note = "" if records and records[0]["strong"] else (
        f"no strong candidate: no service's own behaviour moved by a combined score of {strong_score:g} or more"
        + (f" (the highest is {records[0]['service']} at {records[0]['score']:.1f})" if records else ""))
    return Causes.from_records(records, periods=periods, note=note)


def _check_overlap(p: Periods) -> None:
    if p.baseline_start < p.window_end and p.window_start < p.baseline_end:
        raise UsageError(f"baseline {p.baseline_start.isoformat()}..{p.baseline_end.isoformat()} overlaps the window "
                         f"{p.window_start.isoformat()}..{p.window_end.isoformat()}: choose a baseline outside it")


def _check_both_periods(frame: pd.DataFrame, p: Periods) -> None:
    for is_w, what in ((True, "window"), (False, "baseline")):
        if not frame["w"].eq(is_w).any():
            raise UsageError(f"the {what} holds no spans, logs or metrics ({p.describe()}); choose another {what}")


def _records(ranked: pd.DataFrame, signals: pd.DataFrame, sig: SpanSignals, services: set[str],
             strong_score: float) -> list[dict[str, Any]]:
    totals = sig.totals()
    out: list[dict[str, Any]] = []
    by_service = {s: g.sort_values("score", ascending=False) for s, g in signals.groupby("service", sort=False)}
    for i, cand in enumerate(ranked.to_dict("records")):
        service = cand["service"]
        rows = [r for r in by_service[service].to_dict("records") if r["score"] >= 1.0][:MAX_SIGNALS]
        kind = "service" if service in services else "dependency"
        strong = cand["score"] >= strong_score
        evidence_rows = []
        looked = 0
        for r in rows:
            ev = {"family": r["family"], "group": r["group"], "key": r["key"], "z": round(float(r["z"]), 2),
                  "n_baseline": int(r["n_base"]), "n_window": int(r["n_win"]), **natural(r)}
            if i < DETAILED and looked < 2 and r["family"] in EXEMPLAR_FAMILIES:
                ev["exemplar_trace_ids"] = sig.exemplars(r["family"], service, r["key"])  # span keys for now
                looked += 1
            evidence_rows.append(ev)
        op = next((r["key"] for r in rows if r["family"] in _OPERATION_FAMILIES and r["key"] != "*"), None)
        pod = next((r["key"] for r in rows if r["family"] == "pod_time" and r["score"] >= strong_score / 2), None)
        above = out[-1] if out else None
        out.append({
            "rank": i + 1, "service": service, "kind": kind, "score": round(float(cand["score"]), 3),
            "strong": bool(strong), "signals": ", ".join(g for g, v in cand["groups"].items() if v >= MOVED), "operation": op, "pod": pod,
            "summary": summary(service, kind, rows, strong),
            "explain": explain(i + 1, cand, above, inherited_note(service, totals, cand["groups"])),
            "evidence": {"groups": {k: round(v, 2) for k, v in cand["groups"].items()}, "signals": evidence_rows,
                         "strong_score": strong_score},
            "groups": cand["groups"],
        })
    _exemplar_traces(out, sig)
    for r in out:
        r.pop("groups")
    return out


def _exemplar_traces(records: list[dict[str, Any]], sig: SpanSignals) -> None:
    """Turn the exemplar span keys of every candidate's signals into trace ids (one lookup for
    all) and give each candidate the exemplars of its first signal that has some."""
    signals = [e for r in records for e in r["evidence"]["signals"] if "exemplar_trace_ids" in e]
    traces = sig.trace_ids([k for e in signals for k in e["exemplar_trace_ids"]])
    for e in signals:
        e["exemplar_trace_ids"] = [traces[k] for k in e["exemplar_trace_ids"] if k in traces]
    for r in records:
        r["evidence"]["exemplar_trace_ids"] = next(
            (e["exemplar_trace_ids"] for e in r["evidence"]["signals"] if e.get("exemplar_trace_ids")), [])

