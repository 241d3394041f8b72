"""The flagship demo: the guide's catalog-service N+1 incident, loaded, detected and reported.

>>> import tempfile
>>> result = run_demo(tempfile.mkdtemp(), traces=150)   # doctest: +SKIP
>>> result.case_path.name                                # doctest: +SKIP
'case.duckdb'
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .api import Truth, generate

if TYPE_CHECKING:
    from ..findings import Findings
    from ..loaders import LoadReport

#: the committed flagship incident (present in a source checkout)
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data" / "catalog_n_plus_one"


@dataclass
class DemoResult:
    """What :func:`run_demo` did: where the incident came from, the case, findings and report."""

    out_dir: Path
    source: Path
    generated: bool
    case_path: Path
    load_report: "LoadReport"
    findings: "Findings"
    detectors_run: list[str]
    truth: Truth
    report_path: Path | None
    notes: list[str] = field(default_factory=list)
    incidents: Any = None  # forensics.incident.Incidents

    def matched(self) -> list[tuple[dict[str, Any], bool]]:
        """Each expected finding of the truth and whether a finding of that detector names its service."""
        found = {(f["detector"], f["service"]) for f in self.findings.records()}
        return [(e, (e["detector"], e["service"]) in found) for e in self.truth.expected]

    def summary(self, top: int = 5) -> str:
        """The text ``forensics demo`` prints."""
        lines = [f"incident: {self.source}" + (" (generated)" if self.generated else " (committed sample)"),
                 f"case:     {self.case_path}", ""]
        tables = self.load_report.by_table()
        lines.append("loaded: " + ", ".join(f"{t} {tables.get(t, 0)}" for t in ("spans", "logs", "metrics", "events"))
                     + f"; rejected {self.load_report.rows_rejected}")
        failed = [f for f in self.load_report.files if f.status == "failed"]
        for f in failed:
            lines.append(f"  not loaded: {os.path.basename(f.path)} ({f.message})")
        lines.append("")
        if self.incidents is not None:
            lines.append(f"incidents: {len(self.incidents)}" + (":" if len(self.incidents) else ""))
            for inc in self.incidents:
                lines.append(f"  {inc['incident_id']} [{inc['severity']}] {inc['summary']}")
            lines.append("")
        n = len(self.findings)
        if not self.detectors_run:
            lines.append("findings: no detectors are available yet")
        elif n == 0:
            lines.append(f"findings: none ({len(self.detectors_run)} detectors run: {', '.join(self.detectors_run)})")
        else:
            lines.append(f"findings: {n} from {len(self.detectors_run)} detectors; top {min(top, n)}:")
            for f in self.findings.records()[:top]:
                ev = f["evidence"] if isinstance(f["evidence"], dict) else {}
                ex = (ev.get("exemplar_trace_ids") or ["-"])[0]
                role = f" ({f['role']} in {f['incident_id']})" if f.get("incident_id") else ""
                lines.append(f"  [{f['severity']}] {f['detector']}{role}: {f['summary']}")
                lines.append(f"      exemplar trace {ex}")
        lines.append("")
        lines.append("expected (truth.json):")
        for e, ok in self.matched():
            where = e["service"] + (f" {e['operation']}" if e["operation"] else "")
            if e["target"]:
                where += f" -> {e['target']}"
            lines.append(f"  {'found  ' if ok else 'missing'} {e['detector']}: {where}")
        lines.append("")
        lines += self.notes
        lines.append(f"report: {self.report_path}" if self.report_path else "report: not written")
        return "\n".join(lines)


def run_demo(out_dir: str | os.PathLike = "demo_out", *, source: str | os.PathLike | None = None,
             traces: int = 1500, seed: int = 7) -> DemoResult:
    """Load the flagship incident into ``out_dir/case.duckdb``, run every detector, write the report.

    Parameters
    ----------
    out_dir:
        Output directory (``case.duckdb``, ``report.html``; ``incident/`` when generated).
    source:
        Incident directory to use; default: the committed ``sample_data/catalog_n_plus_one``
        when present, otherwise one generated with ``traces`` and ``seed``.
    """
    from ..case import open_case
    from ..detectors import detect, detectors
    from ..findings import Findings
    from ..loaders import load

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated = False
    if source is not None:
        src = Path(source)
        if not (src / "truth.json").is_file():
            raise UsageError(f"{src}: not a synthetic incident (no truth.json); give a directory written by `forensics synth`")
    elif (SAMPLE_DIR / "truth.json").is_file():
        src = SAMPLE_DIR
    else:
        src = out / "incident"
        generate("n_plus_one", src, traces=traces, seed=seed)
        generated = True
    truth = Truth.read(src)
    case_path = out / "case.duckdb"
    for stale in (case_path, Path(str(case_path) + ".wal")):
        if stale.exists():
            stale.unlink()
    notes: list[str] = []
    case = open_case(case_path)
    try:
        load_report = load(case, src, progress=False)
        names = sorted(detectors())
        parts = []
        for name in names:  # one at a time, so one broken detector does not hide the others
            try:
                parts.append(detect(case, only=[name]))
            except Exception as exc:  # noqa: BLE001 - reported, the demo goes on
                notes.append(f"detector {name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        findings = Findings.concat(parts).sorted() if parts else Findings.empty()
        found = None
        try:
            from ..incident import incidents

            found = incidents(case, findings=findings)
            findings = found.findings
        except Exception as exc:  # noqa: BLE001 - reported, the demo goes on with ungrouped findings
            notes.append(f"incident grouping failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        report_path = None
        report_mod = _import_report()
        report_fn = getattr(report_mod, "report", None) if report_mod is not None else None
        if callable(report_fn):
            report_path = Path(report_fn(case, out / "report.html", findings=findings))
        else:
            notes.append("the HTML report is not available yet (forensics.report.report is not implemented)")
    finally:
        case.close()
    return DemoResult(out, src, generated, case_path, load_report, findings, names, truth, report_path, notes, found)


def _import_report():
    try:
        import forensics.report as mod
    except ImportError:
        return None
    return mod
