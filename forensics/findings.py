"""Findings: the fixed-column table every detector returns."""
from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator

import orjson
import pyarrow as pa

SEVERITIES = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}  # lower is more severe

SCHEMA = pa.schema([
    pa.field("detector", pa.string()),
    pa.field("severity", pa.string()),
    pa.field("title", pa.string()),
    pa.field("service", pa.string()),
    pa.field("operation", pa.string()),
    pa.field("target", pa.string()),
    pa.field("target_operation", pa.string()),
    pa.field("version", pa.string()),
    pa.field("start_time", pa.timestamp("us", tz="UTC")),
    pa.field("end_time", pa.timestamp("us", tz="UTC")),
    pa.field("score", pa.float64()),
    pa.field("evidence", pa.string()),  # JSON object
    pa.field("summary", pa.string()),
    # filled by forensics.incidents (the `forensics detect` CLI groups by default); finding_id always;
    # see docs/findings.md
    pa.field("finding_id", pa.string()),
    pa.field("incident_id", pa.string()),
    pa.field("role", pa.string()),  # cause | symptom
    pa.field("caused_by", pa.string()),  # finding_id of the incident's cause (null: no cause established)
])
COLUMNS = tuple(SCHEMA.names)
#: the columns a detector fills; the others are given by incident grouping (and may be absent)
DETECTOR_COLUMNS = COLUMNS[:COLUMNS.index("finding_id")]
ROLES = ("cause", "symptom")


#: what a finding is about (not what was measured: scores and evidence differ in the last float
#: digits between engines and runs): the columns its id hashes
IDENTITY_COLUMNS = ("detector", "severity", "service", "operation", "target", "target_operation", "version",
                    "start_time", "end_time")


def finding_ids(table: pa.Table) -> list[str]:
    """A stable id per row: ``<detector>-<10 hex>`` from a hash of what the finding is about
    (:data:`IDENTITY_COLUMNS`), so the same finding gets the same id across runs, processes and
    engines (DuckDB, Spark); rows about the same place get ``-2``, ``-3``... in table order."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for row in table.select(list(IDENTITY_COLUMNS)).to_pylist():
        key = "\x1f".join("" if row[c] is None else str(row[c]) for c in IDENTITY_COLUMNS)
        fid = f"{row['detector']}-{hashlib.sha1(key.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"
        seen[fid] = seen.get(fid, 0) + 1
        ids.append(fid if seen[fid] == 1 else f"{fid}-{seen[fid]}")
    return ids


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps_evidence(evidence: dict[str, Any] | None) -> str:
    return orjson.dumps(evidence or {}, default=_json_default,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True)
class DetectorFailure:
    """A detector that raised instead of returning findings: its name, the exception's type
    and message, and the formatted traceback (for a bug report)."""

    detector: str
    error: str
    message: str
    traceback: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"detector {self.detector!r} failed: {self.error}: {self.message}"


class EvidenceTable:
    """An Arrow table (``self._table``) with an ``evidence`` JSON column: rows as dicts, and
    conversions. Shared by :class:`Findings` and :class:`forensics.causes.Causes`."""

    _table: pa.Table

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts with ``evidence`` parsed from JSON."""
        out = self._table.to_pylist()
        for r in out:
            r["evidence"] = orjson.loads(r["evidence"]) if r["evidence"] else {}
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def __len__(self) -> int:
        return self._table.num_rows

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.records()[i]

    def to_arrow(self) -> pa.Table:
        return self._table

    def to_pandas(self):
        return self._table.to_pandas()

    def to_polars(self):
        import polars as pl

        return pl.from_arrow(self._table)


class Findings(EvidenceTable):
    """Findings of one or more detectors, as an Arrow table with fixed columns.

    Columns: detector, severity (critical|high|medium|low|info), title, service, operation,
    target, target_operation, version, start_time, end_time, score, evidence (JSON text with
    exemplar trace ids, counts, thresholds used, source file:line), summary; then
    ``finding_id`` (stable, from a hash of what the finding is about: :data:`IDENTITY_COLUMNS`), and the incident grouping's
    ``incident_id``, ``role`` (cause | symptom) and ``caused_by`` (the cause's finding_id), which
    :func:`forensics.incidents` fills (null on a finding that belongs to no incident).

    >>> Findings.empty().to_pandas().columns.tolist()[:3]
    ['detector', 'severity', 'title']
    """

    def __init__(self, table: pa.Table | None = None, failures: Iterable["DetectorFailure"] = ()) -> None:
        #: detectors that raised instead of returning findings (see :func:`forensics.detect`)
        self.failures: tuple[DetectorFailure, ...] = tuple(failures)
        if table is None:
            table = SCHEMA.empty_table()
        missing = [c for c in DETECTOR_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"findings table lacks columns {missing}")
        for name in COLUMNS[len(DETECTOR_COLUMNS):]:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
        table = table.select(list(COLUMNS)).cast(SCHEMA)
        if table.column("finding_id").null_count:
            given = table.column("finding_id").to_pylist()
            ids = [g or f for g, f in zip(given, finding_ids(table))]
            table = table.set_column(COLUMNS.index("finding_id"), "finding_id", pa.array(ids, pa.string()))
        self._table = table

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def empty(cls) -> "Findings":
        return cls()

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> "Findings":
        """Build from dicts; ``evidence`` may be a dict (serialized to JSON here)."""
        rows = []
        for rec in records:
            unknown = set(rec) - set(COLUMNS)
            if unknown:
                raise ValueError(f"unknown finding fields {sorted(unknown)}; allowed: {list(COLUMNS)}")
            row = {c: rec.get(c) for c in COLUMNS}
            if row["severity"] not in SEVERITY_RANK:
                raise ValueError(f"severity must be one of {SEVERITIES}, got {row['severity']!r}")
            if row["role"] is not None and row["role"] not in ROLES:
                raise ValueError(f"role must be one of {ROLES} or None, got {row['role']!r}")
            if not isinstance(row["evidence"], str):
                row["evidence"] = dumps_evidence(row["evidence"])
            for t in ("start_time", "end_time"):
                v = row[t]
                if isinstance(v, datetime) and v.tzinfo is None:
                    raise ValueError(f"{t} must be timezone-aware (UTC)")
            rows.append(row)
        return cls(pa.Table.from_pylist(rows, schema=SCHEMA))

    @classmethod
    def concat(cls, parts: Iterable["Findings"]) -> "Findings":
        parts = list(parts)
        failures = [f for p in parts for f in p.failures]
        tables = [p._table for p in parts if len(p)]
        if not tables:
            return cls(None, failures)
        return cls(pa.concat_tables(tables), failures).sorted()

    # -- access ---------------------------------------------------------------------------------
    def sorted(self) -> "Findings":
        """Most severe first, then by score (descending)."""
        if not len(self):
            return self
        rank = pa.array([SEVERITY_RANK[s] for s in self._table.column("severity").to_pylist()])
        t = self._table.append_column("_rank", rank).sort_by([("_rank", "ascending"), ("score", "descending")])
        return Findings(t.drop_columns(["_rank"]), self.failures)

    def at_least(self, severity: str) -> "Findings":
        """Findings at ``severity`` or more severe."""
        if severity not in SEVERITY_RANK:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
        keep = [SEVERITY_RANK[s] <= SEVERITY_RANK[severity] for s in self._table.column("severity").to_pylist()]
        return Findings(self._table.filter(pa.array(keep, pa.bool_())), self.failures)

    def with_columns(self, **columns: list[Any]) -> "Findings":
        """A copy with the given columns replaced (one value per finding, in order), e.g. the
        incident grouping's ``incident_id``/``role``/``caused_by``."""
        t = self._table
        for name, values in columns.items():
            if name not in COLUMNS:
                raise ValueError(f"unknown finding column {name!r}; columns: {list(COLUMNS)}")
            t = t.set_column(COLUMNS.index(name), name, pa.array(values, SCHEMA.field(name).type))
        return Findings(t, self.failures)

    def by_detector(self, name: str) -> "Findings":
        keep = [d == name for d in self._table.column("detector").to_pylist()]
        return Findings(self._table.filter(pa.array(keep, pa.bool_())), [f for f in self.failures if f.detector == name])

    def to_json(self) -> str:
        """One JSON array of findings (times ISO 8601, evidence as an object)."""
        return orjson.dumps(self.records(), default=_json_default).decode()

    def __repr__(self) -> str:
        failed = "".join(f"\n  [failed] {f}" for f in self.failures)
        if not len(self):
            return "<Findings: none>" + failed
        lines = [f"<Findings: {len(self)}>"]
        for r in self._table.to_pylist()[:20]:
            lines.append(f"  [{r['severity']}] {r['detector']}: {r['summary']}")
        return "\n".join(lines) + failed

    def _repr_html_(self) -> str:
        if not len(self):
            return "<p>No findings.</p>"
        cols = ("severity", "detector", "service", "operation", "target", "version", "summary")
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in cols) + "</tr>"
            for r in self._table.to_pylist()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
