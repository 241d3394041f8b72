"""Causes: the ranked table :func:`forensics.rank_causes` returns."""
from __future__ import annotations

import html
from typing import Any

import pyarrow as pa

from ..findings import EvidenceTable, dumps_evidence
from .periods import Periods

SCHEMA = pa.schema([
    pa.field("rank", pa.int32()),
    pa.field("service", pa.string()),
    pa.field("kind", pa.string()),          # service | dependency (uninstrumented: database, external API)
    pa.field("score", pa.float64()),        # combined robust z (unitless), see forensics.causes.scoring
    pa.field("strong", pa.bool_()),         # score >= the strong-candidate cut
    pa.field("signals", pa.string()),       # signal groups that moved, strongest first, comma-separated
    pa.field("operation", pa.string()),     # the operation (or edge) whose signal moved most
    pa.field("pod", pa.string()),           # the pod whose own time moved most, when one stands out
    pa.field("summary", pa.string()),       # one sentence
    pa.field("explain", pa.string()),       # why it ranks where it does (vs the candidate above it)
    pa.field("evidence", pa.string()),      # JSON: signals with baseline/window values, z, exemplar traces
])
COLUMNS = tuple(SCHEMA.names)


class Causes(EvidenceTable):
    """Candidate root causes, most likely first, with their evidence.

    Columns: ``rank`` (1 = most likely), ``service``, ``kind`` (``service`` or ``dependency``:
    a database or API seen only through its callers' spans), ``score`` (combined robust z,
    unitless; see :mod:`forensics.causes.scoring`), ``strong`` (score at or above the
    strong-candidate cut), ``signals`` (the signal groups that moved), ``operation`` and ``pod``
    (where it moved most), ``summary`` (a sentence), ``explain`` (why it ranks below the one
    above it) and ``evidence`` (JSON: every signal that moved, baseline and window values with
    units, z, exemplar trace ids).

    ``periods`` says which window was compared with which baseline (and how they were found);
    ``note`` says why the table is empty or why no candidate is strong.

    >>> Causes.empty(note="no onset").note
    'no onset'
    """

    def __init__(self, table: pa.Table | None = None, *, periods: Periods | None = None, note: str = "") -> None:
        self._table = (table if table is not None else SCHEMA.empty_table()).select(list(COLUMNS)).cast(SCHEMA)
        self.periods = periods
        self.note = note

    @classmethod
    def empty(cls, *, periods: Periods | None = None, note: str = "") -> "Causes":
        return cls(None, periods=periods, note=note)

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], *, periods: Periods | None = None,
                     note: str = "") -> "Causes":
        rows = [{**{c: r.get(c) for c in COLUMNS},
                 "evidence": r["evidence"] if isinstance(r.get("evidence"), str) else dumps_evidence(r.get("evidence"))}
                for r in records]
        return cls(pa.Table.from_pylist(rows, schema=SCHEMA), periods=periods, note=note)

    # -- access --------------------------------------------------------------------------------
    @property
    def top(self) -> dict[str, Any] | None:
        """The most likely cause when it is strong (a dict as in :meth:`records`), else None."""
        recs = self.records()
        return recs[0] if recs and recs[0]["strong"] else None

    def to_dict(self) -> dict[str, Any]:
        """Periods, note and candidates as one JSON-ready dict (the CLI's ``--format json``)."""
        return {"periods": self.periods.to_dict() if self.periods else None, "note": self.note,
                "causes": self.records()}

    def to_json(self) -> str:
        return dumps_evidence(self.to_dict())

    def __repr__(self) -> str:
        head = f"<Causes: {len(self)}" + (f"; {self.periods.describe()}" if self.periods else "") + ">"
        lines = [head] + ([f"  {self.note}"] if self.note else [])
        for r in self._table.to_pylist()[:10]:
            mark = "" if r["strong"] else " (weak)"
            lines.append(f"  {r['rank']}. {r['service']} score {r['score']:.1f}{mark}: {r['summary']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = []
        if self.periods:
            parts.append(f"<p>{esc(self.periods.describe())}</p>")
        if self.note:
            parts.append(f"<p>{esc(self.note)}</p>")
        if not len(self):
            return "".join(parts) or "<p>No candidate causes.</p>"
        cols = ("rank", "service", "kind", "score", "signals", "operation", "pod", "summary")
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = []
        for r in self._table.to_pylist():
            cells = []
            for c in cols:
                v = r[c]
                text = f"{v:.1f}" if c == "score" and v is not None else ("" if v is None else str(v))
                if c == "score" and not r["strong"]:
                    text += " (weak)"
                cells.append(f"<td>{esc(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        return "".join(parts)
