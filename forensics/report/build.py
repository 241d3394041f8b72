"""Collect what a report shows from a case: overview numbers, figures, findings, provenance.

Figures come from :mod:`forensics.viz`; this module only gathers data and serializes it safely
for embedding (JSON with ``<``, ``>`` and ``&`` escaped, so no telemetry can close a tag).
"""
from __future__ import annotations

import base64
import hashlib
import html
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..findings import Findings
from ..incident.text import cause_text, change_text, impact_text, ranking_text, trigger_text
from ..semantics import is_error_sql
from ..units import fmt_count, fmt_datetime, fmt_ms, fmt_num, fmt_pct, fmt_time
from ..viz._text import map_spec_text
from .evidence import evidence_tables, score_text
from .signals import log_changes, metric_changes
from .redact import NoRedaction, Redactor

if TYPE_CHECKING:
    from ..case import Case

PLOTLY_SKIP_KEYS = frozenset({"bdata", "dtype", "shape"})


def safe_json(obj: Any) -> str:
    """JSON text safe to place inside ``<script type="application/json">``."""
    text = orjson.dumps(obj, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def csp_hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode() + "'"


@dataclass
class FigureBlock:
    id: str
    title: str
    json: str
    note: str = ""
    trace_id: str = ""


@dataclass
class ReportData:
    kpis: list[tuple[str, str]]
    services: list[dict[str, Any]]
    overview_figures: list[FigureBlock]
    findings: list[dict[str, Any]]
    top_sentences: list[str]
    waterfalls: list[FigureBlock]
    files: list[dict[str, Any]]
    rejects: list[dict[str, Any]]
    figure_errors: list[str] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    background: list[dict[str, Any]] = field(default_factory=list)


def figure_block(fig_id: str, title: str, make: Callable[[], Any], redactor: Redactor, errors: list[str],
                 **extra: str) -> FigureBlock | None:
    """Build a figure and serialize it (redacted); a failure becomes a note, not a broken report."""
    import plotly.io as pio

    try:
        fig = make()
    except Exception as exc:  # the report must still be written; the note says what is missing
        msg = f"{title}: figure unavailable ({type(exc).__name__}: {exc})"
        errors.append(msg)
        warnings.warn(msg, stacklevel=2)
        return None
    spec = orjson.loads(pio.to_json(fig, validate=False))
    if not isinstance(redactor, NoRedaction):
        # drawn text is HTML-escaped (forensics.viz._text): redact the text itself, escape it again
        spec = map_spec_text(spec, lambda s: html.escape(redactor.text(html.unescape(s)), quote=False),
                             redactor.text, PLOTLY_SKIP_KEYS)
    return FigureBlock(fig_id, title, safe_json({"data": spec.get("data", []), "layout": spec.get("layout", {})}), **extra)


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def overview(case: "Case") -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    counts = case.tables()
    span = case.sql("SELECT min(start_time), max(end_time), count(DISTINCT trace_id), count(DISTINCT service), "
                    f"avg({is_error_sql(None)}::INT) FROM spans").rows()[0]
    kpis = [("traces", _fmt(span[2])), ("spans", _fmt(counts.get("spans", 0))), ("services", _fmt(span[3])),
            ("span error rate", "-" if span[4] is None else f"{100 * span[4]:.2f}%"),
            ("logs", _fmt(counts.get("logs", 0))), ("metric samples", _fmt(counts.get("metrics", 0))),
            ("events", _fmt(counts.get("events", 0))), ("rejected records", _fmt(counts.get("rejects", 0)))]
    if span[0] is not None:
        kpis.insert(0, ("time range (UTC)", f"{span[0]:%Y-%m-%d %H:%M:%S} … {span[1]:%H:%M:%S}"))
    services = case.sql(f"""
        SELECT service,
               string_agg(DISTINCT service_version, ', ' ORDER BY service_version) AS versions,
               count(*) AS spans,
               round(100.0 * avg({is_error_sql(None)}::INT), 2) AS error_pct,
               round(quantile_cont(duration_ms, 0.95) FILTER (WHERE kind IN ('server', 'consumer')), 1) AS p95,
               round(quantile_cont(duration_ms, 0.99) FILTER (WHERE kind IN ('server', 'consumer')), 1) AS p99
        FROM spans GROUP BY service ORDER BY spans DESC LIMIT 100""").dicts()
    for s in services:
        for k in ("spans", "p95", "p99", "error_pct"):
            s[k] = _fmt(s[k], 2 if k == "error_pct" else 1)
        s["versions"] = s["versions"] or "-"
    return kpis, services


def finding_rows(findings: Findings, redactor: Redactor) -> list[dict[str, Any]]:
    rows = []
    for f in findings.records():
        ev = f["evidence"] if isinstance(f["evidence"], dict) else {}
        exemplars = [str(t) for t in (ev.get("exemplar_trace_ids") or [])][:5]
        thresholds = ev.get("thresholds") or {}
        row = {k: f[k] for k in ("detector", "severity", "title", "service", "operation", "target",
                                 "target_operation", "version", "summary", "finding_id", "incident_id", "role")}
        row["start_time"] = f["start_time"].strftime("%Y-%m-%d %H:%M:%S") if f["start_time"] else None
        row["end_time"] = f["end_time"].strftime("%Y-%m-%d %H:%M:%S") if f["end_time"] else None
        row["score"] = score_text(f["detector"], f["score"])
        row["exemplars"] = exemplars
        row["source"] = ev.get("source")
        row["thresholds"] = sorted((str(k), str(v)) for k, v in thresholds.items()) if isinstance(thresholds, dict) else []
        row["evidence_rows"], row["evidence_tables"] = evidence_tables(ev)
        row = redactor.obj(row)
        # values are redacted before the JSON is written (a pattern cannot match across an escape)
        row["evidence_text"] = orjson.dumps(redactor.obj(ev), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                            default=str).decode()
        rows.append(row)
    return rows


def provenance(case: "Case", redactor: Redactor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = case.sql("SELECT path, format, size_bytes, sha256, records_read, rows_loaded, rows_rejected, "
                     "strftime(loaded_at, '%Y-%m-%d %H:%M:%S') AS loaded_at FROM files ORDER BY loaded_at, path").dicts()
    rejects = case.sql("""
        SELECT source_file, reason_code, count(*) AS n,
               coalesce('line ' || min(source_line)::VARCHAR, 'offset ' || min(source_offset)::VARCHAR, '-') AS first_where,
               arg_min(reason, coalesce(source_line, source_offset, 0)) AS reason
        FROM rejects GROUP BY source_file, reason_code ORDER BY n DESC, source_file LIMIT 200""").dicts()
    return redactor.obj(files), redactor.obj(rejects)


def incident_block(case: "Case", inc: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """What the report shows of one incident (every text redacted): the sentence, its parts, the
    blast radius table, log templates and metrics that moved around the onset."""
    radius = inc["blast_radius"]
    entry_points = [{
        "entry": f"{e['service']} {e['operation'] or ''}".strip(), "requests": fmt_count(e["requests"]),
        "affected": fmt_count(e["affected"]), "share": fmt_pct(e["share"]), "p99_before": fmt_ms(e["p99_before_ms"]),
        "p99_after": fmt_ms(e["p99_after_ms"]),
        "extra_p99": ("+" if (e["extra_p99_ms"] or 0) >= 0 else "-") + fmt_ms(abs(e["extra_p99_ms"]))
        if e["extra_p99_ms"] is not None else "-"} for e in radius["entry_points"][:10]]
    logs, metrics = [], []
    if inc["onset"] is not None:
        logs = [{**r, "before": fmt_count(r["before"]), "after": fmt_count(r["after"]),
                 "status": "new" if r["before"] == 0 else f"x{fmt_num(r['after'] / r['before'], 2)}"}
                for r in log_changes(case, inc["onset"], inc["end_time"], inc["services"])]
        metrics = [{**r, "before": _level(r, "before"), "after": _level(r, "after"),
                    "change": f"x{fmt_num(r['ratio'], 2)}" if r["ratio"] is not None else "-"}
                   for r in metric_changes(case, inc["onset"], inc["end_time"], inc["services"])]
    trigger = inc["trigger"]
    block = {
        "id": inc["incident_id"], "severity": inc["severity"], "title": inc["title"], "summary": inc["summary"],
        "trigger": trigger_text(trigger), "trigger_message": (trigger or {}).get("message"),
        "trigger_records": (trigger or {}).get("records"),
        "onset": fmt_datetime(inc["onset"]), "end": fmt_datetime(inc["end_time"]) if inc["end_time"] else
        "not over at the end of the data", "change": change_text(inc), "impact": impact_text(inc),
        "cause": cause_text(inc), "cause_established": inc.get("cause_established", True),
        "ranking": ranking_text(inc), "entry_points": entry_points, "logs": logs, "metrics": metrics,
        "services": ", ".join(inc["services"]), "onset_hm": fmt_time(inc["onset"]),
    }
    return redactor.obj(block)


def _level(r: dict[str, Any], side: str) -> str:
    v = r[side]
    if v is None:
        return "-"
    unit = "/s" if r.get("per_second") else (f" {r['unit']}" if r.get("unit") else "")
    return f"{fmt_num(float(v))}{unit}"
