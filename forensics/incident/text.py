"""The sentence that tells an incident: what changed, when, where, why, and who it hit.

    10:15 deploy catalog-service 1.7.9 -> 1.8.0; from 10:16 catalog-service GET /search p99
    359 ms -> 2.5 s; cause: N+1: catalog-service GET /search calls inventory-service
    GET /inventory/{id} ~50x per request; 51% of api-gateway requests affected (GET /search p99 +2.1 s)
"""
from __future__ import annotations

from typing import Any

from ..units import fmt_ms, fmt_pct, fmt_time


def trigger_text(trigger: dict[str, Any] | None) -> str:
    if not trigger:
        return "no deploy, config or Kubernetes change found before it"
    return f"{fmt_time(trigger['time'])} {trigger['label']}"


def change_text(inc: dict[str, Any]) -> str:
    """``from 10:16 catalog-service GET /search p99 359 ms -> 2.5 s (until 10:40)``."""
    m = inc["measured"]
    if inc.get("onset") is None:
        return "when: unknown (no times)"
    where = " ".join(x for x in (inc["service"], inc["operation"]) if x)
    key, fmt = ("error_rate", fmt_pct) if inc["metric"] == "errors" else ("p99_ms", fmt_ms)
    label = "errors" if inc["metric"] == "errors" else "p99"
    if m.get(f"before_{key}") is None:  # nothing at that place before the onset (the data starts there)
        what = f"{label} {fmt(m.get(f'after_{key}'))} (no requests there before)"
    else:
        what = f"{label} {fmt(m.get(f'before_{key}'))} -> {fmt(m.get(f'after_{key}'))}"
    until = f" until {fmt_time(inc['end_time'])}" if inc.get("end_time") else ""
    return f"from {fmt_time(inc['onset'])} {where} {what}{until}"


def impact_text(inc: dict[str, Any]) -> str:
    """``51% of api-gateway requests affected (GET /search p99 +2.1 s)``."""
    radius = inc["blast_radius"]
    if not radius["by_service"]:
        return "no entry point's requests went through it after the onset"
    top = radius["by_service"][0]
    text = f"{fmt_pct(top['share'])} of {top['service']} requests affected"
    eps = [e for e in radius["entry_points"] if e["service"] == top["service"] and e.get("extra_p99_ms") is not None]
    if eps:
        e = eps[0]
        sign = "+" if e["extra_p99_ms"] >= 0 else "-"
        text += f" ({e['operation']} p99 {sign}{fmt_ms(abs(e['extra_p99_ms']))})"
    return text


def cause_text(inc: dict[str, Any]) -> str:
    """``N+1: catalog-service GET /search calls ...``; or, when the ranking found no strong
    candidate, that no cause is established and what the incident's lead finding says."""
    if inc.get("cause_established", True):
        return inc["title"]
    return f"not established (no service's own behaviour clearly moved); strongest finding: {inc['title']}"


def ranking_text(inc: dict[str, Any]) -> str:
    """What the root-cause ranking said about the incident's window: ``catalog-service first
    (score 92.1, strong): ...``; empty without a verdict."""
    top = inc.get("ranked_first")
    if not top:
        return ""
    score = f"score {top['score']:.1f}, " if isinstance(top.get("score"), (int, float)) else ""
    strength = "strong" if top.get("strong") else "weak: not a strong candidate"
    agrees = {"ranking": "; the cause above is at it", "call graph": "; no finding of this incident is at it"}.get(
        inc.get("cause_basis"), "")
    summary = f": {top['summary']}" if top.get("summary") else ""
    return f"{top['service']} first ({score}{strength}{agrees}){summary}"


def sentence(inc: dict[str, Any]) -> str:
    """What, when, where, why and impact of an incident in one line."""
    return "; ".join((trigger_text(inc["trigger"]), change_text(inc), f"cause: {cause_text(inc)}", impact_text(inc)))
