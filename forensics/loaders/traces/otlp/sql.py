"""SQL shared by the OTLP loaders: the OTLP/JSON structure, request parsing, spans and logs.

One definition of the OTLP → canonical mapping serves both ``otlp_json`` and ``otlp_proto``
(protobuf messages are rendered as protobuf-JSON, whose quirks — base64 ids, int64 as strings,
enum names — are the same ones real OTLP/JSON files have).

The source relation has columns ``line`` (1-based line, NULL for documents), ``doc`` (0-based
document index, for record numbering when there are no lines) and ``raw`` (one
ExportTrace/Logs/MetricsServiceRequest as JSON text). Each signal's SELECT parses the lines
that mention its key with ``json_transform`` (VARCHAR wherever the JSON type varies), unnests
resource → scope → records (:func:`records_sql`), maps them to canonical columns, and appends
the line-level rejects (not JSON, not a request) that its text suggests belong to it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from forensics.loaders.core.semconv import PRECOMPUTED_PREFIX, PROMOTED, SPAN_ID_HEX, TRACE_ID_HEX, finalize_spans_sql, kind_sql, status_sql

V = "VARCHAR"
ANY = {"stringValue": V, "intValue": V, "doubleValue": V, "boolValue": V, "bytesValue": V,
       "arrayValue": "JSON", "kvlistValue": "JSON"}
KV = [{"key": V, "value": ANY}]
RESOURCE = {"attributes": KV}
SCOPE = {"name": V, "version": V}

SPAN = {
    "traceId": V, "spanId": V, "parentSpanId": V, "name": V, "kind": V,
    "startTimeUnixNano": V, "endTimeUnixNano": V, "attributes": KV,
    "events": [{"timeUnixNano": V, "name": V, "attributes": KV}],
    "links": [{"traceId": V, "spanId": V, "traceState": V, "attributes": KV}],
    "status": {"code": V, "message": V},
}
LOG = {
    "timeUnixNano": V, "observedTimeUnixNano": V, "severityNumber": V, "severityText": V,
    "body": ANY, "attributes": KV, "traceId": V, "spanId": V, "eventName": V,
}
EXEMPLAR = {"timeUnixNano": V, "asDouble": V, "asInt": V, "traceId": V, "spanId": V}
_POINT = {"attributes": KV, "startTimeUnixNano": V, "timeUnixNano": V, "flags": V, "exemplars": [EXEMPLAR]}
NUMBER_POINT = {**_POINT, "asDouble": V, "asInt": V}
HISTOGRAM_POINT = {**_POINT, "count": V, "sum": V, "bucketCounts": [V], "explicitBounds": [V]}
BUCKETS = {"offset": V, "bucketCounts": [V]}
EXP_HISTOGRAM_POINT = {**_POINT, "count": V, "sum": V, "scale": V, "zeroCount": V, "zeroThreshold": V,
                       "positive": BUCKETS, "negative": BUCKETS}
SUMMARY_POINT = {**_POINT, "count": V, "sum": V, "quantileValues": [{"quantile": V, "value": V}]}
METRIC = {
    "name": V, "description": V, "unit": V,
    "gauge": {"dataPoints": [NUMBER_POINT]},
    "sum": {"dataPoints": [NUMBER_POINT], "aggregationTemporality": V, "isMonotonic": V},
    "histogram": {"dataPoints": [HISTOGRAM_POINT], "aggregationTemporality": V},
    "exponentialHistogram": {"dataPoints": [EXP_HISTOGRAM_POINT], "aggregationTemporality": V},
    "summary": {"dataPoints": [SUMMARY_POINT]},
}


#: signal -> (request key, scope-group key, pre-1.0 scope-group key, records key, record structure);
#: collectors before v0.50 wrote instrumentationLibrary{Spans,Logs,Metrics} / instrumentationLibrary
SIGNALS: dict[str, tuple[str, str, str, str, dict]] = {
    "spans": ("resourceSpans", "scopeSpans", "instrumentationLibrarySpans", "spans", SPAN),
    "logs": ("resourceLogs", "scopeLogs", "instrumentationLibraryLogs", "logRecords", LOG),
    "metrics": ("resourceMetrics", "scopeMetrics", "instrumentationLibraryMetrics", "metrics", METRIC),
}
SIGNAL_KEYS = {signal: spec[0] for signal, spec in SIGNALS.items()}


def _request_structure() -> dict:
    out = {}
    for key, scopes, legacy, records, record in SIGNALS.values():
        group = {"scope": SCOPE, "instrumentationLibrary": SCOPE, records: [record]}
        out[key] = [{"resource": RESOURCE, scopes: [group], legacy: [group]}]
    return out


REQUEST = _request_structure()


@lru_cache(maxsize=1)
def macros_sql() -> str:
    """The ``otlp_*`` DuckDB temp macros (``macros.sql``)."""
    return (Path(__file__).with_name("macros.sql")).read_text()


def structure_sql(signal: str) -> str:
    """The json_transform structure of one OTLP request of ``signal``, as a SQL literal."""
    key = SIGNAL_KEYS[signal]
    return "'" + json.dumps({key: REQUEST[key]}, separators=(",", ":")).replace("'", "''") + "'"


def _text_sql(src: str) -> str:
    """``src`` with a UTF-8 byte-order mark removed from the start of ``raw``."""
    return f"(SELECT line, doc, CASE WHEN starts_with(raw, chr(65279)) THEN substr(raw, 2) ELSE raw END AS raw FROM {src})"


def guess_signal_sql(raw: str) -> str:
    """Which signal a line is about, from its text (to attribute lines that are not requests)."""
    return (f"CASE WHEN contains({raw}, '\"resourceLogs\"') THEN 'logs' "
            f"WHEN contains({raw}, '\"resourceMetrics\"') THEN 'metrics' ELSE 'spans' END")


def parse_requests_sql(src: str, signal: str) -> str:
    """The requests of ``signal`` in ``src`` (line, doc, raw), parsed: columns line, doc, j.

    Only lines mentioning the signal's key are parsed, so each line is parsed once per load.
    """
    key = SIGNAL_KEYS[signal]
    return (f"SELECT line, doc, json_transform(raw, {structure_sql(signal)}) AS j FROM {_text_sql(src)} "
            f"WHERE contains(raw, '\"{key}\"') AND json_valid(raw)")


def line_rejects_sql(src: str, signal: str) -> str:
    """Line-level rejects (not JSON, not a request) attributed to ``signal`` by a text guess."""
    paths = "[" + ", ".join(f"'$.{k}'" for k in SIGNAL_KEYS.values()) + "]"
    return f"""
SELECT * FROM (
SELECT line AS source_line, doc AS source_offset, _reject_code, left(raw, 1000) AS _raw,
  CASE _reject_code WHEN 'invalid_json' THEN 'not valid JSON: expected one OTLP ExportServiceRequest per line'
    ELSE 'JSON without a resourceSpans, resourceLogs or resourceMetrics array: not an OTLP request' END AS _reject_reason
FROM (SELECT line, doc, raw, CASE WHEN NOT json_valid(raw) THEN 'invalid_json'
        WHEN NOT list_contains(coalesce(json_type(raw, {paths}), []), 'ARRAY') THEN 'wrong_shape' END AS _reject_code
      FROM {_text_sql(src)} WHERE {guess_signal_sql('raw')} = '{signal}')
WHERE _reject_code IS NOT NULL
UNION ALL
{_container_rejects_sql(src, signal)})
"""


def _container_rejects_sql(src: str, signal: str) -> str:
    """One reject per nested container that is present but not an array (e.g. ``"spans": {...}``):
    parsing would turn it into NULL and its records would vanish without a trace."""
    rkey, scopes_key, legacy_key, records_key, _ = SIGNALS[signal]
    paths = [f"$.{rkey}[*]", f"$.{rkey}[*].{scopes_key}[*]", f"$.{rkey}[*].{legacy_key}[*]",
             f"$.{rkey}[*].{scopes_key}[*].{records_key}", f"$.{rkey}[*].{legacy_key}[*].{records_key}",
             f"$.{rkey}[*].{scopes_key}", f"$.{rkey}[*].{legacy_key}"]
    checks = " UNION ALL ".join(
        f"SELECT line, doc, raw, '{p}' AS path, unnest(json_type(raw, '{p}')) AS t FROM ok" for p in paths)
    want = {p: ("OBJECT" if p.endswith("[*]") else "ARRAY") for p in paths}
    expected = " ".join(f"WHEN '{p}' THEN '{w}'" for p, w in want.items())
    return f"""
SELECT line AS source_line, doc AS source_offset, 'wrong_shape' AS _reject_code, left(raw, 1000) AS _raw,
       replace(path, '[*]', '[]') || ' is a JSON ' || lower(t) || ', expected ' || lower(expected) ||
       ': the records inside it were not read' AS _reject_reason
FROM (SELECT *, CASE path {expected} END AS expected FROM (
        WITH ok AS (SELECT line, doc, raw FROM {_text_sql(src)}
                    WHERE {guess_signal_sql('raw')} = '{signal}' AND json_valid(raw)
                      AND json_type(raw, '$.{rkey}') = 'ARRAY')
        {checks}))
WHERE t IS NOT NULL AND t <> expected AND t <> 'NULL'"""


def records_sql(src: str, signal: str) -> str:
    """One row per OTLP record (span / log record / metric) of ``signal`` in ``src``, with its
    resource and scope.

    Columns: line, doc, rs_i, ss_i, r_i (1-based positions), res (resource attributes MAP),
    scope_name, scope_version, r (the record struct).
    """
    rkey, scopes_key, legacy_key, records_key, _ = SIGNALS[signal]
    return f"""
SELECT line, doc, rs_i, ss_i, unnest(range(1, len(ss.{records_key}) + 1)) AS r_i, res,
       coalesce(ss.scope.name, ss.instrumentationLibrary.name) AS scope_name,
       coalesce(ss.scope.version, ss.instrumentationLibrary.version) AS scope_version,
       unnest(ss.{records_key}) AS r
FROM (
  SELECT line, doc, rs_i, res, unnest(range(1, len(scopes) + 1)) AS ss_i, unnest(scopes) AS ss
  FROM (
    SELECT line, doc, rs_i, otlp_attrs(rs.resource.attributes) AS res,
           coalesce(rs.{scopes_key}, rs.{legacy_key}) AS scopes
    FROM (SELECT line, doc, unnest(range(1, len(j.{rkey}) + 1)) AS rs_i, unnest(j.{rkey}) AS rs
          FROM ({parse_requests_sql(src, signal)}) WHERE j.{rkey} IS NOT NULL)
  )
)
"""


#: in doc mode, ``doc >> FILE_SHIFT`` numbers the file of a batch of files from 1 (0: one file)
FILE_SHIFT = 32


def position_sql(doc_mode: bool, *order: str) -> tuple[str, str]:
    """(source_line, source_offset) expressions: the line, or the 0-based record index among
    its file's records. For a batch of files (``doc`` holds the file number above
    :data:`FILE_SHIFT`, see :func:`~.requests.emit_files`) the record's ``source_line`` is its file
    number, which the batch turns into its ``source_file``; NULL for a file alone."""
    if not doc_mode:
        return "line", "CAST(NULL AS BIGINT)"
    return (f"nullif(doc >> {FILE_SHIFT}, 0)",
            f"row_number() OVER (PARTITION BY doc >> {FILE_SHIFT} ORDER BY {', '.join(order)}) - 1")


def events_json_sql(events: str) -> str:
    """OTLP span events (a list of event structs) -> the canonical ``events`` JSON text (NULL when
    there are none)."""
    return (f"CASE WHEN len({events}) > 0 THEN to_json(list_transform({events}, lambda _ev: {{"
            "'time': otlp_iso(otlp_ts(otlp_ns(_ev.timeUnixNano))), 'name': _ev.name, "
            "'attributes': otlp_attrs(_ev.attributes)})) END")


def links_json_sql(links: str) -> str:
    """OTLP span links (a list of link structs) -> the canonical ``links`` JSON text (NULL when
    there are none)."""
    return (f"CASE WHEN len({links}) > 0 THEN to_json(list_transform({links}, lambda _ln: {{"
            f"'trace_id': otlp_id(_ln.traceId, {TRACE_ID_HEX}), 'span_id': otlp_id(_ln.spanId, {SPAN_ID_HEX}), "
            "'trace_state': nullif(_ln.traceState, ''), 'attributes': otlp_attrs(_ln.attributes)})) END")


def spans_sql(src: str, *, doc_mode: bool, records: str | None = None) -> str:
    """Canonical span rows (through finalize_spans_sql) plus line-level rejects for spans.

    ``records`` (the Arrow fast path, ``otlp.arrow``) replaces parsing ``src``: a relation
    with the :func:`records_sql` columns plus ``attrs``, the span attributes already as a MAP,
    and the promoted columns as text (``_p_<column>``); there are no line-level rejects then.
    """
    line, offset = position_sql(doc_mode, "doc", "rs_i", "ss_i", "r_i")
    attrs = "attrs" if records else "otlp_attrs(r.attributes)"
    pre = "".join(f"{PRECOMPUTED_PREFIX}{c}, " for c in PROMOTED) if records else ""
    inner = f"""
SELECT otlp_id(r.traceId, {TRACE_ID_HEX}) AS trace_id,
  otlp_id(r.spanId, {SPAN_ID_HEX}) AS span_id,
  nullif(otlp_id(r.parentSpanId, {SPAN_ID_HEX}), repeat('0', {SPAN_ID_HEX})) AS parent_span_id,
  res['service.name'] AS service, res['service.version'] AS service_version, res['host.name'] AS host_name,
  r.name AS name,
  {kind_sql('r.kind')} AS kind, r.kind AS kind_raw,
  {status_sql('r.status.code')} AS status, r.status.code AS status_raw,
  nullif(r.status.message, '') AS status_message,
  otlp_ts(otlp_ns(r.startTimeUnixNano)) AS start_time,
  otlp_ts(otlp_ns(r.endTimeUnixNano)) AS end_time,
  (otlp_ns(r.endTimeUnixNano) - otlp_ns(r.startTimeUnixNano)) / 1e6 AS duration_ms,
  {attrs} AS attributes, res AS resource_attributes,
  scope_name, scope_version,
  {events_json_sql('r.events')} AS events,
  {links_json_sql('r.links')} AS links,
  {pre}{line} AS source_line, {offset} AS source_offset, r AS _record
FROM ({records or records_sql(src, "spans")})
"""
    return with_raw_for_rejects(finalize_spans_sql(inner, precomputed=bool(records)), None if records else line_rejects_sql(src, "spans"))


def with_raw_for_rejects(select: str, line_rejects: str | None) -> str:
    """Replace the ``_record`` struct by ``_raw`` (its JSON) on rejected rows only, and append
    the line-level rejects (if any)."""
    out = f"""
SELECT * EXCLUDE (_record), CASE WHEN _reject_code IS NOT NULL THEN left(to_json(_record)::VARCHAR, 1000) END AS _raw
FROM ({select})
"""
    return out if line_rejects is None else f"{out}UNION ALL BY NAME\n{line_rejects}"


SEVERITY_NAMES = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


def severity_number_sql(expr: str) -> str:
    """OTLP severityNumber (integer, or enum name like SEVERITY_NUMBER_WARN2) -> INTEGER 1..24."""
    base = "CASE regexp_extract({e}, '^SEVERITY_NUMBER_([A-Z]+)', 1) {whens} END".format(
        e=expr, whens=" ".join(f"WHEN '{k}' THEN {v}" for k, v in SEVERITY_NAMES.items()))
    return (f"coalesce(TRY_CAST({expr} AS INTEGER), {base} + "
            f"coalesce(TRY_CAST(nullif(regexp_extract({expr}, '^SEVERITY_NUMBER_[A-Z]+([2-4])$', 1), '') AS INTEGER), 1) - 1)")


#: severityText words (lowercased) -> canonical severity, for records without a severityNumber
SEVERITY_TEXT = {
    "trace": ("trace", "finest", "finer"),
    "debug": ("debug", "dbg", "fine", "config"),
    "info": ("info", "information", "informational", "notice", "inf"),
    "warn": ("warn", "warning", "wrn"),
    "error": ("error", "err", "severe", "eror"),
    "fatal": ("fatal", "critical", "crit", "panic", "emerg", "emergency", "alert", "dpanic"),
}


def severity_sql(number: str, text: str) -> str:
    """Canonical lowercase severity from the number (1-24), falling back to the text."""
    ranges = " ".join(f"WHEN {number} BETWEEN {lo} AND {lo + 3} THEN '{name}'"
                      for name, lo in zip(SEVERITY_TEXT, (1, 5, 9, 13, 17, 21)))
    words = " ".join(f"WHEN lower(trim({text})) IN ({', '.join(repr(w) for w in ws)}) THEN '{name}'"
                     for name, ws in SEVERITY_TEXT.items())
    return f"CASE {ranges} {words} END"


def logs_sql(src: str, *, doc_mode: bool) -> str:
    """Canonical log rows plus rejects (bad ids, no time) and line-level rejects for logs."""
    line, offset = position_sql(doc_mode, "doc", "rs_i", "ss_i", "r_i")
    inner = f"""
SELECT coalesce(otlp_ts(otlp_ns(r.timeUnixNano)), otlp_ts(otlp_ns(r.observedTimeUnixNano))) AS time,
  otlp_ts(otlp_ns(r.observedTimeUnixNano)) AS observed_time,
  res['service.name'] AS service,
  {severity_number_sql('r.severityNumber')} AS severity_number,
  nullif(r.severityText, '') AS severity_text,
  otlp_any(r.body) AS body,
  nullif(otlp_id(r.traceId, {TRACE_ID_HEX}), repeat('0', {TRACE_ID_HEX})) AS trace_id,
  nullif(otlp_id(r.spanId, {SPAN_ID_HEX}), repeat('0', {SPAN_ID_HEX})) AS span_id,
  CASE WHEN r.eventName IS NOT NULL AND r.eventName <> ''
       THEN map_concat(otlp_attrs(r.attributes), MAP {{'event.name': r.eventName}})
       ELSE otlp_attrs(r.attributes) END AS attributes,
  res AS resource_attributes,
  {line} AS source_line, {offset} AS source_offset, r AS _record
FROM ({records_sql(src, "logs")})
"""
    bad_trace = f"l.trace_id IS NOT NULL AND NOT regexp_full_match(l.trace_id, '[0-9a-f]{{{TRACE_ID_HEX}}}')"
    bad_span = f"l.span_id IS NOT NULL AND NOT regexp_full_match(l.span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}')"
    checked = f"""
SELECT l.* EXCLUDE (severity_text),
  {severity_sql('l.severity_number', 'l.severity_text')} AS severity,
  CASE WHEN l.time IS NULL THEN 'bad_time' WHEN {bad_trace} OR {bad_span} THEN 'bad_id' END AS _reject_code,
  CASE WHEN l.time IS NULL THEN 'log record has neither timeUnixNano nor observedTimeUnixNano'
       WHEN {bad_trace} THEN 'trace id is not 32 hex digits or base64 of 16 bytes: ' || left(l.trace_id, 80)
       WHEN {bad_span} THEN 'span id is not 16 hex digits or base64 of 8 bytes: ' || left(l.span_id, 80)
  END AS _reject_reason
FROM ({inner}) l
"""
    return with_raw_for_rejects(checked, line_rejects_sql(src, "logs"))
