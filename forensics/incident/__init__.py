"""Incidents: the findings that tell one story, with a cause, a trigger, an onset, an end and a
blast radius.

>>> import forensics
>>> forensics.incidents(forensics.open_case(), findings=forensics.Findings.empty())
<Incidents: none>

(``forensics.incidents`` is this module's :func:`incidents`, imported on first use.)

How findings are grouped and the cause chosen: :mod:`.grouping` and :mod:`.cause`.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Iterator

import pandas as pd

from .._duplicates import unique_spans
from ..findings import Findings
from ..units import fmt_datetime, fmt_pct, fmt_time
from .grouping import group
from .text import cause_text, sentence

if TYPE_CHECKING:
    from ..case import Case

__all__ = ["Incidents", "incidents"]

#: the flat columns of :meth:`Incidents.to_pandas`
COLUMNS = ("incident_id", "severity", "onset", "end_time", "trigger", "trigger_time", "cause", "cause_established",
           "cause_finding_id", "ranked_first",
           "service", "operation", "version", "metric", "affected_share", "entry_service", "findings", "summary")


class Incidents:
    """Incidents of a case, most severe first, and the findings with their incident fields.

    Attributes
    ----------
    findings:
        Every finding, with ``incident_id``, ``role`` (cause | symptom) and ``caused_by`` filled
        (null for a finding that belongs to no incident: background or data quality).
    """

    def __init__(self, records: list[dict[str, Any]], findings: Findings) -> None:
        self._records = records
        self.findings = findings

    def records(self) -> list[dict[str, Any]]:
        """One dict per incident: ``incident_id``, ``severity``, ``title`` (the cause's), ``summary``
        (the sentence), ``trigger`` (a change, see :func:`forensics.changes.change_events`, or
        None), ``onset``, ``end_time`` (None while it lasts to the end of the data), ``metric``
        (latency | errors) and ``measured`` (p99 in ms and error rate before/after the onset at
        the cause's place), ``blast_radius`` (entry points, shares, extra p99 in ms),
        ``cause_established`` (False when the root-cause ranking judged the incident and found no
        strong candidate: every member is then a symptom), ``cause_basis`` (``ranking``, ``call
        graph`` or ``none``), ``ranked_first`` (the ranking's top candidate: ``service``,
        ``score``, ``strong``, ``summary``...; None without a ranking verdict),
        ``cause_finding_id`` (None when no cause is established), ``lead_finding_id`` (the cause,
        else the finding whose place the incident is measured at),
        ``service``/``operation``/``version`` (that place), and ``finding_ids`` (lead first)."""
        return list(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._records[i]

    def members(self, incident_id: str) -> Findings:
        """The findings of one incident, the cause (or the lead finding, when no cause is
        established) first."""
        lead = next((r["lead_finding_id"] for r in self._records if r["incident_id"] == incident_id), None)
        recs = [r for r in self.findings.records() if r["incident_id"] == incident_id]
        recs.sort(key=lambda r: r["finding_id"] != lead)
        return Findings.from_records(recs) if recs else Findings.empty()

    def background(self) -> Findings:
        """Findings in no incident."""
        recs = [r for r in self.findings.records() if r["incident_id"] is None]
        return Findings.from_records(recs) if recs else Findings.empty()

    def to_pandas(self) -> pd.DataFrame:
        rows = []
        for r in self._records:
            radius = r["blast_radius"]["by_service"]
            rows.append({
                "incident_id": r["incident_id"], "severity": r["severity"], "onset": r["onset"],
                "end_time": r["end_time"], "trigger": (r["trigger"] or {}).get("label"),
                "trigger_time": (r["trigger"] or {}).get("time"), "cause": cause_text(r),
                "cause_established": r["cause_established"], "cause_finding_id": r["cause_finding_id"],
                "ranked_first": (r["ranked_first"] or {}).get("service"), "service": r["service"], "operation": r["operation"],
                "version": r["version"], "metric": r["metric"],
                "affected_share": radius[0]["share"] if radius else None,
                "entry_service": radius[0]["service"] if radius else None, "findings": r["findings"],
                "summary": r["summary"]})
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def __repr__(self) -> str:
        if not self._records:
            return "<Incidents: none>"
        lines = [f"<Incidents: {len(self)}>"]
        for r in self._records:
            lines.append(f"  {r['incident_id']} [{r['severity']}] {r['summary']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self._records:
            return "<p>No incidents.</p>"
        esc = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
        body = "".join(
            f"<tr><td>{esc(r['incident_id'])}</td><td>{esc(r['severity'])}</td><td>{esc(fmt_datetime(r['onset']))}</td>"
            f"<td>{esc(fmt_time(r['end_time']) if r['end_time'] else 'ongoing')}</td>"
            f"<td>{esc(fmt_pct(r['blast_radius']['share']))}</td><td>{esc(r['summary'])}</td></tr>"
            for r in self._records)
        return ("<table><thead><tr><th>incident</th><th>severity</th><th>onset</th><th>end</th><th>affected</th>"
                f"<th>what happened</th></tr></thead><tbody>{body}</tbody></table>")


def incidents(case: "Case", *, findings: Findings | None = None, ranking: Any = "auto") -> Incidents:
    """Group findings into incidents.

    Parameters
    ----------
    case:
        The case the findings come from.
    findings:
        Findings to group; by default every detector is run (:func:`forensics.detect`).
    ranking:
        How the cause is chosen (:mod:`forensics.incident.cause`): ``"auto"`` uses
        ``forensics.rank_causes`` over each incident's window (no cause is named when it finds no
        strong candidate), else the call graph; ``None`` the call graph only; or a callable
        ``(case, start, end) -> [{"service", "operation", "strong"}, ...]`` (most likely first;
        None when it cannot judge the window).

    Returns
    -------
    Incidents
        Most severe first; ``.findings`` holds every finding with its incident fields.
    """
    with unique_spans(case):  # each span once, as the detectors saw them; one duplicate check for all steps
        if findings is None:
            from ..detectors import detect

            findings = detect(case)
        grouped, records = group(case, findings, ranking=ranking)
    by_incident: dict[str, list[tuple[bool, str]]] = {}
    for r in grouped.records():
        if r["incident_id"]:
            by_incident.setdefault(r["incident_id"], []).append(r["finding_id"])
    for rec in records:
        ids = by_incident.get(rec["incident_id"], [])
        rec["finding_ids"] = sorted(ids, key=lambda fid: fid != rec["lead_finding_id"])
        rec["summary"] = sentence(rec)
    return Incidents(records, grouped)
