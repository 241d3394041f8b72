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
    if inc["metric"] == "errors":
        what = f"errors {fmt_pct(m.get('before_error_rate'))} -> {fmt_pct(m.get('after_error_rate'))}"
    else:
        what = f"p99 {fmt_ms(m.get('before_p99_ms'))} -> {fmt_ms(m.get('after_p99_ms'))}"
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


def sentence(inc: dict[str, Any]) -> str:
    """What, when, where, why and impact of an incident in one line."""
    return "; ".join((trigger_text(inc["trigger"]), change_text(inc), f"cause: {inc['title']}", impact_text(inc)))
