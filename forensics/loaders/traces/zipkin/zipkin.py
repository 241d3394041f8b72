"""Zipkin v2 JSON spans: ``POST /api/v2/spans`` bodies and ``GET /api/v2/trace/{id}`` responses
(a JSON array of spans), a single span object, ``GET /api/v2/traces`` responses (an array of
arrays, one per trace), and the newline-delimited variant (one of those per line).

Zipkin v1 spans (``binaryAnnotations``, endpoints inside annotations) are rejected one by one
with a reason saying so.

Mapping to the canonical ``spans`` table
----------------------------------------
* ids: lowercase hex left-padded (64-bit trace ids become 32 chars with 16 leading zeros).
  Like Zipkin itself (``STRICT_TRACE_ID=false``), a 64-bit trace id joins the file's one
  128-bit trace id with the same low 64 bits (original kept in ``zipkin.original_trace_id``).
* times: ``timestamp`` and ``duration`` are microseconds, JSON numbers or numeric strings.
  Partial flushes: a span without ``duration`` is kept with NULL ``duration_ms`` and
  ``end_time``; a span without ``timestamp`` (or with 0) is rejected (``bad_time``), since it
  cannot be placed in time.
* shared client/server halves: when spans of one trace share an ``id`` and one is ``SERVER``
  while another is ``CLIENT`` (the server half usually says ``"shared": true``), both rows are
  kept. The SERVER half keeps the original id (its children point at it); the CLIENT half gets
  the derived id *original XOR 0x8000000000000000* (its highest bit flipped, e.g.
  ``000000000000beef`` -> ``800000000000beef``) and attribute ``zipkin.original_span_id``; the
  server row's ``parent_span_id`` becomes the client's derived id. Both fix-ups run over all
  the file's rows after loading it (:mod:`.joins`), so spans in different streamed
  batches still meet.
* service: ``localEndpoint.serviceName``; empty or missing gives NULL (never taken from
  ``remoteEndpoint``, which is the *other* side of the call).
* kind: ``CLIENT``/``SERVER``/``PRODUCER``/``CONSUMER``, absent -> ``unspecified``; any other
  value is rejected (``bad_value``).
* status: ``error`` when the ``error`` tag is present (any value, even ``""``; its value is
  ``status_message``, NULL when empty, then ``otel.status_description``) or
  ``otel.status_code`` (older exporters: ``ot.status_code``) is ``ERROR``; ``ok`` when it is
  ``OK``; else ``unset``.
* attributes: the tags unchanged, plus ``zipkin.debug``/``zipkin.shared`` (``true`` when set)
  and the remote endpoint as ``zipkin.remote_endpoint.{service_name,ipv4,ipv6,port}``.
  ``peer_service`` = tag ``peer.service``, else ``remoteEndpoint.serviceName``.
* resource: ``service.name`` plus ``zipkin.local_endpoint.{ipv4,ipv6,port}``;
  ``service_version`` = tag ``service.version`` (OTel exporters put resource attributes in
  tags); ``scope_name``/``scope_version`` from ``otel.scope.*`` (or ``otel.library.*``) tags;
  ``host_name`` = tag ``host.name`` or ``hostname``, else ``localEndpoint.ipv4``, else ``ipv6``.
* events: ``annotations`` as ``[{"time": ISO-8601 UTC, "name": value, "attributes": {}}]``; an
  OpenTelemetry event exported as ``"name": {"key": "value", ...}`` (the OTel-to-Zipkin spec's
  form; also ``name: {...}``) is split back into its name and attributes.
* provenance: single documents store the 0-based index of the span in the document (arrays of
  arrays flattened in order) in ``source_offset``; newline-delimited files store ``source_line``.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from ..jaeger_zipkin.common import FastBatch, SpanFormat, head_json, large_document_has, load_spans, read_ahead
from . import arrow, sql
from .joins import CLIENT_ID_MASK, join_file_rows  # noqa: F401  (CLIENT_ID_MASK: documented here)


def _fast_path(con: duckdb.DuckDBPyConnection, source: pa.Table, mode: str) -> FastBatch:
    return arrow.prepare(con, source, mode)


ZIPKIN = SpanFormat(sql.zipkin_sql, sql.RECOGNISED, f"len({sql.SPANS})", sql.EXPECTED, fast=_fast_path, fast_option="zipkin_fast")


def _is_span(obj: object) -> bool:
    return isinstance(obj, dict) and "traceId" in obj and "id" in obj and "resourceSpans" not in obj


def _sniff(head: Head) -> float:
    """Zipkin v2: a span object (or array of them, or array of arrays) with traceId and id."""
    doc = head_json(head)
    if isinstance(doc, list) and doc and isinstance(doc[0], list):
        doc = doc[0]
    if isinstance(doc, list):
        doc = doc[0] if doc else None
    if _is_span(doc):
        assert isinstance(doc, dict)
        if "binaryAnnotations" in doc:
            return 0.6  # Zipkin v1: loaded as rejects that say so
        if {"localEndpoint", "remoteEndpoint"} & doc.keys():
            return 0.95
        # no endpoint: only a span-like timestamp + duration pair (a log line with "id" and
        # "traceId" fields is not a Zipkin span)
        return 0.7 if {"timestamp", "duration"} <= doc.keys() and "spanId" not in doc else 0.0
    if large_document_has(head, r'"traceId"\s*:', r'"id"\s*:', r'"(local|remote)Endpoint"\s*:',
                          absent=(r'"resourceSpans"\s*:', r'"spanId"\s*:')):
        return 0.8
    return 0.0


@register_format("zipkin_json", signal="traces",
                 description="Zipkin v2 JSON spans: array, single span, array of traces, or one per line",
                 sniff=_sniff, extensions=(".json", ".jsonl", ".ndjson"), read_ahead=read_ahead(ZIPKIN))
def load_zipkin(ctx: LoadContext) -> None:
    """Load a Zipkin v2 JSON export into ``spans`` (see the module docstring for the mapping).

    Parameters
    ----------
    ctx:
        The file being loaded. ``ctx.options`` may set ``batch_bytes`` (bytes read per streamed
        batch or batch of lines, default 16 MiB), ``zipkin_fast=False`` (every text through the SQL
        general path of :mod:`.sql` instead of the Arrow fast path of :mod:`.arrow`, which loads the
        same rows) and ``whole_documents=True`` (parse a document in one piece).
    """
    load_spans(ctx, ZIPKIN)
    join_file_rows(ctx)
