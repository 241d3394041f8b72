"""From signals that moved to ranked candidates: direction, grouping, combination, sentences.

Each signal (a family, a culprit service and a key: an operation, an edge, a pod, a log
template, a metric series) has a robust z (:mod:`forensics.causes.series`). A service's signals
fall into groups (own time, network, errors, calls, logs, resources, events); a group's score is
its strongest signal, counted in the direction that makes a service a suspect (slower, failing
more) in full and in the other direction (faster, quieter) by the family's ``down`` weight;
resource metrics count half (they support what the spans show: a process busier than its peers
is not a cause by itself). The
candidate's score is the root of the sum of its squared group scores (each compressed
beyond :data:`SOFT_CAP`): one signal far out of line
ranks a service, several groups moving together rank it higher, and many small wobbles do not
add up to much. A caller of a strong candidate has its log and call-pattern changes discounted
(:data:`REACTION_WEIGHT`): they are its reactions to that callee. A candidate is *strong* when
its score reaches :data:`STRONG_SCORE`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..detectors._common import fmt_ms, fmt_num

#: a candidate whose combined score reaches this is "strong" (a robust z: the window's typical
#: bucket is this many baseline spreads away); below it the ranking says no candidate stands out
STRONG_SCORE = 6.0
#: signals kept per candidate in the evidence, strongest first
MAX_SIGNALS = 8
#: a signal (or group) is said to have moved when its score reaches this (baseline spreads);
#: only those are named in the sentence and the ``signals`` column
MOVED = 2.0
#: candidates given exemplar traces and a full sentence
DETAILED = 5
#: scores above this are compressed (``c * asinh(z / c)``): a signal 1000 spreads out is not ten
#: times the evidence of one 100 spreads out, and no two huge signals tie at a cap
SOFT_CAP = 20.0
#: weight of a caller's log and call-pattern groups when one of its callees is a strong candidate
REACTION_WEIGHT = 0.25
REACTION_GROUPS = ("logs", "calls")


@dataclass(frozen=True)
class Family:
    """How a family of signals counts: its group, the weight of each direction, and its unit."""

    group: str
    up: float
    down: float
    unit: str  # "ln_ms" (mean ln(1 + ms)), "rel" (ln ratio to the baseline), "share", "calls", "value"


FAMILIES: dict[str, Family] = {
    "self_time": Family("own time", 1.0, 0.5, "ln_ms"),
    "service_time": Family("own time", 1.0, 0.5, "rel"),
    "pod_time": Family("own time", 1.0, 0.5, "rel"),
    "dependency": Family("own time", 1.0, 0.5, "ln_ms"),
    "gap": Family("network", 1.0, 0.0, "ln_ms"),
    "caller_gap": Family("own time", 1.0, 0.0, "ln_ms"),
    "errors": Family("errors", 1.0, 0.0, "share"),
    "calls": Family("calls", 1.0, 1.0, "calls"),
    "call_ops": Family("calls", 1.0, 1.0, "calls"),
    "follow_ups": Family("calls", 1.0, 0.0, "calls"),
    "logs": Family("logs", 1.0, 1.0, "share"),
    "log_volume": Family("logs", 1.0, 0.5, "rel"),
    "metrics": Family("resources", 0.5, 0.25, "value"),
    "events": Family("events", 1.0, 0.0, "value"),
}


def directed(compared: pd.DataFrame) -> pd.DataFrame:
    """``compared`` (:func:`forensics.causes.series.compare_buckets`) with ``score``: z counted
    by direction (see the module docs) and ``group``; rows without a z are dropped."""
    df = compared[np.isfinite(compared["z"].to_numpy(dtype=float))].copy()
    fam = df["family"].map(FAMILIES)
    up = fam.map(lambda f: f.up).to_numpy(dtype=float)
    down = fam.map(lambda f: f.down).to_numpy(dtype=float)
    z = df["z"].to_numpy(dtype=float)
    df["score"] = SOFT_CAP * np.arcsinh(np.where(z >= 0, z * up, -z * down) / SOFT_CAP)
    df["group"] = fam.map(lambda f: f.group)
    return df


def combine(signals: pd.DataFrame, edges: set[tuple[str, str]] | frozenset = frozenset(),
            strong_score: float = STRONG_SCORE) -> pd.DataFrame:
    """Per service: ``score`` (root of the sum of squared group scores), ``groups`` (group ->
    score, strongest first) and ``discounted`` (the callee it reacts to, or None), sorted by
    score, descending (ties by name).

    ``edges`` are the (caller, callee) pairs of the window's calls. A caller of a callee that is
    a strong candidate by itself has its ``logs`` and ``calls`` groups weighted by
    :data:`REACTION_WEIGHT`: what a caller logs and whom it calls changes when a callee fails or
    answers wrongly (a masked exception, a wrong return value), and that change is the callee's.
    """
    if signals.empty:
        return pd.DataFrame(columns=["service", "score", "groups", "discounted"])
    best = signals.groupby(["service", "group"], sort=False)["score"].max().reset_index()
    groups: dict[str, dict[str, float]] = {}
    for service, g in best.groupby("service", sort=False):
        g = g.sort_values("score", ascending=False)
        groups[service] = {r.group: float(r.score) for r in g.itertuples() if r.score > 0}
    raw = {s: math.sqrt(sum(v * v for v in gr.values())) for s, gr in groups.items()}
    rows = []
    for service, gr in groups.items():
        strong_callees = sorted((raw.get(x, 0.0), x) for a, x in edges
                                if a == service and x != service and raw.get(x, 0.0) >= strong_score)
        callee = strong_callees[-1][1] if strong_callees else None
        if callee:
            gr = {k: v * (REACTION_WEIGHT if k in REACTION_GROUPS else 1.0) for k, v in gr.items()}
            gr = dict(sorted(gr.items(), key=lambda kv: -kv[1]))
        rows.append({"service": service, "score": math.sqrt(sum(v * v for v in gr.values())), "groups": gr,
                     "discounted": callee})
    out = pd.DataFrame(rows)
    return out.sort_values(["score", "service"], ascending=[False, True], kind="stable").reset_index(drop=True)


# -- words ------------------------------------------------------------------------------------
def _ms(v: float) -> str:
    """A mean ``ln(1 + ms)`` as milliseconds (one decimal below 10 ms)."""
    if not np.isfinite(v):
        return "n/a"
    ms = math.expm1(v)
    return f"{ms:.1f} ms" if abs(ms) < 10 else fmt_ms(ms)


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%" if v < 0.1 else f"{100 * v:.0f}%"


def natural(row: dict[str, Any]) -> dict[str, Any]:
    """The baseline and window values of a signal in its natural unit (ms, share, calls, ratio)."""
    unit = FAMILIES[row["family"]].unit
    b, w = row["base"], row["win"]
    if unit == "ln_ms":
        return {"baseline_ms": round(math.expm1(b), 3), "window_ms": round(math.expm1(w), 3)}
    if unit == "rel":
        return {"ratio": round(math.exp(w - b), 3)}
    if unit == "share":
        return {"baseline_share": round(b, 5), "window_share": round(w, 5)}
    if unit == "calls":
        return {"baseline_calls": round(b, 3), "window_calls": round(w, 3)}
    return {"baseline": b, "window": w}


def _times(ratio: float) -> str:
    return f"{ratio:.2g}x"


_PHRASES: dict[str, Callable[[dict[str, Any]], str]] = {
    "self_time": lambda r: f"its own time in {r['key']} went from {_ms(r['base'])} to {_ms(r['win'])}",
    "service_time": lambda r: f"its own time (self time of its spans, children excluded) is "
                              f"{_times(math.exp(r['win'] - r['base']))} the baseline",
    "pod_time": lambda r: f"pod {r['key']}'s own time is {_times(math.exp(r['win'] - r['base']))} the service's baseline",
    "dependency": lambda r: f"calls to it from {r['key']} went from {_ms(r['base'])} to {_ms(r['win'])}",
    "gap": lambda r: (f"calls {r['key'].split(' -> ')[0]} -> {r['key'].split(' -> ', 1)[1]} spend "
                      f"{_ms(r['base'])} -> {_ms(r['win'])} outside its server spans (network, queueing)"),
    "caller_gap": lambda r: (f"its {r['key']} all spend more time outside their server spans "
                             f"({_ms(r['base'])} -> {_ms(r['win'])}): the time is on its side of the calls"),
    "errors": lambda r: (f"{_pct(r['win'])} of its {'spans' if r['key'] == '*' else r['key'] + ' spans'} "
                         f"fail where the failure starts (baseline {_pct(r['base'])})"),
    "calls": lambda r: f"{r['key']}: {fmt_num(r['win'])} calls per request (baseline {fmt_num(r['base'])})",
    "call_ops": lambda r: f"{r['key']}: {fmt_num(r['win'])} calls per request (baseline {fmt_num(r['base'])})",
    "follow_ups": lambda r: (f"{r['key']} calls it again after its answers (retries, asking again): "
                             f"{fmt_num(r['win'])} such calls per request (baseline {fmt_num(r['base'])})"),
    "logs": lambda r: (f"log template \"{r['key']}\" is {_pct(r['win'])} of its log lines "
                       f"(baseline {_pct(r['base'])})"),
    "log_volume": lambda r: f"it logs {_times(math.exp(r['win'] - r['base']))} as many lines per request",
    "metrics": lambda r: f"{r['key']} went from {fmt_num(r['base'])} to {fmt_num(r['win'])}",
    "events": lambda r: str(r["key"]),
}


def phrase(row: dict[str, Any]) -> str:
    """One clause describing a signal (``its own time in GET /x went from 3 ms to 25 ms``)."""
    return _PHRASES[row["family"]](row)


def summary(service: str, kind: str, top: list[dict[str, Any]], strong: bool) -> str:
    """The candidate's sentence from its strongest signals."""
    what = service + (" (a dependency seen through its callers)" if kind == "dependency" else "")
    shown: list[dict[str, Any]] = []
    for r in top:
        if r["score"] < MOVED:
            continue
        if r["family"] in ("calls", "call_ops") and any(
                o["family"] in ("calls", "call_ops") and (o["key"].startswith(r["key"]) or r["key"].startswith(o["key"]))
                for o in shown):
            continue  # "GET /search -> inventory" says what "GET /search -> inventory GET /x" already said
        shown.append(r)
    top = shown
    if not top:
        return f"{what}: none of its signals moved beyond {MOVED:g} baseline spreads."
    clauses = "; ".join(phrase(r) for r in top[:3])
    lead = "changed most" if strong else "changed a little (not a strong candidate)"
    return f"{what} {lead}: {clauses}."


def explain(rank: int, cand: dict[str, Any], above: dict[str, Any] | None, inherited: str | None) -> str:
    """Why a candidate ranks where it does: its score and strongest group against the one above,
    and, when its requests slowed down without its own time moving, that it only inherited it."""
    groups = cand["groups"]
    strongest = next(iter(groups.items()), None)
    own = (f"strongest signal group: {strongest[0]} (z {strongest[1]:.1f})" if strongest
           else "no signal moved in its bad direction")
    text = f"rank {rank}, score {cand['score']:.1f}: {own}"
    if above is not None:
        text += f"; below {above['service']} (score {above['score']:.1f})"
    if cand.get("discounted"):
        text += (f"; its log and call-pattern changes count {REACTION_WEIGHT:g}x: they follow from its callee "
                 f"{cand['discounted']}, a strong candidate itself")
    if inherited:
        text += f"; {inherited}"
    return text + "."


def inherited_note(service: str, totals: pd.DataFrame, groups: dict[str, float]) -> str | None:
    """``its requests slowed from 150 ms to 1.0 s (p50) but its own time did not change: the
    time is spent in its calls`` when that is so (from :meth:`SpanSignals.totals`)."""
    t = totals[totals["service"] == service]
    if len(t) < 2 or groups.get("own time", 0.0) >= STRONG_SCORE / 2:
        return None
    b = t[~t["w"]].iloc[0]
    w = t[t["w"]].iloc[0]
    if not (b["p50_ms"] and w["p50_ms"]) or w["p50_ms"] < 1.2 * b["p50_ms"]:
        return None
    return (f"its requests slowed from {fmt_ms(b['p50_ms'])} to {fmt_ms(w['p50_ms'])} (p50) while its own time "
            f"did not change: the extra time is spent in what it calls")
