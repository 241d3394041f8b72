"""Zipkin v2 JSON, general path: the SQL that maps every span of a registered source to raw
canonical columns (see :mod:`.zipkin` for the mapping), and the ``json_transform`` shape and
SQL fragments the Arrow fast path (:mod:`.arrow`) shares with it."""
from __future__ import annotations

from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX, finalize_spans_sql, kind_sql

from ..jaeger_zipkin.common import documents_sql, hex_sql, iso_sql, kv_map_sql, micros_sql, span_offset_sql, ts_sql

_ENDPOINT = '{"serviceName": "VARCHAR", "ipv4": "VARCHAR", "ipv6": "VARCHAR", "port": "VARCHAR"}'
SPAN = ('{"traceId": "VARCHAR", "id": "VARCHAR", "parentId": "VARCHAR", "name": "VARCHAR", "kind": "VARCHAR", '
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
SPANS = """CASE WHEN json_type(doc) = 'OBJECT' THEN [doc]
    ELSE flatten(list_transform(json_extract(doc, '$[*]'),
                                lambda e: CASE WHEN json_type(e) = 'ARRAY' THEN json_extract(e, '$[*]') ELSE [e] END))
    END"""
RECOGNISED = f"""(
  {_IS_SPAN.format(e='doc')}
  OR (json_type(doc) = 'ARRAY' AND len(list_filter(json_extract(doc, '$[*]'),
        lambda e: {_IS_SPAN.format(e='e')} OR (json_type(e) = 'ARRAY' AND len(list_filter(json_extract(e, '$[*]'),
            lambda s: NOT {_IS_SPAN.format(e='s')})) = 0))) = json_array_length(doc)))"""
EXPECTED = "Zipkin v2 spans: a span object with traceId and id, an array of them, or an array of such arrays"


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


def spans_sql(src: str) -> str:
    """The SELECT producing raw canonical columns for every span of ``src``."""
    return f"""
WITH docs AS ({documents_sql(src)}),
span_json AS (
  SELECT line, doc_key, base, s.j AS raw_span, s.i AS si
  FROM (SELECT line, doc_key, base, unnest(list_transform({SPANS}, lambda x, i: {{'j': x, 'i': i}})) AS s
        FROM docs WHERE {RECOGNISED})
),
typed AS (SELECT line, doc_key, base, si, raw_span, json_transform(raw_span, '{SPAN}') AS sp FROM span_json),
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


def zipkin_sql(src: str) -> str:
    spans = finalize_spans_sql(spans_sql(src))
    return f"""
SELECT * REPLACE (
  CASE WHEN _reject_code IS NOT NULL OR _zipkin_v1 THEN _raw END AS _raw,
  coalesce(peer_service, _remote_service) AS peer_service,
  CASE WHEN _zipkin_v1 THEN 'wrong_shape' ELSE _reject_code END AS _reject_code,
  CASE WHEN _zipkin_v1 THEN '{_V1_REASON}'
       WHEN _reject_code = 'bad_time' THEN
    CASE WHEN _timestamp_raw IS NULL OR _timestamp_raw = '0'
           THEN 'span has no "timestamp" and the file has no span with its trace id, span id and side to merge it into '
                '(a partial flush without a start cannot be placed in time)'
         ELSE '"timestamp" is not a positive number of microseconds: ' || left(_timestamp_raw, 80) END
    ELSE _reject_reason END AS _reject_reason),
  -- a partial flush (no timestamp, everything else readable): merged into its span by joins.py
  coalesce(_reject_code = 'bad_time' AND NOT _zipkin_v1 AND (_timestamp_raw IS NULL OR _timestamp_raw = '0')
           AND kind IS NOT NULL AND status IS NOT NULL, false) AS _hold
FROM ({spans})"""
