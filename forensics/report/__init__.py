"""A self-contained HTML report of a case: one file, opens offline, safe to share.

Everything from telemetry is escaped (Jinja2 autoescape for markup; figures travel as JSON data
with ``<``, ``>``, ``&`` escaped); a Content-Security-Policy allows only the report's own two
scripts (by hash) and forbids every network request; ``redact=True`` masks secrets and PII in
everything rendered (see :mod:`forensics.report.redact`).
"""
from __future__ import annotations

import functools
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import jinja2

from .. import _progress
from .._duplicates import unique_spans
from .._version import __version__
from ..findings import Findings
from .build import FigureBlock, ReportData, csp_hash, figure_block, finding_rows, incident_block, overview, provenance
from .redact import DEFAULT_PATTERNS, NoRedaction, Redactor

if TYPE_CHECKING:
    from ..case import Case

#: unpacks plotly.js (gzip, base64: a third of its size) with the browser's own DecompressionStream,
#: runs it as an inline script (allowed by its hash in the CSP), then draws every figure
BOOTSTRAP_JS = """(function () {
  function draw() {
    var blocks = document.querySelectorAll('script[type="application/json"][data-figure]');
    for (var i = 0; i < blocks.length; i++) {
      var block = blocks[i];
      var target = document.getElementById(block.getAttribute('data-figure'));
      var spec = JSON.parse(block.textContent);
      Plotly.newPlot(target, spec.data || [], spec.layout || {}, {displaylogo: false, responsive: true});
    }
  }
  var packed = document.getElementById('plotly-js-gzip');
  if (!packed || typeof DecompressionStream === 'undefined') {
    document.body.insertAdjacentText('afterbegin', 'This browser cannot unpack the figures (no DecompressionStream).');
    return;
  }
  var text = atob(packed.textContent.trim());
  var bytes = new Uint8Array(text.length);
  for (var j = 0; j < text.length; j++) { bytes[j] = text.charCodeAt(j); }
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  new Response(stream).text().then(function (code) {
    var script = document.createElement('script');
    script.textContent = code;
    document.head.appendChild(script);
    draw();
  });
})();"""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("forensics.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _exemplar(case: "Case", findings: list[dict[str, Any]]) -> str | None:
    """The first exemplar trace of these findings (cause first) that is in the case."""
    wanted = [str(t) for f in findings for t in ((f["evidence"] or {}).get("exemplar_trace_ids") or [])]
    if not wanted:
        return None
    present = {r[0] for r in case.sql("SELECT DISTINCT trace_id FROM spans WHERE list_contains(?, trace_id)",
                                      [wanted]).rows()}
    return next((t for t in wanted if t in present), None)


def _collect(case: "Case", findings: Findings, redactor: Redactor, max_exemplars: int) -> ReportData:
    from .. import viz
    from ..incident import incidents as group_incidents

    errors: list[str] = []
    kpis, services = overview(case)
    grouped = group_incidents(case, findings=findings)
    rows = {r["finding_id"]: r for r in finding_rows(grouped.findings, redactor)}
    raw = {r["finding_id"]: r for r in grouped.findings.records()}
    waterfalls: list[FigureBlock] = []
    incident_blocks = []
    for inc in grouped:
        members = [raw[i] for i in inc["finding_ids"]]
        block = incident_block(case, inc, redactor)
        block["findings"] = [rows[i] for i in inc["finding_ids"]]
        block["waterfall"] = None  # findings without an exemplar trace in the case draw none
        trace = _exemplar(case, members) if len(waterfalls) < max_exemplars else None
        if trace is not None:
            fig = figure_block(f"fig-trace-{len(waterfalls)}", f"Exemplar trace {trace}", lambda t=trace: viz.waterfall(case, t),
                               redactor, errors, trace_id=redactor.text(trace))
            if fig is not None:
                waterfalls.append(fig)
                block["waterfall"] = fig
        incident_blocks.append(block)
    drawn = {w.trace_id for w in waterfalls}
    for r in rows.values():
        r["exemplar_links"] = [(t, t in drawn) for t in r["exemplars"]]
    background = [rows[r["finding_id"]] for r in grouped.findings.records() if r["incident_id"] is None]
    figures = [
        figure_block("fig-timeline", "Timeline", lambda: viz.timeline(case, incidents=grouped), redactor, errors,
                     note="Changes (deploys with their Kubernetes rollout merged) as labelled markers, error rate and "
                          "p99 of the system's requests per bucket, incidents as bands from their onset."),
        figure_block("fig-graph", "Service graph", lambda: viz.service_graph(case, highlight=grouped.findings), redactor,
                     errors, note="Services (colour: the service's colour in every figure; red outline: errors) and "
                                  "calls; the calls the findings name are drawn thick and labelled with calls per "
                                  "request and p95."),
    ]
    files, rejects = provenance(case, redactor)
    return ReportData(kpis=redactor.obj(kpis), services=redactor.obj(services),
                      overview_figures=[f for f in figures if f], findings=list(rows.values()),
                      top_sentences=[b["summary"] for b in incident_blocks], waterfalls=waterfalls, files=files,
                      rejects=rejects, figure_errors=errors, incidents=incident_blocks, background=background)


@functools.lru_cache(maxsize=2)
def _packed(script: str) -> str:
    """``script`` gzipped (fixed mtime: same input, same bytes) and base64-encoded."""
    import base64
    import gzip

    return base64.b64encode(gzip.compress(script.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def render(case: "Case", *, findings: Findings | None = None, redact: bool = False,
           redact_patterns: Iterable[tuple[str, str]] = (), title: str | None = None, max_exemplars: int = 5,
           progress: bool | None = None) -> str:
    """The report as an HTML string (see :func:`report`)."""
    import plotly.offline

    # every step reads each span once (repeated rows of overlapping exports hidden, as the
    # detectors see them), and the duplicate check runs once for all of them
    with _progress.bar(desc="report", total=2, unit="step", progress=progress) as shown, unique_spans(case):
        if findings is None:
            from ..detectors import detect

            shown.set_postfix_str("detectors")
            findings = detect(case, progress=progress)
        shown.update(1)
        shown.set_postfix_str("figures")
        redactor: Redactor = Redactor(DEFAULT_PATTERNS, extra=tuple(redact_patterns)) if redact else NoRedaction()
        data = _collect(case, findings.sorted(), redactor, max_exemplars)
        shown.update(1)
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
        plotly_gzip=_packed(plotly_js),
        bootstrap_js=BOOTSTRAP_JS,
        figure_errors=data.figure_errors,
        **{k: getattr(data, k) for k in ("kpis", "services", "overview_figures", "findings", "top_sentences",
                                          "waterfalls", "files", "rejects", "incidents", "background")},
    )
    return html


def report(case: "Case", path: str | os.PathLike, *, findings: Findings | None = None, redact: bool = False,
           redact_patterns: Iterable[tuple[str, str]] = (), title: str | None = None, max_exemplars: int = 5,
           progress: bool | None = None) -> Path:
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
        At most this many waterfalls: one exemplar trace per incident (its cause's first), most
        severe incidents first. A trace id links to its waterfall when the report has it.
    progress:
        Show the steps (and each detector run) on stderr; None: only when stderr is a terminal.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(case, findings=findings, redact=redact, redact_patterns=redact_patterns, title=title,
                  max_exemplars=max_exemplars, progress=progress)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def markdown_report(case: "Case", path: str | os.PathLike, *, findings: Findings | None = None, redact: bool = False,
                    redact_patterns: Iterable[tuple[str, str]] = (), title: str | None = None) -> Path:
    """Write the Markdown summary (:func:`forensics.report.markdown.render_markdown`) to ``path``."""
    from .markdown import render_markdown

    redactor: Redactor = Redactor(DEFAULT_PATTERNS, extra=tuple(redact_patterns)) if redact else NoRedaction()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(case, findings=findings, redactor=redactor, title=title) + "\n", encoding="utf-8")
    return out


__all__ = ["Redactor", "markdown_report", "render", "report"]


from .._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, report)
