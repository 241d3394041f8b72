"""Reading the captured OTLP bodies back, and writing the same spans as other tools would.

- :func:`read_spans`: the spans of OTLP/HTTP request bodies (protobuf, as the collector
  stored them), for the generator's own bookkeeping (truth, trace selection);
- :func:`collector_json_lines`: the requests as the OpenTelemetry Collector's ``file`` exporter
  writes them (one ``ExportTraceServiceRequest`` per line, protobuf-JSON with hex ids and
  integer enums);
- :func:`jaeger_ui_download`: a Jaeger query ``/api/traces`` response (what the Jaeger UI's
  "Download JSON" saves) for spans received over OTLP, following the collector-contrib
  translator (``ProtoFromTraces``), the Jaeger collector's ``internal.span.format`` tag and
  the query service's tag sorting and JSON model.
"""
from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def read_body(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if str(path).endswith(".gz") else data


def value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    service: str
    status: int
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    scope: str = ""
    scope_version: str = ""

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def read_requests(paths: Iterable[Path]) -> list[ExportTraceServiceRequest]:
    return [ExportTraceServiceRequest.FromString(read_body(p)) for p in paths]


def read_spans(paths: Iterable[Path]) -> list[Span]:
    out = []
    for req in read_requests(paths):
        for rs in req.resource_spans:
            res = {kv.key: value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(Span(
                        trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None, name=s.name, kind=KINDS[s.kind],
                        start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                        service=str(res.get("service.name")), status=s.status.code,
                        status_message=s.status.message,
                        attributes={kv.key: value(kv.value) for kv in s.attributes}, resource=res,
                        events=[(e.time_unix_nano, e.name, {kv.key: value(kv.value) for kv in e.attributes})
                                for e in s.events],
                        scope=ss.scope.name, scope_version=ss.scope.version))
    return out


# ------------------------------------------------------------------------------ collector file
def _hex_ids(doc: Any) -> Any:
    """protobuf-JSON has base64 ids; the collector's OTLP/JSON has hex."""
    if isinstance(doc, dict):
        for k in ("traceId", "spanId", "parentSpanId"):
            if k in doc:
                doc[k] = base64.b64decode(doc[k]).hex()
        for v in doc.values():
            _hex_ids(v)
    elif isinstance(doc, list):
        for v in doc:
            _hex_ids(v)
    return doc


def collector_json_line(req: ExportTraceServiceRequest) -> str:
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)
    return json.dumps(_hex_ids(doc), separators=(",", ":"))


def collector_json_lines(paths: Iterable[Path]) -> list[str]:
    return [collector_json_line(r) for r in read_requests(paths)]


# ------------------------------------------------------------------------------ Jaeger UI
def _tag(key: str, v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"key": key, "type": "bool", "value": v}
    if isinstance(v, int):
        return {"key": key, "type": "int64", "value": v}
    if isinstance(v, float):
        return {"key": key, "type": "float64", "value": v}
    if isinstance(v, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(v).decode()}
    if isinstance(v, (list, dict)):
        return {"key": key, "type": "string", "value": json.dumps(v, separators=(",", ":"))}
    return {"key": key, "type": "string", "value": str(v)}


def _sorted(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(tags, key=lambda t: t["key"])


def _jaeger_span(s: Span, pid: str) -> dict[str, Any]:
    tags = []
    if s.scope:
        tags.append(_tag("otel.scope.name", s.scope))
    if s.scope_version:
        tags.append(_tag("otel.scope.version", s.scope_version))
    tags += [_tag(k, v) for k, v in s.attributes.items()]
    if s.kind not in ("unspecified",):
        tags.append(_tag("span.kind", s.kind))
    if s.status == 2:
        tags += [_tag("otel.status_code", "ERROR"), _tag("error", True)]
    elif s.status == 1:
        tags.append(_tag("otel.status_code", "OK"))
    if s.status_message:
        tags.append(_tag("otel.status_description", s.status_message))
    tags.append(_tag("internal.span.format", "otlp"))  # added by the Jaeger collector
    logs = []
    for t, name, attrs in s.events:
        fields = ([_tag("event", name)] if name and "event" not in attrs else []) + _sorted(
            [_tag(k, v) for k, v in attrs.items()])
        logs.append({"timestamp": t // 1000, "fields": fields})
    refs = ([{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_span_id}]
            if s.parent_span_id else [])
    return {"traceID": s.trace_id, "spanID": s.span_id, "operationName": s.name, "references": refs,
            "startTime": s.start_ns // 1000, "duration": s.end_ns // 1000 - s.start_ns // 1000,
            "tags": _sorted(tags), "logs": logs, "processID": pid, "warnings": None}


def jaeger_trace(spans: list[Span]) -> dict[str, Any]:
    """One Jaeger query trace object (``{"traceID", "spans", "processes", "warnings"}``)."""
    processes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    out = []
    for s in spans:
        proc = {"serviceName": s.service,
                "tags": _sorted([_tag(k, v) for k, v in s.resource.items() if k != "service.name"])}
        key = json.dumps(proc, sort_keys=True)
        if key not in keys:
            keys[key] = f"p{len(keys) + 1}"
            processes[keys[key]] = proc
        out.append(_jaeger_span(s, keys[key]))
    return {"traceID": spans[0].trace_id, "spans": out, "processes": processes, "warnings": None}


def jaeger_ui_download(traces: list[list[Span]]) -> dict[str, Any]:
    """The ``/api/traces`` envelope the Jaeger UI saves, one entry of ``data`` per trace."""
    return {"data": [jaeger_trace(t) for t in traces], "total": 0, "limit": 0, "offset": 0, "errors": None}


def by_trace(spans: Iterable[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out
