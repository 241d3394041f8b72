"""Round trip: one small trace written by this test as OTLP JSON, OTLP protobuf, Jaeger JSON and
Zipkin JSON (OTel-style unique ids, and B3-style shared client/server ids) loads to the same
canonical rows, up to each format's precision.

The trace is the flagship shape: catalog-service ``GET /search`` (server) calls
inventory-service ``GET /items`` (client -> server), which runs a failing Postgres query.
Times carry sub-microsecond nanoseconds: OTLP keeps them in ``duration_ms``; Jaeger and Zipkin
carry microseconds, so their ``duration_ms`` may differ by < 1 µs. Timestamps are stored with
microsecond precision by every format.

Format-specific mapping keys (how a format spells kind, status, scope or the resource) stay in
``attributes`` for forensic fidelity; they are listed in :data:`MAPPING_KEYS` and left out of
the comparison.
"""
from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from forensics.loaders.traces.zipkin.zipkin import CLIENT_ID_MASK

from ._jaeger_zipkin_util import BASE, load, spans_by_id

T0_NS = int(BASE.timestamp()) * 1_000_000_000
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SHARED = "352bff9a74ca9ad2"  # the id a B3 server half shares with its client
SCOPE = ("io.opentelemetry.tomcat-10.0", "1.32.0")


@dataclass
class S:
    span_id: str
    parent: str | None
    service: str
    version: str
    host: str
    name: str
    kind: str  # server | client
    start_ns: int  # relative to T0
    dur_ns: int
    attrs: dict[str, str | int]
    status: str = "unset"
    message: str | None = None
    events: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)  # (relative ns, name, attributes)


CLIENT = f"{int(SHARED, 16) ^ CLIENT_ID_MASK:016x}"
SPANS = [
    S("a1b2c3d4e5f60718", None, "catalog-service", "1.8.0", "catalog-1", "GET /search", "server", 0, 412_345_678,
      {"http.request.method": "GET", "http.route": "/search", "http.response.status_code": 200}),
    S(CLIENT, "a1b2c3d4e5f60718", "catalog-service", "1.8.0", "catalog-1", "GET /items", "client", 1_250_321, 350_123_456,
      {"http.request.method": "GET", "peer.service": "inventory-service", "http.response.status_code": 500},
      "error", "HTTP 500"),
    S(SHARED, CLIENT, "inventory-service", "2.3.1", "inventory-1", "GET /items", "server", 3_000_999, 340_000_001,
      {"http.request.method": "GET", "http.route": "/items", "http.response.status_code": 500}, "error", "db timeout"),
    S("0d30000000000004", SHARED, "inventory-service", "2.3.1", "inventory-1", "SELECT inventory.items", "client",
      4_000_000, 300_000_000, {"db.system": "postgresql", "db.statement": "SELECT * FROM items WHERE id = $1"},
      "error", "statement timeout",
      [(304_000_500, "exception", {"exception.type": "PSQLException", "exception.message": "canceling statement"})]),
]

#: attribute keys that only spell out kind/status/scope/resource in one format
MAPPING_KEYS = {"span.kind", "error", "otel.status_code", "otel.status_description", "otel.scope.name",
                "otel.scope.version", "service.version", "host.name"}


def _us(ns: int) -> int:
    return (T0_NS + ns) // 1000


# -- writers --------------------------------------------------------------------------------------

def _otlp_request() -> dict[str, Any]:
    def value(v: str | int) -> dict[str, str]:
        return {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}

    resources: dict[str, list[S]] = {}
    for s in SPANS:
        resources.setdefault(s.service, []).append(s)
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": value(group[0].service)},
                                    {"key": "service.version", "value": value(group[0].version)},
                                    {"key": "host.name", "value": value(group[0].host)}]},
        "scopeSpans": [{"scope": {"name": SCOPE[0], "version": SCOPE[1]}, "spans": [{
            "traceId": TRACE, "spanId": s.span_id, "parentSpanId": s.parent or "", "name": s.name,
            "kind": {"server": 2, "client": 3}[s.kind],
            "startTimeUnixNano": str(T0_NS + s.start_ns), "endTimeUnixNano": str(T0_NS + s.start_ns + s.dur_ns),
            "attributes": [{"key": k, "value": value(v)} for k, v in s.attrs.items()],
            "events": [{"timeUnixNano": str(T0_NS + t), "name": n,
                        "attributes": [{"key": k, "value": value(v)} for k, v in a.items()]} for t, n, a in s.events],
            "status": {"code": 2, "message": s.message} if s.status == "error" else {},
        } for s in group]}],
    } for group in resources.values()]}


def write_otlp_json(tmp: Path) -> Path:
    path = tmp / "trace.otlp.json"
    path.write_text(json.dumps(_otlp_request()))
    return path


def write_otlp_proto(tmp: Path) -> Path:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = _otlp_request()
    for rs in request["resourceSpans"]:  # protobuf-JSON wants base64 ids
        for span in rs["scopeSpans"][0]["spans"]:
            for key in ("traceId", "spanId", "parentSpanId"):
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    msg = json_format.ParseDict(request, ExportTraceServiceRequest())
    path = tmp / "trace.binpb"
    path.write_bytes(msg.SerializeToString())
    return path


def _jaeger_tag(k: str, v: str | int | bool) -> dict[str, Any]:
    kind = "bool" if isinstance(v, bool) else "int64" if isinstance(v, int) else "string"
    return {"key": k, "type": kind, "value": v}


def write_jaeger(tmp: Path) -> Path:
    processes = {f"p{i}": {"serviceName": svc, "tags": [_jaeger_tag("service.version", s.version),
                                                         _jaeger_tag("host.name", s.host)]}
                 for i, (svc, s) in enumerate({s.service: s for s in SPANS}.items(), 1)}
    pid = {p["serviceName"]: k for k, p in processes.items()}
    spans = []
    for s in SPANS:
        tags = [_jaeger_tag(k, v) for k, v in s.attrs.items()]
        tags += [_jaeger_tag("otel.scope.name", SCOPE[0]), _jaeger_tag("otel.scope.version", SCOPE[1]),
                 _jaeger_tag("span.kind", s.kind)]
        if s.status == "error":
            tags += [_jaeger_tag("otel.status_code", "ERROR"), _jaeger_tag("error", True),
                     _jaeger_tag("otel.status_description", s.message or "")]
        spans.append({
            "traceID": TRACE.lstrip("0"), "spanID": s.span_id.lstrip("0"), "operationName": s.name,
            "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": s.parent}] if s.parent else [],
            "startTime": _us(s.start_ns), "duration": _us(s.start_ns + s.dur_ns) - _us(s.start_ns), "tags": tags,
            "logs": [{"timestamp": _us(t), "fields": [_jaeger_tag("event", n)] + [_jaeger_tag(k, v) for k, v in a.items()]}
                     for t, n, a in s.events],
            "processID": pid[s.service], "warnings": None, "flags": 1,
        })
    path = tmp / "trace.jaeger.json"
    path.write_text(json.dumps({"data": [{"traceID": TRACE, "spans": spans, "processes": processes, "warnings": None}],
                                "total": 0, "limit": 0, "offset": 0, "errors": None}, indent=2))
    return path


def _zipkin_spans(shared: bool) -> list[dict[str, Any]]:
    out = []
    for s in SPANS:
        tags = {k: str(v) for k, v in s.attrs.items()}
        tags.update({"otel.scope.name": SCOPE[0], "otel.scope.version": SCOPE[1], "service.version": s.version,
                     "host.name": s.host})
        if s.status == "error":
            tags.update({"otel.status_code": "ERROR", "error": s.message or ""})
        span: dict[str, Any] = {"traceId": TRACE, "id": s.span_id, "kind": s.kind.upper(), "name": s.name,
                                "timestamp": _us(s.start_ns), "duration": _us(s.start_ns + s.dur_ns) - _us(s.start_ns),
                                "localEndpoint": {"serviceName": s.service, "ipv4": "10.0.0.1"}, "tags": tags}
        if s.parent:
            span["parentId"] = s.parent
        if s.events:
            span["annotations"] = [{"timestamp": _us(t), "value": f'"{n}":' + json.dumps(a)} for t, n, a in s.events]
        if shared and s.span_id == CLIENT:  # B3: the client half carries the id its server shares
            span["id"] = SHARED
        if shared and s.span_id == SHARED:
            span.update(parentId=CLIENT_PARENT, shared=True)
        out.append(span)
    return out


CLIENT_PARENT = next(s.parent for s in SPANS if s.span_id == CLIENT)


def write_zipkin(tmp: Path) -> Path:
    path = tmp / "trace.zipkin.json"
    path.write_text(json.dumps(_zipkin_spans(shared=False)))
    return path


def write_zipkin_shared(tmp: Path) -> Path:
    path = tmp / "trace.zipkin-shared.json"
    path.write_text(json.dumps([_zipkin_spans(shared=True)]))  # /api/v2/traces: a list of traces
    return path


# -- expectations ---------------------------------------------------------------------------------

def _expected() -> dict[str, dict[str, Any]]:
    out = {}
    for s in SPANS:
        start = BASE + timedelta(microseconds=_us(s.start_ns) - T0_NS // 1000)
        end = BASE + timedelta(microseconds=_us(s.start_ns + s.dur_ns) - T0_NS // 1000)
        out[s.span_id] = {
            "trace_id": TRACE, "parent_span_id": s.parent, "service": s.service, "service_version": s.version,
            "host_name": s.host, "name": s.name, "kind": s.kind, "start_time": start, "end_time": end,
            "status": s.status, "status_message": s.message, "scope_name": SCOPE[0], "scope_version": SCOPE[1],
            "http_method": s.attrs.get("http.request.method"), "http_route": s.attrs.get("http.route"),
            "http_status_code": s.attrs.get("http.response.status_code"), "peer_service": s.attrs.get("peer.service"),
            "db_system": s.attrs.get("db.system"), "db_statement": s.attrs.get("db.statement"),
            "attributes": {k: str(v) for k, v in s.attrs.items()},
            "events": [{"time": (BASE + timedelta(microseconds=_us(t) - T0_NS // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "name": n, "attributes": a} for t, n, a in s.events] or None,
        }
    return out


def _canonical(row: dict[str, Any]) -> dict[str, Any]:
    keep = {k: row[k] for k in ("trace_id", "parent_span_id", "service", "service_version", "host_name", "name",
                                "kind", "start_time", "end_time", "status", "status_message", "scope_name",
                                "scope_version", "http_method", "http_route", "http_status_code", "peer_service",
                                "db_system", "db_statement", "events")}
    keep["attributes"] = {k: v for k, v in row["attributes"].items()
                          if k not in MAPPING_KEYS and not k.startswith("zipkin.")}
    return keep


WRITERS: dict[str, tuple[str, Callable[[Path], Path], float]] = {
    # name: (format it must sniff as, writer, duration_ms tolerance)
    "otlp_json": ("otlp_json", write_otlp_json, 1e-9),
    "otlp_proto": ("otlp_proto", write_otlp_proto, 1e-9),
    "jaeger": ("jaeger_json", write_jaeger, 1e-3),
    "zipkin": ("zipkin_json", write_zipkin, 1e-3),
    "zipkin_shared": ("zipkin_json", write_zipkin_shared, 1e-3),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_same_canonical_rows(name, tmp_path):
    fmt, write, tolerance = WRITERS[name]
    path = write(tmp_path)
    case, report = load(path)
    assert [f.format for f in report.files] == [fmt]
    assert (report.rows_loaded, report.rows_rejected) == (len(SPANS), 0)
    rows = spans_by_id(case)
    assert {k: _canonical(v) for k, v in rows.items()} == _expected()
    for s in SPANS:
        assert rows[s.span_id]["duration_ms"] == pytest.approx(s.dur_ns / 1e6, abs=tolerance)
    if name == "zipkin_shared":
        assert rows[CLIENT]["attributes"]["zipkin.original_span_id"] == SHARED


def test_all_formats_in_one_case(tmp_path):
    """Every format loads into one case from one directory (sniffed per file); the same spans in
    five formats are kept once (the first file in load order), the other copies counted as merged."""
    names = list(WRITERS)
    for n in names:
        (tmp_path / n).mkdir()
        WRITERS[n][1](tmp_path / n)
    case, report = load(tmp_path)
    assert sorted(f.format for f in report.files) == sorted(WRITERS[n][0] for n in names)
    assert all(f.records_read == len(SPANS) for f in report.files)
    assert (report.rows_loaded, report.rows_merged, report.rows_rejected) == (len(SPANS), len(SPANS) * (len(names) - 1), 0)
    first = min(report.files, key=lambda f: f.path)
    assert case.sql("SELECT DISTINCT source_file FROM spans").rows() == [(first.path,)]
    assert case.sql("SELECT sum(rows_loaded), sum(rows_merged) FROM files").rows() == [(len(SPANS), len(SPANS) * (len(names) - 1))]