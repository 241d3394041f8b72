"""A finding's evidence as tables a person reads: units from the key names (``_ms``, ``_pct``,
``share``, ``rate``...), sensible rounding (:mod:`forensics.units`), lists of records (per-version
comparisons, modes, changed calls) as tables of their own, and what each detector's score means.
"""
from __future__ import annotations

import re
from typing import Any

from ..units import fmt_count, fmt_ms, fmt_num, fmt_pct

#: what each detector's ``score`` is, and how to print it
SCORE_UNITS: dict[str, tuple[str, str]] = {
    "n_plus_one": ("ms", "share of requests hit x median time of the repeated calls per request"),
    "version_regression": ("ratio", "p95 growth (new / old - 1), or 10 x the error-rate increase"),
    "bimodal_latency": ("ratio", "slow share x log2(slow / fast median)"),
    "critical_path": ("share", "share of the slow requests' critical path"),
    "error_origin": ("share", "share of all traces failing from here"),
    "retry_storm": ("ratio", "share of calls retried x median attempts, or outbound/inbound growth"),
    "clock_skew": ("ms", "clock offset"),
}
_ISO = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]00:00)?")

#: evidence keys shown elsewhere (or too raw for the table)
HIDDEN = frozenset({"exemplar_trace_ids", "fast_exemplar_trace_ids", "thresholds", "source", "checks"})


def score_text(detector: str, score: float | None) -> str:
    """``"1.5 s (share of requests hit x median time ...)"``."""
    unit, meaning = SCORE_UNITS.get(detector, ("", "detector score"))
    if score is None:
        return "-"
    value = fmt_ms(score) if unit == "ms" else fmt_pct(score) if unit == "share" else fmt_num(score)
    return f"{value} ({meaning})"


def _is_ms(path: str) -> bool:
    return any(part.endswith("_ms") or "_ms_" in part or part == "ms" for part in path.split("."))


def value_text(path: str, value: Any) -> str:
    """One evidence value with its unit, judged from its key path (``call_time_ms_per_hit.p50``)."""
    last = path.split(".")[-1].lower()
    if isinstance(value, str):
        return _ISO.sub(lambda m: f"{m.group(1)} {m.group(2)} UTC", value) if _ISO.fullmatch(value) else value
    if value is None or isinstance(value, bool):
        return fmt_num(value)
    if isinstance(value, (int, float)):
        if _is_ms(path.lower()):
            return fmt_ms(value)
        if last.endswith("pct"):
            return f"{fmt_num(float(value))}%"
        share = "share" in last.split("_") or last.endswith("rate") or last.startswith("overlap")
        if share and last.endswith(("_increase", "_change", "_delta")) and -1 <= value <= 1:
            return f"{'+' if value >= 0 else '-'}{fmt_num(100 * abs(value), 2)} points"  # a change of a share
        if share and 0 <= value <= 1:
            return fmt_pct(value)
        if isinstance(value, int):
            return fmt_count(value)
        return fmt_num(value)
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(value_text(path, v) for v in value[:20]) + (" ..." if len(value) > 20 else "")
    return str(value)


def _label(key: str) -> str:
    for suffix in ("_ms", "_pct"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    return key.replace("_", " ")


def evidence_tables(evidence: dict[str, Any]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """``(rows, tables)``: ``rows`` are (label, value text) for scalars and nested scalars
    (``latency / new / p99``); ``tables`` are ``{"title", "columns", "rows"}`` for lists of
    records (e.g. ``by_version``), every cell formatted with the unit of its column."""
    rows: list[tuple[str, str]] = []
    tables: list[dict[str, Any]] = []

    def walk(prefix: str, path: str, key: str, value: Any) -> None:
        label = f"{prefix} / {_label(key)}" if prefix else _label(key)
        path = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            for k, v in value.items():
                walk(label, path, str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            tables.append({"title": label, "columns": [_label(c) for c in columns],
                           "rows": [[value_text(f"{path}.{c}", v.get(c)) for c in columns] for v in value[:50]]})
        else:
            rows.append((label, value_text(path, value)))

    for k, v in (evidence or {}).items():
        if k not in HIDDEN:
            walk("", "", str(k), v)
    return rows, tables
