"""Jaeger JSON traces: the query service's ``/api/traces`` envelope (what the Jaeger UI's
"Download JSON" writes), a single trace object, a bare array of spans with inline ``process``,
an array of trace objects, and the newline-delimited variant (one of those, or one span with
inline ``process``, per line).

Mapping to the canonical ``spans`` table
----------------------------------------
* ids: lowercase hex left-padded (Jaeger drops leading zeros: 15-char span ids, 31-char trace
  ids; 64-bit trace ids have 16 chars). A span's own ``traceID`` wins over the trace's.
* parent: from ``references`` pointing into the same trace (ids compared after padding; a
  64-bit reference id matching the low half of a 128-bit trace id counts as the same trace;
  a reference without traceID too): the first ``CHILD_OF``, else the first ``FOLLOWS_FROM``; else the legacy ``parentSpanID`` field
  (``"0"`` means none). Every other reference, including parent references into *another*
  trace, goes to ``links`` like OTLP links: ``[{"trace_id", "span_id", "trace_state": null,
  "attributes": {"opentracing.ref_type": "child_of"|"follows_from"}}]``.
* times: ``startTime`` and ``duration`` are microseconds (numbers or numeric strings).
* kind: the ``span.kind`` tag (server/client/producer/consumer/internal), else ``unspecified``
  (an unknown value is also ``unspecified``; the tag stays in ``attributes``).
* status: ``error`` if tag ``error`` is true (bool or the string "true") or
  ``otel.status_code`` is ``ERROR``; ``ok`` if ``otel.status_code`` is ``OK``; else ``unset``.
  ``status_message``: ``otel.status_description``, else (for errors) the ``message``,
  ``error.object`` or ``exception.message`` field of the first error/exception log.
* attributes: every tag, values as text (bool ``true``/``false``, numbers as written, binary
  as its base64 text), unchanged (``span.kind``, ``error`` and ``otel.*`` tags are kept too).
  Span ``warnings`` are kept as the JSON array text in attribute ``jaeger.warnings``; the
  envelope's ``errors`` (e.g. "trace not found") become load warnings.
* resource: ``service.name`` = process ``serviceName`` plus the process tags;
  ``service_version`` = tag ``service.version``; ``host_name`` = ``host.name``, ``hostname`` or
  ``ip``. ``scope_name``/``scope_version`` from ``otel.scope.*`` (or ``otel.library.*``) tags.
* events: ``logs`` as ``[{"time": ISO-8601 UTC, "name": field "event", "attributes": other
  fields}]``.
* provenance: single documents store the 0-based index of the span in the document (across
  all traces, in order) in ``source_offset``; newline-delimited files store ``source_line``.

The query API v3 (Jaeger v2: OTLP inside ``{"result": ...}``) is format ``jaeger_api_v3``,
registered here and read by :mod:`.jaeger_v3` through the OTLP mapping.

Rejected: a document or line that is not JSON (with line/column), valid JSON of another
shape, spans whose ``processID`` names no process of their trace, and what
:func:`finalize_spans_sql` rejects (bad ids, no start time).
"""
from __future__ import annotations

import json

import duckdb
import pyarrow as pa

from forensics.loaders.core.context import LoadContext
from forensics.errors import Reason
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from ..jaeger_zipkin.common import FastBatch, SpanFormat, head_json, large_document_has, load_spans, read_ahead
from . import arrow, sql
from .jaeger_v3 import load_v3, sniff_v3


def _envelope_errors(ctx: LoadContext, tail: bytes, offset: int) -> None:
    """Read what follows the ``data`` array of a Jaeger envelope: warn about the ``errors`` the
    Jaeger query API listed there (e.g. a trace id that was not found; the spans it did return are
    loaded as usual), and reject anything after the envelope's end (a second document is never
    skipped silently). ``offset``: where ``tail`` starts in the file (bytes)."""
    text = tail.decode("utf-8", "replace").strip()
    end = 1 if text.startswith("}") else 0
    if text.startswith(","):
        try:  # the envelope's other members: a small object, then the end of the document
            rest, end = json.JSONDecoder().raw_decode("{" + text[1:])
        except (ValueError, RecursionError) as exc:
            ctx.reject(Reason.INVALID_JSON, f"the Jaeger envelope after its data array is not valid JSON ({exc}); "
                       "the spans before it were loaded", raw=text[:1000], offset=offset, table="spans")
            return
        errors = rest.get("errors") if isinstance(rest, dict) else None
        if isinstance(errors, list) and errors:
            shown = "; ".join(str(e.get("msg", e) if isinstance(e, dict) else e)[:200] for e in errors[:5])
            ctx.warn(f"the Jaeger query API reported {len(errors)} error(s): {shown}")
    after = text[end:].strip()
    if after:
        ctx.reject(Reason.WRONG_SHAPE, "more data after the end of the Jaeger JSON document (concatenated "
                   "documents?); it was not read: split the file, or write one document per line",
                   raw=after[:1000], offset=offset, table="spans")


def _fast_path(con: duckdb.DuckDBPyConnection, source: pa.Table, mode: str) -> FastBatch:
    return arrow.prepare(con, source, mode)


JAEGER = SpanFormat(sql.jaeger_sql, sql.RECOGNISED, sql.COUNT, sql.EXPECTED, _envelope_errors, _fast_path, "jaeger_fast")


def _sniff(head: Head) -> float:
    """Jaeger JSON: an envelope with data[*].spans, a trace object with traceID and spans, or an
    array of such traces / of spans with traceID and spanID."""
    doc = head_json(head)
    if isinstance(doc, dict):
        data = doc.get("data")
        if isinstance(data, list):
            if data and isinstance(data[0], dict) and "spans" in data[0] and "traceID" in data[0]:
                return 0.95
            if not data and {"total", "limit", "offset", "errors"} <= doc.keys():
                return 0.6  # an empty query result
            return 0.0
        if "traceID" in doc and isinstance(doc.get("spans"), list):
            return 0.95
        # one span (a JSON log line may carry traceID/spanID too, but not operationName/startTime)
        return 0.9 if {"traceID", "spanID", "operationName", "startTime"} <= doc.keys() else 0.0
    if isinstance(doc, list):
        first = doc[0] if doc else None
        if isinstance(first, dict) and "traceID" in first and (
                "spanID" in first or isinstance(first.get("spans"), list)):
            return 0.95
        return 0.0
    if large_document_has(head, r'"traceID"\s*:', r'"spanID"\s*:', r'"operationName"\s*:'):
        return 0.8
    return 0.0


@register_format("jaeger_json", signal="traces",
                 description="Jaeger JSON: /api/traces envelope, one trace, span array, or one trace per line",
                 sniff=_sniff, extensions=(".json", ".jsonl", ".ndjson"), read_ahead=read_ahead(JAEGER))
def load_jaeger(ctx: LoadContext) -> None:
    """Load a Jaeger JSON export into ``spans`` (see the module docstring for the mapping).

    Parameters
    ----------
    ctx:
        The file being loaded. ``ctx.options`` may set ``batch_bytes`` (bytes read per streamed
        batch or batch of lines, default 16 MiB), ``jaeger_fast=False`` (every text through the SQL
        general path of :mod:`.sql` instead of the Arrow fast path of :mod:`.arrow`, which loads the
        same rows) and ``whole_documents=True`` (parse a document in one piece
        instead of streaming its array; for comparison and tests).
    """
    load_spans(ctx, JAEGER)


register_format("jaeger_api_v3", signal="traces",
                description='Jaeger query API v3 JSON: OTLP traces in {"result": ...}, one response or one per line',
                sniff=sniff_v3, extensions=(".json", ".jsonl", ".ndjson"))(load_v3)
