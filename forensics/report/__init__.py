"""A self-contained HTML report of a case: one file, opens offline, safe to share.

Everything from telemetry is escaped (Jinja2 autoescape for markup; figures travel as JSON data
with ``<``, ``>``, ``&`` escaped); a Content-Security-Policy allows only the report's own two
scripts (by hash) and forbids every network request; ``redact=True`` masks secrets and PII in
everything rendered (see :mod:`forensics.report.redact`).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import jinja2

from .._version import __version__
from ..findings import Findings
from .build import ReportData, csp_hash, figure_block, finding_rows, overview, provenance
from .redact import DEFAULT_PATTERNS, NoRedaction, Redactor

if TYPE_CHECKING:
    from ..case import Case

BOOTSTRAP_JS = """(function () {
  var blocks = document.querySelectorAll('script[type="application/json"][data-figure]');
  for (var i = 0; i < blocks.length; i++) {
    var block = blocks[i];
    var target = document.getElementById(block.getAttribute('data-figure'));
    var spec = JSON.parse(block.textContent);
    Plotly.newPlot(target, spec.data || [], spec.layout || {}, {displaylogo: false, responsive: true});
  }
})();"""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("forensics.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _collect(case: "Case", findings: Findings, redactor: Redactor, max_exemplars: int) -> ReportData:
    from .. import viz

    errors: list[str] = []
    kpis, services = overview(case)
    figures = [
        figure_block("fig-timeline", "Incident timeline", lambda: viz.timeline(case, findings=findings), redactor, errors,
                     note="Deploys and Kubernetes events as markers, error rate and p99 per minute, findings as shaded windows."),
        figure_block("fig-graph", "Service graph", lambda: viz.service_graph(case), redactor, errors,
                     note="Nodes are services (size: request rate, colour: error %); edges are calls with rate, error % and p95."),
    ]
    exemplars: list[str] = []
    for f in findings.records():
        for t in (f["evidence"] or {}).get("exemplar_trace_ids") or []:
            if t not in exemplars and len(exemplars) < max_exemplars:
                exemplars.append(str(t))
    present = set()
    if exemplars:
        present = {r[0] for r in case.sql("SELECT DISTINCT trace_id FROM spans WHERE list_contains(?, trace_id)", [exemplars]).rows()}
    waterfalls = [
        figure_block(f"fig-trace-{i}", f"Trace {t}", lambda t=t: viz.waterfall(case, t), redactor, errors, trace_id=redactor.text(t))
        for i, t in enumerate(exemplars) if t in present
    ]
    rows = finding_rows(findings, redactor)
    top = [r["summary"] for r in rows if r["severity"] in ("critical", "high", "medium")][:5]
    files, rejects = provenance(case, redactor)
    return ReportData(kpis=redactor.obj(kpis), services=redactor.obj(services),
                      overview_figures=[f for f in figures if f], findings=rows, top_sentences=top,
                      waterfalls=[w for w in waterfalls if w], files=files, rejects=rejects, figure_errors=errors)


def render(case: "Case", *, findings: Findings | None = None, redact: bool = False,
           redact_patterns: Iterable[tuple[str, str]] = (), title: str | None = None, max_exemplars: int = 3) -> str:
    """The report as an HTML string (see :func:`report`)."""
    import plotly.offline

    if findings is None:
        from ..detectors import detect

        findings = detect(case)
    redactor: Redactor = Redactor(DEFAULT_PATTERNS, extra=tuple(redact_patterns)) if redact else NoRedaction()
    data = _collect(case, findings.sorted(), redactor, max_exemplars)
    plotly_js = plotly.offline.get_plotlyjs()
    csp = ("default-src 'none'; "
           f"script-src {csp_hash(plotly_js)} {csp_hash(BOOTSTRAP_JS)}; "
           "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
           "base-uri 'none'; form-action 'none'; frame-src 'none'; object-src 'none'")
    case_name = os.path.basename(case.path) if case.path else "in-memory case"
    html = _ENV.get_template("report.html.j2").render(
        title=redactor.text(title or f"Incident report: {case_name}"),
        case_name=redactor.text(case_name),
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=__version__,
        redacted=redact,
        redaction_counts=", ".join(f"{k}: {v}" for k, v in sorted(redactor.counts.items())) or "none",
        csp=csp,
        plotly_js=plotly_js,
        bootstrap_js=BOOTSTRAP_JS,
        figure_errors=data.figure_errors,
        **{k: getattr(data, k) for k in ("kpis", "services", "overview_figures", "findings", "top_sentences",
                                          "waterfalls", "files", "rejects")},
    )
    return html


def report(case: "Case", path: str | os.PathLike, *, findings: Findings | None = None, redact: bool = False,
           redact_patterns: Iterable[tuple[str, str]] = (), title: str | None = None, max_exemplars: int = 3) -> Path:
    """Write a self-contained HTML report of ``case`` to ``path`` and return the path.

    Parameters
    ----------
    findings:
        Findings to show; by default every detector is run.
    redact:
        Mask secrets and PII (bearer tokens, API keys, passwords in URLs, e-mails, IPs, ...) in
        everything rendered, figures included.
    redact_patterns:
        Extra ``(kind, regex)`` pairs to mask when ``redact`` is true.
    max_exemplars:
        How many exemplar traces (from the most severe findings) get a waterfall.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(case, findings=findings, redact=redact, redact_patterns=redact_patterns, title=title,
                  max_exemplars=max_exemplars)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["Redactor", "render", "report"]


from .._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, report)
