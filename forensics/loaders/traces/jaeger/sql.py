"""Jaeger JSON, general path: the SQL that maps every span of a registered source to raw
canonical columns (see :mod:`.jaeger` for the mapping), and the ``json_transform`` shapes and
SQL fragments the Arrow fast path (:mod:`.arrow`) shares with it."""
from __future__ import annotations

import json

from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX, finalize_spans_sql, kind_sql

from ..jaeger_zipkin.common import documents_sql, hex_sql, iso_sql, kv_map_sql, micros_sql, span_offset_sql, ts_sql

#: a tag or log field (its "type" is not needed: the value is read as text whatever its JSON type)
_KV = [{"key": "VARCHAR", "value": "VARCHAR"}]
#: process MAP of a trace, as ``json_transform`` reads it
PROCESSES = "MAP(VARCHAR, STRUCT(serviceName VARCHAR, tags STRUCT(key VARCHAR, value VARCHAR)[]))"
#: a span, as ``json_transform`` reads it
SPAN = {"traceID": "VARCHAR", "spanID": "VARCHAR", "parentSpanID": "VARCHAR", "operationName": "VARCHAR",
        "references": [{"refType": "VARCHAR", "traceID": "VARCHAR", "spanID": "VARCHAR"}],
        "startTime": "VARCHAR", "duration": "VARCHAR", "tags": _KV,
        "logs": [{"timestamp": "VARCHAR", "fields": _KV}], "processID": "VARCHAR",
        "process": {"serviceName": "VARCHAR", "tags": _KV}, "warnings": "JSON"}
_TRACE = json.dumps({"traceID": "VARCHAR", "processes": PROCESSES})
_SPAN = json.dumps(SPAN)

#: the traces of a document (JSON list); a bare span becomes a trace of one span
_TRACES = """CASE
    WHEN json_type(doc, '$.data') = 'ARRAY' THEN json_extract(doc, '$.data[*]')
    WHEN json_type(doc, '$.spans') = 'ARRAY' THEN [doc]
    WHEN json_type(doc) = 'OBJECT' THEN [json_object('spans', json_array(doc))]
    ELSE list_transform(json_extract(doc, '$[*]'), lambda e: CASE WHEN json_type(e, '$.spans') = 'ARRAY' THEN e
                                                              ELSE json_object('spans', json_array(e)) END) END"""

#: the document shapes read, as a SQL predicate over ``doc`` (JSON)
RECOGNISED = """(
  (json_type(doc) = 'OBJECT' AND (json_type(doc, '$.data') = 'ARRAY' OR json_type(doc, '$.spans') = 'ARRAY'
                                  OR (json_exists(doc, '$.spanID') AND json_exists(doc, '$.operationName'))))
  OR (json_type(doc) = 'ARRAY' AND len(list_filter(json_extract(doc, '$[*]'),
        lambda e: json_type(e, '$.spans') = 'ARRAY' OR json_type(e, '$.spanID') IS NOT NULL)) = json_array_length(doc)))"""
EXPECTED = ("a Jaeger trace: {\"data\": [traces]}, {\"traceID\", \"spans\", \"processes\"}, "
             "a span with inline process, or an array of traces or of spans with traceID/spanID")


#: a reference into the span's own trace: equal ids, or equal low 64 bits when one side only
#: carries 64 bits (a client that propagates 64-bit ids into a 128-bit trace)
_SAME_TRACE = """(r.trace_id IS NOT DISTINCT FROM b.trace_id OR r.trace_id IS NULL
    OR (right(r.trace_id, 16) = right(b.trace_id, 16)
        AND (starts_with(r.trace_id, '0000000000000000') OR starts_with(b.trace_id, '0000000000000000'))))"""


def refs_sql(references: str) -> str:
    """The span's references (a ``json_transform`` list) with 1-based ``i``, upper-case
    ``ref_type`` and hex-normalized ids."""
    return (f"list_transform(coalesce({references}, []), lambda r, i: {{'i': i, 'ref_type': upper(r.refType), "
            f"'trace_id': {hex_sql('r.traceID', TRACE_ID_HEX)}, 'span_id': {hex_sql('r.spanID', SPAN_ID_HEX)}}})")


def links_sql(refs: str, parent_ref: str) -> str:
    """``links`` JSON: the references other than the parent (see :func:`refs_sql`)."""
    others = f"list_filter({refs}, lambda r: r.i IS DISTINCT FROM {parent_ref})"
    return f"""CASE WHEN len({others}) > 0 THEN to_json(list_transform({others},
      lambda r: {{'trace_id': r.trace_id, 'span_id': r.span_id, 'trace_state': NULL::VARCHAR,
                  'attributes': MAP {{'opentracing.ref_type': lower(r.ref_type)}}}})) END"""


def logs_sql(logs: str) -> str:
    """The span's logs as ``[{ts TIMESTAMPTZ, f MAP}]`` (``logs``: a ``json_transform`` list)."""
    return (f"list_transform(coalesce({logs}, []), lambda l: {{'ts': {ts_sql(micros_sql('l.timestamp'))}, "
            f"'f': {kv_map_sql('l.fields')}}})")


def events_sql(logs: str) -> str:
    """``events`` JSON of the logs of :func:`logs_sql`."""
    return f"""CASE WHEN len({logs}) > 0 THEN to_json(list_transform({logs}, lambda l: {{
      'time': {iso_sql('l.ts')}, 'name': l.f['event'],
      'attributes': map_from_entries(list_filter(map_entries(l.f), lambda e: e.key <> 'event'))}})) END"""


def error_log_sql(logs: str) -> str:
    """The fields (MAP) of the first error/exception log of :func:`logs_sql` (NULL if none)."""
    return f"list_filter({logs}, lambda l: l.f['event'] IN ('error', 'exception') OR l.f['error.object'] IS NOT NULL)[1].f"


def error_message_sql(err_log: str) -> str:
    """The message of an error log's fields (see :func:`error_log_sql`)."""
    return f"coalesce({err_log}['message'], {err_log}['error.object'], {err_log}['exception.message'])"


def kind_from_tag_sql(tag: str) -> str:
    """Canonical kind from the ``span.kind`` tag value (never NULL)."""
    return f"coalesce({kind_sql(f'lower({tag})')}, 'unspecified')"


def is_error_sql(error_tag: str, status_code_tag: str) -> str:
    return f"(lower({error_tag}) = 'true' OR upper({status_code_tag}) = 'ERROR')"


def status_from_tags_sql(error_tag: str, status_code_tag: str) -> str:
    """Canonical status from the ``error`` and ``otel.status_code`` tag values."""
    return (f"CASE WHEN {is_error_sql(error_tag, status_code_tag)} THEN 'error' "
            f"WHEN upper({status_code_tag}) = 'OK' THEN 'ok' ELSE 'unset' END")


def spans_sql(src: str) -> str:
    """The SELECT producing raw canonical columns for every span of ``src``."""
    tid = hex_sql("coalesce(sp.traceID, tr.traceID)", TRACE_ID_HEX)
    return f"""
WITH docs AS ({documents_sql(src)} ),
traces AS (
  SELECT line, doc_key, base, t.j AS tj, t.i AS ti
  FROM (SELECT line, doc_key, base, unnest(list_transform({_TRACES}, lambda x, i: {{'j': x, 'i': i}})) AS t
        FROM docs WHERE {RECOGNISED})
),
span_json AS (
  SELECT line, doc_key, base, ti, json_transform(tj, '{_TRACE}') AS tr,
         unnest(list_transform(json_extract(tj, '$.spans[*]'), lambda x, i: {{'j': x, 'i': i}})) AS s
  FROM traces
),
typed AS (
  SELECT line, doc_key, base, ti, s.i AS si, s.j AS raw_span, tr, json_transform(s.j, '{_SPAN}') AS sp FROM span_json
),
base AS (
  SELECT line, doc_key, base, ti, si, raw_span, sp, tr,
    {tid} AS trace_id,
    {hex_sql('sp.spanID', SPAN_ID_HEX)} AS span_id,
    CASE WHEN sp.process.serviceName IS NOT NULL OR sp.process.tags IS NOT NULL THEN sp.process
         ELSE tr.processes[sp.processID] END AS proc,
    {refs_sql('sp.references')} AS refs,
    {kv_map_sql('sp.tags')} AS tags,
    {logs_sql('sp.logs')} AS logs,
    {micros_sql('sp.startTime')} AS start_us,
    TRY_CAST(sp.duration AS DOUBLE) AS duration_us
  FROM typed
),
parented AS (
  SELECT *,
    coalesce(
      list_filter(refs, lambda r: {_SAME_TRACE} AND r.ref_type = 'CHILD_OF')[1].i,
      list_filter(refs, lambda r: {_SAME_TRACE} AND r.ref_type = 'FOLLOWS_FROM')[1].i
    ) AS parent_ref,
    list_concat(
      CASE WHEN proc.serviceName IS NOT NULL THEN [{{'key': 'service.name', 'value': proc.serviceName}}] END,
      list_transform(coalesce(proc.tags, []), lambda t: {{'key': t.key, 'value': t.value}})) AS res_entries,
    {error_log_sql('logs')} AS err_log
  FROM base b
),
mapped AS (
  SELECT *, {kv_map_sql('res_entries')} AS res FROM parented
)
SELECT
  trace_id,
  span_id,
  CASE WHEN parent_ref IS NOT NULL THEN refs[parent_ref].span_id
       ELSE nullif({hex_sql('sp.parentSpanID', SPAN_ID_HEX)}, repeat('0', {SPAN_ID_HEX})) END AS parent_span_id,
  nullif(proc.serviceName, '') AS service,
  res['service.version'] AS service_version,
  sp.operationName AS name,
  {kind_from_tag_sql("tags['span.kind']")} AS kind,
  tags['span.kind'] AS kind_raw,
  {status_from_tags_sql("tags['error']", "tags['otel.status_code']")} AS status,
  tags['otel.status_code'] AS status_raw,
  coalesce(tags['otel.status_description'],
           CASE WHEN {is_error_sql("tags['error']", "tags['otel.status_code']")} THEN {error_message_sql('err_log')} END)
    AS status_message,
  {ts_sql('start_us')} AS start_time,
  {ts_sql('start_us + CAST(round(duration_us) AS BIGINT)')} AS end_time,
  duration_us / 1000.0 AS duration_ms,
  CASE WHEN sp.warnings IS NOT NULL AND json_array_length(sp.warnings) > 0
       THEN map_concat(tags, MAP {{'jaeger.warnings': CAST(sp.warnings AS VARCHAR)}}) ELSE tags END AS attributes,
  res AS resource_attributes,
  coalesce(tags['otel.scope.name'], tags['otel.library.name']) AS scope_name,
  coalesce(tags['otel.scope.version'], tags['otel.library.version']) AS scope_version,
  {events_sql('logs')} AS events,
  {links_sql('refs', 'parent_ref')} AS links,
  coalesce(res['host.name'], res['hostname'], res['ip']) AS host_name,
  line AS source_line,
  {span_offset_sql('ti', 'si')} AS source_offset,
  CAST(raw_span AS VARCHAR) AS _raw,
  proc IS NULL AS _no_process,
  sp.processID AS _process_id,
  array_to_string(map_keys(tr.processes), ', ') AS _process_ids
FROM mapped
"""


def jaeger_sql(src: str) -> str:
    spans = finalize_spans_sql(spans_sql(src))
    return f"""
SELECT * REPLACE (
  CASE WHEN _reject_code IS NOT NULL OR _no_process THEN _raw END AS _raw,
  coalesce(_reject_code, CASE WHEN _no_process THEN 'missing_field' END) AS _reject_code,
  coalesce(_reject_reason, CASE WHEN _no_process THEN
    'span has no process: processID ' || coalesce('''' || _process_id || '''', 'missing') ||
    ' is not among the trace''s processes (' || coalesce(nullif(_process_ids, ''), 'none') ||
    ') and the span has no inline "process"' END) AS _reject_reason)
FROM ({spans})"""


COUNT = f"list_sum(list_transform({_TRACES}, lambda t: json_array_length(t, '$.spans')))"
