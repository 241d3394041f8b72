"""SpanBuilder: hand-build canonical span rows (for tests, examples and small scenarios).

>>> from datetime import datetime, timezone
>>> import forensics
>>> b = SpanBuilder(datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc), seed=1)
>>> root = b.span("catalog-service", "GET /search", kind="server", start_ms=0, duration_ms=120)
>>> _ = b.span("catalog-service", "GET /items", kind="client", parent=root, start_ms=5, duration_ms=30,
...            attributes={"peer.service": "inventory-service"})
>>> case = forensics.open_case()
>>> b.insert(case)
2
>>> case.sql("select peer_service from spans where kind = 'client'").scalar()
'inventory-service'
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .. import schema
from ..loaders.core.semconv import PROMOTED, INTEGER_COLUMNS

if TYPE_CHECKING:
    from ..case import Case


@dataclass(frozen=True)
class SpanRef:
    trace_id: str
    span_id: str
    start_ms: float


class SpanBuilder:
    """Collect spans relative to a base time (``start_ms`` offsets, ``duration_ms`` lengths)."""

    def __init__(self, base_time: datetime, seed: int = 0, source_file: str = "builder") -> None:
        if base_time.tzinfo is None:
            raise ValueError("base_time must be timezone-aware (UTC)")
        self.base_time = base_time
        self._rng = random.Random(seed)
        self.rows: list[dict[str, Any]] = []
        self.source_file = source_file

    def new_trace_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def new_span_id(self) -> str:
        return f"{self._rng.getrandbits(64) or 1:016x}"

    def span(self, service: str, name: str, *, kind: str = "internal", start_ms: float = 0.0,
             duration_ms: float = 1.0, parent: SpanRef | None = None, trace_id: str | None = None,
             version: str | None = None, status: str = "unset", status_message: str | None = None,
             attributes: dict[str, Any] | None = None, resource_attributes: dict[str, Any] | None = None,
             host: str | None = None, events: str | None = None, scope: str | None = None) -> SpanRef:
        """Add one span; ``start_ms`` is relative to the builder's base time. Returns its ref.
        ``scope`` is the instrumentation scope (``opentelemetry.instrumentation.flask``)."""
        tid = parent.trace_id if parent else (trace_id or self.new_trace_id())
        sid = self.new_span_id()
        attrs = {k: str(v) for k, v in (attributes or {}).items()}
        res = {"service.name": service, **({"service.version": version} if version else {}),
               **({"host.name": host} if host else {}), **{k: str(v) for k, v in (resource_attributes or {}).items()}}
        start = self.base_time + timedelta(milliseconds=start_ms)
        row: dict[str, Any] = {
            "trace_id": tid, "span_id": sid, "parent_span_id": parent.span_id if parent else None,
            "service": service, "service_version": version, "name": name, "kind": kind,
            "start_time": start, "end_time": start + timedelta(milliseconds=duration_ms),
            "duration_ms": float(duration_ms), "status": status, "status_message": status_message,
            "attributes": list(attrs.items()), "resource_attributes": list(res.items()),
            "host_name": host, "events": events, "scope_name": scope, "format": "builder", "source_file": self.source_file,
            "source_line": len(self.rows) + 1,
        }
        for col, keys in PROMOTED.items():
            value = next((attrs[k] for k in keys if k in attrs), None)
            if value is not None and col in INTEGER_COLUMNS:
                value = int(float(value))
            row[col] = value
        self.rows.append(row)
        return SpanRef(tid, sid, start_ms)

    def to_arrow(self) -> pa.Table:
        """The spans as an Arrow table with the canonical ``spans`` schema."""
        sch = schema.arrow_schema("spans")
        cols = {f.name: [r.get(f.name) for r in self.rows] for f in sch}
        return pa.table({name: pa.array(values, sch.field(name).type) for name, values in cols.items()}, schema=sch)

    def insert(self, case: "Case") -> int:
        """Append the spans to ``case.spans``; returns the number of rows."""
        table = self.to_arrow()
        case.con.register("_builder_spans", table)
        try:
            case.execute('INSERT INTO spans BY NAME SELECT * FROM _builder_spans')
        finally:
            case.con.unregister("_builder_spans")
        return table.num_rows
