"""OTLP protobuf: ``.pb``/``.binpb`` files holding Export{Trace,Logs,Metrics}ServiceRequest messages.

Supported
---------
- One serialized request per file (``otelcol`` file exporter with ``encoding: proto``
  without length prefixes, ``otel-cli``/SDK dumps, captured HTTP bodies). The signal is told
  apart by parsing as each request type and keeping the one that consumes every byte with
  no unknown field and has records.
- A length-delimited stream: several requests, each prefixed by its size as a varint (Java
  ``writeDelimitedTo``, Go ``protodelim``) — all three signals may be interleaved.
- A 4-byte big-endian length prefix per message (collector file exporter ``format: proto``).

Messages are rendered as protobuf-JSON (``google.protobuf.json_format``) and go through the
exact SQL mapping of ``otlp_json`` (``traces/otlp/sql.py``), so both formats give the same rows.
Rows carry ``source_offset``: the 0-based index of the record (span, log record, metric data
point) among the file's records of its signal. A file that is none of the above is one reject
(``invalid_protobuf``) with the byte offset where decoding failed.

Sniffing: ``.pb``/``.binpb`` by extension; other binary files when they parse as a request
(whole file up to 64 KiB, else the first length-prefixed message). A single unframed request
larger than 64 KiB without the extension needs ``format="otlp_proto"``.

Speed: the JSON rendering in ``json_format`` is pure Python (about 4k spans/s here); the SQL
mapping afterwards is the vectorized one of ``otlp_json``. That mapping costs about 0.2 s
whatever the size (DuckDB binds a large query), so a directory of small files (the request
bodies an OTLP/HTTP exporter POSTs) is mapped in batches (``load_batch``, see
``bench/per_file.py``).
"""
from __future__ import annotations

from typing import Iterator

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forensics.errors import Reason
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from .requests import emit_files, emit_requests, files_table, install_macros, requests_table

#: request type -> function counting its records (to prefer a parse that found content)
REQUEST_TYPES: tuple[tuple[type[Message], str], ...] = (
    (ExportTraceServiceRequest, "resource_spans"),
    (ExportLogsServiceRequest, "resource_logs"),
    (ExportMetricsServiceRequest, "resource_metrics"),
)


def parse_request(data: bytes) -> Message | None:
    """The request type that reads all of ``data`` exactly (no unknown fields) with content."""
    for cls, field in REQUEST_TYPES:
        try:
            msg = cls.FromString(data)
        except (DecodeError, RuntimeError, ValueError):
            continue
        if not getattr(msg, field):
            continue
        msg.DiscardUnknownFields()
        if msg.ByteSize() == len(data):
            return msg
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position) of the varint at ``pos``, or None if it is not a valid varint."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def split_messages(data: bytes) -> Iterator[tuple[int, Message | None]]:
    """(byte offset, message) for each request in ``data``; message None where decoding fails
    (then iteration stops: the rest of the file cannot be framed)."""
    whole = parse_request(data)
    if whole is not None:
        yield 0, whole
        return
    for framing in (_varint_frames, _fixed32_frames):
        frames = list(framing(data))
        if frames and all(m is not None for _, m in frames):
            yield from frames
            return
    best = max((list(f(data)) for f in (_varint_frames, _fixed32_frames)),
               key=lambda fr: sum(m is not None for _, m in fr))
    yield from best or [(0, None)]


def _varint_frames(data: bytes) -> Iterator[tuple[int, Message | None]]:
    pos = 0
    while pos < len(data):
        head = _varint(data, pos)
        if head is None or head[1] + head[0] > len(data) or head[0] == 0:
            yield pos, None
            return
        size, start = head
        msg = parse_request(data[start: start + size])
        yield pos, msg
        if msg is None:
            return
        pos = start + size


def _fixed32_frames(data: bytes) -> Iterator[tuple[int, Message | None]]:
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos: pos + 4], "big")
        if pos + 4 > len(data) or size == 0 or pos + 4 + size > len(data):
            yield pos, None
            return
        msg = parse_request(data[pos + 4: pos + 4 + size])
        yield pos, msg
        if msg is None:
            return
        pos += 4 + size


def _first_frame_parses(data: bytes) -> bool:
    """True when the head of a larger file starts with a complete length-prefixed request."""
    head = _varint(data, 0)
    frames = [] if head is None else [data[head[1]: head[1] + head[0]]] if head[1] + head[0] <= len(data) else []
    size = int.from_bytes(data[:4], "big")
    if 4 + size <= len(data):
        frames.append(data[4: 4 + size])
    return any(frame and parse_request(frame) is not None for frame in frames)


def _sniff(head: Head) -> float:
    """0.9 for .pb/.binpb whose head starts like a request (field 1, length-delimited); 0.6 for
    other binary content that parses as a request (the whole file when it fits in the head,
    else its first length-prefixed message); else 0."""
    data = head.data
    if head.ext in (".pb", ".binpb", ".protobuf"):
        return 0.9 if data[:1] == b"\x0a" or _varint(data, 0) is not None else 0.0
    if head.text is not None:
        return 0.0
    if not head.complete:
        return 0.6 if _first_frame_parses(data) else 0.0
    return 0.6 if any(m is not None for _, m in split_messages(data)) else 0.0


def _documents(ctx: LoadContext) -> list[str]:
    """The requests of ``ctx``'s file as protobuf-JSON texts (a part that does not decode is one
    reject, at its byte offset, and ends the file)."""
    data = ctx.read_bytes()
    if data is None:
        return []
    docs: list[str] = []
    for offset, msg in split_messages(data):
        if msg is None:
            ctx.reject(Reason.INVALID_PROTOBUF,
                       f"bytes from offset {offset} are not an OTLP Export{{Trace,Logs,Metrics}}ServiceRequest "
                       "(alone, varint-length-delimited or 4-byte-length-prefixed); expected OTLP protobuf",
                       offset=offset, raw=data[offset: offset + 64].hex())
            break
        docs.append(orjson.dumps(json_format.MessageToDict(msg)).decode())
    return docs


def load_otlp_proto_files(ctxs: list[LoadContext]) -> None:
    """Load several small OTLP protobuf files at once (request bodies an OTLP/HTTP exporter
    POSTed, one file each): one SQL mapping for all of them, each file's rows as if alone."""
    docs = [_documents(ctx) for ctx in ctxs]
    if any(docs):
        install_macros(ctxs[0])
        name = ctxs[0].register(files_table(docs))
        try:
            emit_files(ctxs, name)
        finally:
            ctxs[0].unregister(name)


@register_format("otlp_proto", signal="mixed",
                 description="OTLP protobuf Export*ServiceRequest (.pb/.binpb, single or length-delimited)",
                 sniff=_sniff, extensions=(".pb", ".binpb"), load_batch=load_otlp_proto_files)
def load_otlp_proto(ctx: LoadContext) -> None:
    """Load an OTLP protobuf file (see the module docstring for what is supported)."""
    docs = _documents(ctx)
    if docs:
        install_macros(ctx)
        name = ctx.register(requests_table(docs))
        emit_requests(ctx, name, doc_mode=True)
        ctx.unregister(name)
