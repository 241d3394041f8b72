"""Streaming trace writers shaped like real exporters.

* ``otlp``: OTLP/JSON as the OpenTelemetry Collector ``file`` exporter writes it: one
  ``ExportTraceServiceRequest`` per line (several traces per line, spans grouped by resource
  and instrumentation scope, hex ids, ``startTimeUnixNano``/``intValue`` as strings, kind and
  status code as integers, zero values omitted as protojson does).
* ``jaeger``: the Jaeger query service's ``/api/traces`` response (``{"data": [...], "total":
  0, "limit": 0, "offset": 0, "errors": null}``), one file per ``traces_per_file`` traces.
* ``zipkin``: Zipkin v2 JSON span arrays (what ``/api/v2/traces`` flattens to), one file per
  ``traces_per_file`` traces; tags are strings, times in microseconds.

Every writer is fed chunks of spans (whole traces, contiguous) and keeps nothing between
chunks but open file handles, so memory stays bounded at any trace count.
"""
from __future__ import annotations

import gzip
import os
from typing import IO, Any, Iterator

import orjson

from .model import Span
from .topology import CLIENT, CONSUMER, ERROR, KIND_NAMES, OK, PRODUCER, SCOPES, SERVER

FORMATS = ("otlp", "jaeger", "zipkin", "mixed")
#: ``mixed``: which services' spans go to which format (teams exporting to different backends)
MIXED_ROUTES = {"api-gateway": "otlp", "catalog-service": "otlp", "inventory-service": "jaeger",
                "order-worker": "jaeger", "pricing-service": "zipkin"}


def open_out(path: str, compress: bool) -> IO[bytes]:
    """Open ``path`` for binary writing; with ``compress``, deterministic gzip (no name, mtime 0)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if compress:
        raw = open(path + ".gz", "wb")
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)  # type: ignore[return-value]
    return open(path, "wb")


def close_out(fh: IO[bytes]) -> None:
    inner = getattr(fh, "fileobj", None)
    fh.close()
    if inner is not None:
        inner.close()


def split_traces(spans: list[Span]) -> Iterator[list[Span]]:
    """Consecutive runs of spans with the same trace id."""
    start = 0
    for i in range(1, len(spans) + 1):
        if i == len(spans) or spans[i].trace_id != spans[start].trace_id:
            yield spans[start:i]
            start = i


def _otlp_value(v: Any) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


_ATTR_CACHE: dict[tuple, orjson.Fragment] = {}


def otlp_attributes(attrs: list[tuple[str, Any]]) -> list[orjson.Fragment]:
    """OTLP ``KeyValue`` list as pre-encoded JSON fragments, memoized (values repeat a lot)."""
    out = []
    cache = _ATTR_CACHE
    for k, v in attrs:
        key = (k, v.__class__, v)
        kv = cache.get(key)
        if kv is None:
            if len(cache) > 100_000:
                cache.clear()
            kv = cache[key] = orjson.Fragment(orjson.dumps({"key": k, "value": _otlp_value(v)}))
        out.append(kv)
    return out


class TraceWriter:
    """Base: counts traces and files; subclasses implement :meth:`write` and :meth:`close`."""

    def __init__(self, out_dir: str, *, compress: bool = False) -> None:
        self.out_dir = out_dir
        self.compress = compress
        self.files: list[str] = []
        self.traces = 0
        self.spans = 0

    def _open(self, rel: str) -> IO[bytes]:
        path = os.path.join(self.out_dir, rel)
        self.files.append(rel + (".gz" if self.compress else ""))
        return open_out(path, self.compress)

    def write(self, spans: list[Span]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class OtlpJsonWriter(TraceWriter):
    """OTLP/JSON lines (Collector file exporter), ``traces_per_line`` traces per request line."""

    def __init__(self, out_dir: str, *, compress: bool = False, traces_per_line: int = 25,
                 filename: str = "traces.otlp.jsonl") -> None:
        super().__init__(out_dir, compress=compress)
        self.traces_per_line = traces_per_line
        self.fh = self._open(filename)

    @staticmethod
    def span_json(s: Span) -> dict:
        d: dict[str, Any] = {"traceId": s.trace_id, "spanId": s.span_id}
        if s.parent_id:
            d["parentSpanId"] = s.parent_id
        # W3C trace flags (sampled) | has-is-remote bit | is-remote bit (remote parent of server/consumer spans)
        d["flags"] = 769 if s.parent_id and s.kind in (SERVER, CONSUMER) else 257
        d["name"] = s.name
        d["kind"] = s.kind
        d["startTimeUnixNano"] = str(s.start_ns)
        d["endTimeUnixNano"] = str(s.end_ns)
        d["attributes"] = otlp_attributes(s.attrs)
        if s.events:
            d["events"] = [{"timeUnixNano": str(t), "name": n, "attributes": otlp_attributes(a)} for t, n, a in s.events]
        if s.status == ERROR:
            d["status"] = {"message": s.message, "code": ERROR} if s.message else {"code": ERROR}
        elif s.status == OK:
            d["status"] = {"code": OK}
        else:
            d["status"] = {}
        return d

    def request_json(self, spans: list[Span]) -> dict:
        groups: dict[Any, dict[str, list]] = {}
        for s in spans:
            groups.setdefault(s.res, {}).setdefault(s.scope, []).append(self.span_json(s))
        return {"resourceSpans": [
            {"resource": {"attributes": otlp_attributes(res.attributes)},
             "scopeSpans": [{"scope": {"name": SCOPES[sc][0], "version": SCOPES[sc][1]}, "spans": sp}
                            for sc, sp in scopes.items()],
             "schemaUrl": "https://opentelemetry.io/schemas/1.26.0"}
            for res, scopes in groups.items()]}

    def write(self, spans: list[Span]) -> None:
        batch: list[Span] = []
        n = 0
        for trace in split_traces(spans):
            batch.extend(trace)
            n += 1
            if n == self.traces_per_line:
                self.fh.write(orjson.dumps(self.request_json(batch)) + b"\n")
                batch, n = [], 0
            self.traces += 1
        if batch:
            self.fh.write(orjson.dumps(self.request_json(batch)) + b"\n")
        self.spans += len(spans)

    def close(self) -> None:
        close_out(self.fh)


def _jaeger_tag(k: str, v: Any) -> dict:
    if isinstance(v, bool):
        return {"key": k, "type": "bool", "value": v}
    if isinstance(v, int):
        return {"key": k, "type": "int64", "value": v}
    if isinstance(v, float):
        return {"key": k, "type": "float64", "value": v}
    return {"key": k, "type": "string", "value": str(v)}


class _FilePerTraces(TraceWriter):
    """Writers that put ``traces_per_file`` traces in each numbered file."""

    pattern = "traces-{:05d}.json"

    def __init__(self, out_dir: str, *, compress: bool = False, traces_per_file: int = 500) -> None:
        super().__init__(out_dir, compress=compress)
        self.traces_per_file = traces_per_file
        self._pending: list[bytes] = []

    def write(self, spans: list[Span]) -> None:
        for trace in split_traces(spans):
            self._pending.append(self.encode_trace(trace))
            self.traces += 1
            self.spans += len(trace)
            if len(self._pending) == self.traces_per_file:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            fh = self._open(self.pattern.format(len(self.files) + 1))
            fh.write(self.envelope(self._pending))
            close_out(fh)
            self._pending = []

    def close(self) -> None:
        self._flush()

    def encode_trace(self, trace: list[Span]) -> bytes:
        raise NotImplementedError

    def envelope(self, parts: list[bytes]) -> bytes:
        raise NotImplementedError


class JaegerJsonWriter(_FilePerTraces):
    """Jaeger query API ``/api/traces`` JSON."""

    pattern = "jaeger/traces-{:05d}.json"

    def encode_trace(self, trace: list[Span]) -> bytes:
        procs: dict[Any, str] = {}
        out = []
        for s in trace:
            pid = procs.setdefault(s.res, f"p{len(procs) + 1}")
            tags = [_jaeger_tag(k, v) for k, v in s.attrs]
            tags.append({"key": "otel.scope.name", "type": "string", "value": SCOPES[s.scope][0]})
            tags.append({"key": "otel.scope.version", "type": "string", "value": SCOPES[s.scope][1]})
            if s.kind in KIND_NAMES and s.kind != 1:
                tags.append({"key": "span.kind", "type": "string", "value": KIND_NAMES[s.kind]})
            if s.status == ERROR:
                tags.append({"key": "otel.status_code", "type": "string", "value": "ERROR"})
                tags.append({"key": "error", "type": "bool", "value": True})
                if s.message:
                    tags.append({"key": "otel.status_description", "type": "string", "value": s.message})
            elif s.status == OK:
                tags.append({"key": "otel.status_code", "type": "string", "value": "OK"})
            start_us = s.start_ns // 1000
            out.append({
                "traceID": s.trace_id, "spanID": s.span_id, "operationName": s.name,
                "references": ([{"refType": "CHILD_OF", "traceID": s.trace_id, "spanID": s.parent_id}]
                               if s.parent_id else []),
                "startTime": start_us, "duration": max(s.end_ns // 1000 - start_us, 0), "tags": tags,
                "logs": [{"timestamp": t // 1000, "fields": [{"key": "event", "type": "string", "value": n},
                                                              *[_jaeger_tag(k, v) for k, v in a]]}
                         for t, n, a in s.events],
                "processID": pid, "warnings": None, "flags": 1,
            })
        processes = {pid: {"serviceName": res.service,
                           "tags": [_jaeger_tag(k, v) for k, v in res.attributes if k != "service.name"]}
                     for res, pid in procs.items()}
        return orjson.dumps({"traceID": trace[0].trace_id, "spans": out, "processes": processes, "warnings": None})

    def envelope(self, parts: list[bytes]) -> bytes:
        return b'{"data":[' + b",".join(parts) + b'],"total":0,"limit":0,"offset":0,"errors":null}\n'


_ZIPKIN_KIND = {SERVER: "SERVER", CLIENT: "CLIENT", PRODUCER: "PRODUCER", CONSUMER: "CONSUMER"}


class ZipkinJsonWriter(_FilePerTraces):
    """Zipkin v2 JSON arrays (OpenTelemetry Collector zipkin exporter shape)."""

    pattern = "zipkin/spans-{:05d}.json"

    def encode_trace(self, trace: list[Span]) -> bytes:
        out = []
        for s in trace:
            tags = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in s.attrs}
            tags.update((k, v) for k, v in s.res.attributes if k != "service.name")
            tags["otel.scope.name"], tags["otel.scope.version"] = SCOPES[s.scope]
            if s.status == ERROR:
                tags["otel.status_code"] = "ERROR"
                tags["error"] = s.message or ""
            elif s.status == OK:
                tags["otel.status_code"] = "OK"
            start_us = s.start_ns // 1000
            d: dict[str, Any] = {"traceId": s.trace_id}
            if s.parent_id:
                d["parentId"] = s.parent_id
            d["id"] = s.span_id
            if s.kind in _ZIPKIN_KIND:
                d["kind"] = _ZIPKIN_KIND[s.kind]
            d["name"] = s.name
            d["timestamp"] = start_us
            d["duration"] = max(s.end_ns // 1000 - start_us, 1)
            d["localEndpoint"] = {"serviceName": s.res.service, "ipv4": s.res.ip}
            peer = next((v for k, v in s.attrs if k == "peer.service"), None)
            if peer and s.kind in (CLIENT, PRODUCER):
                d["remoteEndpoint"] = {"serviceName": peer}
            if s.events:
                d["annotations"] = [{"timestamp": t // 1000, "value": n + ": " + orjson.dumps(dict(a)).decode()}
                                    for t, n, a in s.events]
            d["tags"] = tags
            out.append(orjson.dumps(d))
        return b",".join(out)

    def envelope(self, parts: list[bytes]) -> bytes:
        return b"[" + b",".join(parts) + b"]\n"


class MixedWriter(TraceWriter):
    """Splits each trace by service across OTLP, Jaeger and Zipkin files (:data:`MIXED_ROUTES`)."""

    def __init__(self, out_dir: str, *, compress: bool = False) -> None:
        super().__init__(out_dir, compress=compress)
        self.parts = {f: make_writer(f, out_dir, compress=compress) for f in ("otlp", "jaeger", "zipkin")}

    def write(self, spans: list[Span]) -> None:
        routed: dict[str, list[Span]] = {f: [] for f in self.parts}
        for s in spans:
            routed[MIXED_ROUTES[s.res.service]].append(s)
        for fmt, part in routed.items():
            self.parts[fmt].write(part)
        self.traces += sum(1 for _ in split_traces(spans))
        self.spans += len(spans)

    def close(self) -> None:
        for part in self.parts.values():
            part.close()
            self.files += part.files


def make_writer(fmt: str, out_dir: str, *, compress: bool = False) -> TraceWriter:
    """A trace writer for ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "mixed":
        return MixedWriter(out_dir, compress=compress)
    if fmt == "otlp":
        return OtlpJsonWriter(out_dir, compress=compress)
    if fmt == "jaeger":
        return JaegerJsonWriter(out_dir, compress=compress)
    if fmt == "zipkin":
        return ZipkinJsonWriter(out_dir, compress=compress)
    raise ValueError(f"unknown trace format {fmt!r}; choose one of {', '.join(FORMATS)}")
