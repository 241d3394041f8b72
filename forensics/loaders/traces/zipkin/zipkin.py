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
  the file's rows after loading it (:mod:`._zipkin_joins`), so spans in different streamed
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

from . import _zipkin_arrow
from ._jaeger_zipkin import (FastBatch, SpanFormat, documents_sql, head_json, hex_sql, iso_sql, kv_map_sql,
                             large_document_has, load_spans, micros_sql, read_ahead, span_offset_sql, ts_sql)
from ._semconv import SPAN_ID_HEX, TRACE_ID_HEX, finalize_spans_sql, kind_sql
from ._zipkin_joins import CLIENT_ID_MASK, join_file_rows  # noqa: F401  (CLIENT_ID_MASK: documented here)
from .context import LoadContext
from .registry import register_format
from .sniff import Head

_ENDPOINT = '{"serviceName": "VARCHAR", "ipv4": "VARCHAR", "ipv6": "VARCHAR", "port": "VARCHAR"}'
_SPAN = ('{"traceId": "VARCHAR", "id": "VARCHAR", "parentId": "VARCHAR", "name": "VARCHAR", "kind": "VARCHAR", '
         '"timestamp": "VARCHAR", "duration": "VARCHAR", "debug": "VARCHAR", "shared": "VARCHAR", '
         f'"localEndpoint": {_ENDPOINT}, "remoteEndpoint": {_ENDPOINT}, '
         '"annotations": [{"timestamp": "VARCHAR", "value": "VARCHAR"}], "tags": "MAP(VARCHAR, VARCHAR)"}')

#: an OpenTelemetry event written as an annotation: ``"name": {"key": "value"}`` (the spec's
#: form) or ``name: {...}``
_EVENT_RE = r'^"?([^"{:]+)"?\s*:\s*(\{.*\})$'
_OTEL_EVENT = (f"(regexp_full_match(a.value, '{_EVENT_RE}', 's') AND "
               f"json_type(try(CAST(regexp_extract(a.value, '{_EVENT_RE}', 2) AS JSON))) = 'OBJECT')")

_IS_SPAN = "(json_type({e}) = 'OBJECT' AND json_exists({e}, '$.traceId') AND json_exists({e}, '$.id'))"
#: the spans of a document (JSON list): one object, an array, or an array of arrays, flattened
_SPANS = """CASE WHEN json_type(doc) = 'OBJECT' THEN [doc]
    ELSE flatten(list_transform(json_extract(doc, '$[*]'),
                                lambda e: CASE WHEN json_type(e) = 'ARRAY' THEN json_extract(e, '$[*]') ELSE [e] END))
    END"""
_RECOGNISED = f"""(
  {_IS_SPAN.format(e='doc')}
  OR (json_type(doc) = 'ARRAY' AND len(list_filter(json_extract(doc, '$[*]'),
        lambda e: {_IS_SPAN.format(e='e')} OR (json_type(e) = 'ARRAY' AND len(list_filter(json_extract(e, '$[*]'),
            lambda s: NOT {_IS_SPAN.format(e='s')})) = 0))) = json_array_length(doc)))"""
_EXPECTED = "Zipkin v2 spans: a span object with traceId and id, an array of them, or an array of such arrays"


def _endpoint_entries(ep: str, prefix: str) -> str:
    return (f"[{{'key': '{prefix}.ipv4', 'value': {ep}.ipv4}}, {{'key': '{prefix}.ipv6', 'value': {ep}.ipv6}}, "
            f"{{'key': '{prefix}.port', 'value': {ep}.port}}]")


def service_name_sql(name: str) -> str:
    """An endpoint's service name: trimmed, empty -> NULL."""
    return f"nullif(trim({name}), '')"


def kind_from_field_sql(kind: str) -> str:
    """Canonical kind from the ``kind`` field (absent -> unspecified, unknown -> NULL: rejected)."""
    return kind_sql(f"coalesce(upper(nullif(trim({kind}), '')), '')")


def status_from_tags_sql(has_error_tag: str, status_tag: str) -> str:
    """Canonical status: ``has_error_tag`` (the tags hold ``error``) and the status code tag value."""
    return (f"CASE WHEN {has_error_tag} OR upper({status_tag}) = 'ERROR' THEN 'error' "
            f"WHEN upper({status_tag}) = 'OK' THEN 'ok' ELSE 'unset' END")


def events_sql(annotations: str) -> str:
    """``events`` JSON of the annotations (a ``json_transform`` list)."""
    return f"""CASE WHEN len({annotations}) > 0 THEN to_json(list_transform({annotations}, lambda a: {{
      'time': {iso_sql(ts_sql(micros_sql('a.timestamp')))},
      'name': CASE WHEN {_OTEL_EVENT} THEN regexp_extract(a.value, '{_EVENT_RE}', 1) ELSE a.value END,
      'attributes': CASE WHEN {_OTEL_EVENT}
          THEN json_transform(regexp_extract(a.value, '{_EVENT_RE}', 2), '"MAP(VARCHAR, VARCHAR)"')
          ELSE MAP {{}}::MAP(VARCHAR, VARCHAR) END}}))
  END"""


def _spans_sql(src: str) -> str:
    """The SELECT producing raw canonical columns for every span of ``src``."""
    return f"""
WITH docs AS ({documents_sql(src)}),
span_json AS (
  SELECT line, doc_key, base, s.j AS raw_span, s.i AS si
  FROM (SELECT line, doc_key, base, unnest(list_transform({_SPANS}, lambda x, i: {{'j': x, 'i': i}})) AS s
        FROM docs WHERE {_RECOGNISED})
),
typed AS (SELECT line, doc_key, base, si, raw_span, json_transform(raw_span, '{_SPAN}') AS sp FROM span_json),
base AS (
  SELECT line, doc_key, base, si, raw_span, sp,
    {hex_sql('sp.traceId', TRACE_ID_HEX)} AS trace_id,
    {hex_sql('sp.id', SPAN_ID_HEX)} AS span_id,
    {hex_sql('sp.parentId', SPAN_ID_HEX)} AS parent_id,
    coalesce(sp.tags, MAP {{}}) AS tags,
    coalesce(sp.tags['otel.status_code'], sp.tags['ot.status_code']) AS status_tag,
    {micros_sql('sp.timestamp')} AS start_us,
    TRY_CAST(sp.duration AS DOUBLE) AS duration_us,
    {service_name_sql('sp.localEndpoint.serviceName')} AS svc,
    {service_name_sql('sp.remoteEndpoint.serviceName')} AS remote_svc
  FROM typed
),
attrs AS (
  SELECT *,
    map_concat(tags, {kv_map_sql(f'''list_filter([
        {{'key': 'zipkin.debug', 'value': CASE WHEN lower(sp.debug) = 'true' THEN 'true' END}},
        {{'key': 'zipkin.shared', 'value': CASE WHEN lower(sp.shared) = 'true' THEN 'true' END}},
        {{'key': 'zipkin.remote_endpoint.service_name', 'value': sp.remoteEndpoint.serviceName}}] ||
        {_endpoint_entries('sp.remoteEndpoint', 'zipkin.remote_endpoint')}, lambda e: e.value IS NOT NULL)''')}) AS attributes,
    {kv_map_sql(f'''list_filter([{{'key': 'service.name', 'value': svc}}] ||
        {_endpoint_entries('sp.localEndpoint', 'zipkin.local_endpoint')}, lambda e: e.value IS NOT NULL)''')}
      AS resource_attributes
  FROM base
)
SELECT
  trace_id,
  span_id,
  parent_id AS parent_span_id,
  svc AS service,
  tags['service.version'] AS service_version,
  sp.name AS name,
  {kind_from_field_sql('sp.kind')} AS kind,
  sp.kind AS kind_raw,
  {status_from_tags_sql("map_contains(tags, 'error')", 'status_tag')} AS status,
  status_tag AS status_raw,
  coalesce(nullif(tags['error'], ''), tags['otel.status_description'], tags['ot.status_description']) AS status_message,
  {ts_sql('start_us')} AS start_time,
  {ts_sql('start_us + CAST(round(duration_us) AS BIGINT)')} AS end_time,
  duration_us / 1000.0 AS duration_ms,
  attributes,
  resource_attributes,
  coalesce(tags['otel.scope.name'], tags['otel.library.name']) AS scope_name,
  coalesce(tags['otel.scope.version'], tags['otel.library.version']) AS scope_version,
  {events_sql('sp.annotations')} AS events,
  coalesce(tags['host.name'], tags['hostname'], sp.localEndpoint.ipv4, sp.localEndpoint.ipv6) AS host_name,
  line AS source_line,
  {span_offset_sql('si')} AS source_offset,
  CAST(raw_span AS VARCHAR) AS _raw,
  remote_svc AS _remote_service,
  sp.timestamp AS _timestamp_raw,
  json_exists(raw_span, '$.binaryAnnotations') OR json_exists(raw_span, '$.annotations[0].endpoint') AS _zipkin_v1
FROM attrs
"""


_V1_REASON = ("Zipkin v1 span (binaryAnnotations / annotation endpoints): only v2 JSON is read; "
              "fetch the trace from /api/v2/trace/{id} instead of /api/v1")


def _zipkin_sql(src: str) -> str:
    spans = finalize_spans_sql(_spans_sql(src))
    return f"""
SELECT * REPLACE (
  CASE WHEN _reject_code IS NOT NULL OR _zipkin_v1 THEN _raw END AS _raw,
  coalesce(peer_service, _remote_service) AS peer_service,
  CASE WHEN _zipkin_v1 THEN 'wrong_shape' ELSE _reject_code END AS _reject_code,
  CASE WHEN _zipkin_v1 THEN '{_V1_REASON}'
       WHEN _reject_code = 'bad_time' THEN
    CASE WHEN _timestamp_raw IS NULL THEN 'span has no "timestamp" (a partial flush without a start cannot be placed in time)'
         ELSE '"timestamp" is not a positive number of microseconds: ' || left(_timestamp_raw, 80) END
    ELSE _reject_reason END AS _reject_reason)
FROM ({spans})"""


def _fast_path(con: duckdb.DuckDBPyConnection, source: pa.Table, mode: str) -> FastBatch:
    return _zipkin_arrow.prepare(con, source, mode)


ZIPKIN = SpanFormat(_zipkin_sql, _RECOGNISED, f"len({_SPANS})", _EXPECTED, fast=_fast_path, fast_option="zipkin_fast")


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
        general path instead of the Arrow fast path of :mod:`._zipkin_arrow`, which loads the
        same rows) and ``whole_documents=True`` (parse a document in one piece).
    """
    load_spans(ctx, ZIPKIN)
    join_file_rows(ctx)
