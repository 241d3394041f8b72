"""Spans as rows of a table: CSV (with a header) or Parquet/Arrow trace dumps, as labelled
microservice fault datasets and APM exports ship them (``TraceID, SpanID, ParentID,
ServiceName, OperationName, StartTime, Duration, StatusCode``...).

Columns are matched by name, case and punctuation ignored (``TraceID``, ``trace_id`` and
``Trace Id`` are one name; see :data:`FIELDS`); ``mapping={"start_time": "ts_begin", ...}``
(CLI ``--mapping start_time=ts_begin``) names the others. Every other column is kept as an
attribute (text; empty cells left out), so semantic-convention columns such as
``http.status_code`` are promoted as in any span format.

* ids: hex ids are lowercased and left-padded; an id that is not hex (SkyWalking's
  ``<segment>.<n>.<timestamp>`` span ids, UUIDs with dashes are hex) maps deterministically to a
  canonical id (the first 32 / 16 hex digits of its MD5, never all zero: the same text always
  gives the same id, so parents still find their children) and is kept in the attribute
  ``forensics.original_trace_id`` / ``forensics.original_span_id`` /
  ``forensics.original_parent_span_id``. A parent of ``root``, ``-1``, ``0``, ``null``, ``none``
  or empty is no parent.
* times: the start is ISO 8601 text or an epoch number, in the unit its column name says
  (``StartTimeUnixNano``, ``start_ms``, ``ts_us``...) or, without one, the unit its magnitude
  gives (below 1e11 seconds, 1e14 milliseconds, 1e17 microseconds, else nanoseconds). The end is
  an ``EndTime`` column read the same way, or start + ``Duration``, whose unit is its name's, else
  the start's epoch unit, else milliseconds (``duration_unit=`` sets it: s, ms, us, ns).
* status: ``StatusCode``/``Status`` (OTLP numbers or names, ``STATUS_CODE_ERROR``, ``Error``...;
  an HTTP-like number of 100-599 is kept as ``http.status_code`` and is an error from 500 up), or
  ``IsError`` (true/false, 1/0, yes/no). kind: ``SpanKind``/``Kind`` (names or OTLP numbers).
* service: a Kubernetes pod name (``checkout-7d9f8b6c5-x2x9z``, also pre-1.8 numeric hashes)
  becomes its workload (``checkout``), the pod name kept in the resource attribute
  ``k8s.pod.name``; without a service column, the resource attributes' ``service.name``.
* attributes: a ``SpanAttributes``/``Attributes``/``Tags`` column and a ``ResourceAttributes``
  column (a map in Parquet/Arrow; in text a JSON object or a ClickHouse map ``{'k':'v'}``)
  fill ``attributes`` and ``resource_attributes``. So the table of the OpenTelemetry
  Collector's ClickHouse exporter (``otel_traces``: ``Timestamp``, ``TraceId``, ``SpanId``,
  ``ParentSpanId``, ``SpanName``, ``SpanKind``, ``ServiceName``, ``Duration``, ``StatusCode``,
  ``StatusMessage``...) exported as CSV or Parquet loads without a mapping (a ``Duration``
  beside ``SpanAttributes`` is in nanoseconds, as that table has it).

Rejected, with the line (CSV) or row offset (Parquet): rows with the wrong number of fields,
no trace or span id, no readable start, an unknown kind or status.
"""
from __future__ import annotations

import csv
import re
from typing import Any

import pyarrow as pa

from forensics.errors import Reason, UsageError
from forensics.loaders.core.columnar import COLUMNAR_MAGIC, column_sql, raw_json_sql, row_batches, schema_of
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import csv_batches, csv_fields_sql, epoch_us_sql, flexible_time_sql, split_header
from forensics.loaders.core.head import Head
from forensics.loaders.core.kubernetes import POD_SUFFIX, POD_TEMPLATE_HASH, pod_workload_sql
from forensics.loaders.core.registry import register_format
from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX, finalize_spans_sql, hex_id_sql, kind_sql, status_sql

#: canonical field -> column names it is found under (normalized: lowercase letters and digits)
FIELDS: dict[str, tuple[str, ...]] = {
    "trace_id": ("traceid", "trace", "tid"),
    "span_id": ("spanid", "span", "sid", "id"),
    "parent_span_id": ("parentspanid", "parentid", "parent", "pspanid", "parentspan", "psid"),
    "service": ("servicename", "service", "svc", "microservice", "application", "app", "podname", "pod",
                "component"),
    "service_version": ("serviceversion", "version", "appversion"),
    "name": ("operationname", "spanname", "operation", "name", "endpointname", "endpoint", "interface", "rpc"),
    "start_time": ("starttime", "starttimeunixnano", "start", "startts", "starttimestamp", "begintime", "timestamp",
                   "ts", "time"),
    "end_time": ("endtime", "endtimeunixnano", "endtimestamp", "end", "endts", "finishtime"),
    "duration": ("duration", "durationms", "durationus", "durationns", "durations", "elapsed", "elapsedtime",
                 "latency", "responsetime", "rt"),
    "status": ("statuscode", "status", "otelstatuscode", "spanstatus"),
    "is_error": ("iserror", "error", "haserror", "failed"),
    "kind": ("spankind", "kind"),
    "status_message": ("statusmessage", "statusdescription"),
    "attributes": ("spanattributes", "attributes", "tags", "attrs", "spantags"),
    "resource_attributes": ("resourceattributes", "resourcetags"),
}
#: fields whose column holds a map of attributes (see :func:`map_sql`)
MAPS = ("attributes", "resource_attributes")
#: one entry of a ClickHouse map written as text, ``{'key':'value',...}`` (SQL string literal)
_CH_ENTRY = r"'''((?:[^''\\]|\\.)*)'':''((?:[^''\\]|\\.)*)'''"
MAPPING_ALIASES = {"start": "start_time", "end": "end_time", "duration_ms": "duration", "parent_id": "parent_span_id",
                   "operation": "name", "service_name": "service", "error": "is_error"}
#: unit words in a column name -> microseconds per unit
UNITS = {"ns": 1e-3, "nano": 1e-3, "nanos": 1e-3, "unixnano": 1e-3, "us": 1.0, "micros": 1.0, "micro": 1.0,
         "ms": 1e3, "millis": 1e3, "milli": 1e3, "s": 1e6, "sec": 1e6, "secs": 1e6, "seconds": 1e6}
#: longest header line a spans table is sniffed from (characters)
MAX_HEADER = 4096
_ROOT = "('', 'root', '-1', '0', 'null', 'none', 'nan', 'nil', '(null)')"
_POD = f"'^.+-{POD_TEMPLATE_HASH}-{POD_SUFFIX}$'"


def normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def unit_of(name: str) -> float | None:
    """Microseconds per unit named in a column name (``start_ms``, ``Duration(us)``,
    ``StartTimeUnixNano``), None when it names none."""
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())
    if "unixnano" in normalized(name) or (words and words[-1] in ("nano", "nanos")):
        return UNITS["ns"]
    return UNITS.get(words[-1]) if words else None


def match_columns(names: list[str], mapping: dict[str, str] | None = None) -> dict[str, int]:
    """Canonical field -> index of its column (``mapping`` first, then :data:`FIELDS`)."""
    norm = [normalized(n) for n in names]
    out: dict[str, int] = {}
    for field, column in (mapping or {}).items():
        if column not in names:
            raise UsageError(f"mapping[{field!r}] = {column!r} names no column; the columns are: {', '.join(names)}")
        out[field] = names.index(column)
    for field, candidates in FIELDS.items():
        if field in out:
            continue
        taken = set(out.values())
        for cand in candidates:
            hits = [i for i, n in enumerate(norm) if (n == cand or n.startswith(cand) and unit_of(names[i]) is not None
                                                      and n[len(cand):] in ("ms", "us", "ns", "s", "unixnano", "millis",
                                                                            "micros", "nanos", "seconds", "sec"))
                    and i not in taken]
            if hits:
                out[field] = hits[0]
                break
    return out


def _mapping(option: Any) -> dict[str, str]:
    if option is None:
        return {}
    if not isinstance(option, dict):
        raise UsageError(f"mapping must be a dict like {{'trace_id': 'tid'}}, not {option!r}")
    out = {}
    for key, column in option.items():
        field = MAPPING_ALIASES.get(key, key)
        if field not in FIELDS:
            raise UsageError(f"mapping key {key!r} is not a span field; use one of: {', '.join(FIELDS)}")
        out[field] = str(column)
    return out


def is_spans_table(names: list[str]) -> bool:
    found = match_columns(names)
    return {"trace_id", "span_id", "start_time"} <= found.keys()


def _sniff(head: Head) -> float:
    if head.data.startswith(COLUMNAR_MAGIC):  # a canonical spans table scores higher as canonical_table
        found = schema_of(head.path)
        return 0.9 if found is not None and is_spans_table(found.names) else 0.0
    if not head.lines or head.first_json is not None or head.stripped[:1] in ("{", "[") or len(head.lines[0]) > MAX_HEADER:
        return 0.0  # JSON (a line longer than the head too), or no header line
    try:
        names = split_header(head.lines[0])
    except csv.Error:
        return 0.0
    return 0.9 if len(names) >= 4 and is_spans_table(names) else 0.0


def _id_sql(value: str, width: int) -> str:
    """Canonical id of a text: hex normalized, anything else hashed (never all zero)."""
    v = f"nullif(trim({value}), '')"
    hashed = f"CASE WHEN left(md5({v}), {width}) = repeat('0', {width}) THEN repeat('0', {width - 1}) || '1' ELSE left(md5({v}), {width}) END"
    return (f"(CASE WHEN {v} IS NULL THEN NULL WHEN regexp_full_match({v}, '[0-9a-fA-F]{{1,{width}}}') "
            f"THEN {hex_id_sql(v, width)} "
            f"WHEN regexp_full_match({v}, '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}') "
            f"AND {width} = 32 THEN lower(replace({v}, '-', '')) ELSE {hashed} END)")


def _is_hashed(value: str, width: int) -> str:
    v = f"nullif(trim({value}), '')"
    return (f"({v} IS NOT NULL AND NOT regexp_full_match({v}, '[0-9a-fA-F]{{1,{width}}}') AND NOT "
            f"({width} = 32 AND regexp_full_match({v}, '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}')))")


def _time_sql(value: str, us_per_unit: float | None) -> str:
    if us_per_unit is None:
        return flexible_time_sql(value)
    return (f"(CASE WHEN TRY_CAST({value} AS DOUBLE) IS NOT NULL THEN {epoch_us_sql(f'(TRY_CAST({value} AS DOUBLE) * {us_per_unit})')} "
            f"ELSE {flexible_time_sql(value)} END)")


def _epoch_unit(sample: str | None) -> float | None:
    """Microseconds per unit of an epoch number, by magnitude (None for text that is not one)."""
    try:
        x = abs(float(sample)) if sample is not None else None
    except ValueError:
        return None
    if x is None:
        return None
    return 1e6 if x < 1e11 else 1e3 if x < 1e14 else 1.0 if x < 1e17 else 1e-3


def map_sql(text: str) -> str:
    """``MAP(VARCHAR, VARCHAR)`` of an attributes column written as text: a JSON object, a
    ClickHouse map (``{'http.method':'GET'}``, what its CSV/TSV output writes for the
    OpenTelemetry exporter's ``SpanAttributes``) or DuckDB's ``{key=value}``; NULL if none."""
    v = f"trim({text})"
    part = "replace(regexp_extract(_m, " + _CH_ENTRY + ", {}), '\\''', '''')"
    clickhouse = (f"map_from_entries(list_transform(regexp_extract_all({v}, {_CH_ENTRY}), "
                  f"lambda _m: {{'key': {part.format(1)}, 'value': {part.format(2)}}}))")
    return (f"(CASE WHEN starts_with({v}, '{{\"') OR {v} = '{{}}' THEN TRY_CAST(TRY_CAST({v} AS JSON) AS MAP(VARCHAR, VARCHAR)) "
            f"WHEN starts_with({v}, '{{''') THEN {clickhouse} ELSE TRY_CAST({v} AS MAP(VARCHAR, VARCHAR)) END)")


def _select(src: str, ref: dict[str, str], names: list[str], cols: dict[str, int], extra: list[int],
            line: str, offset: str, raw: str, width_check: str, duration_unit: float) -> str:
    """The raw canonical columns of the rows of ``src`` (``ref[field]``: SQL text of a column;
    for the :data:`MAPS` fields, of a MAP)."""
    get = {f: f"nullif(trim({ref[f]}), '')" if f in ref else "NULL" for f in FIELDS if f not in MAPS}
    maps = {f: f"coalesce({ref[f]}, MAP {{}})" if f in ref else "MAP {}" for f in MAPS}
    start_unit = unit_of(names[cols["start_time"]]) if "start_time" in cols else None
    start = _time_sql(get["start_time"], start_unit)
    if "end_time" in cols:
        end = _time_sql(get["end_time"], unit_of(names[cols["end_time"]]) or start_unit)
        duration = f"(epoch_us({end}) - epoch_us({start})) / 1000.0"
    else:
        us = unit_of(names[cols["duration"]]) if "duration" in cols else None
        duration = f"(TRY_CAST({get['duration']} AS DOUBLE) * {us or duration_unit} / 1000.0)"
        end = f"({start} + to_microseconds(CAST(round({duration} * 1000) AS BIGINT)))"
    status_col = get["status"]
    http_like = f"(TRY_CAST({status_col} AS INTEGER) BETWEEN 100 AND 599)"
    status_canon = (f"CASE WHEN lower({get['is_error']}) IN ('true', '1', 'yes', 't', 'y') THEN 'error' "
                    f"WHEN {http_like} THEN CASE WHEN TRY_CAST({status_col} AS INTEGER) >= 500 THEN 'error' ELSE 'unset' END "
                    f"WHEN lower({status_col}) IN ('error', 'err', 'failed', 'failure', 'fail') THEN 'error' "
                    f"WHEN lower({get['is_error']}) IN ('false', '0', 'no', 'f', 'n') AND {status_col} IS NULL THEN 'unset' "
                    f"ELSE {status_sql(f'upper({status_col})')} END")
    kind_expr = kind_sql(f"upper(regexp_replace(coalesce({get['kind']}, ''), '^(?i:span_kind_)', ''))")
    service_col = f"coalesce({get['service']}, {maps['resource_attributes']}['service.name'])"
    workload = f"CASE WHEN regexp_full_match({service_col}, {_POD}) THEN {pod_workload_sql(service_col)} ELSE {service_col} END"
    originals = ", ".join(
        f"{{'key': 'forensics.original_{f}', 'value': CASE WHEN {_is_hashed(get[f], w)} THEN {get[f]} END}}"
        for f, w in (("trace_id", TRACE_ID_HEX), ("span_id", SPAN_ID_HEX), ("parent_span_id", SPAN_ID_HEX)))
    extras = ", ".join(f"{{'key': $n{i}, 'value': nullif(trim({ref[f'_{i}']}), '')}}" for i in extra)
    http_status = f"{{'key': 'http.status_code', 'value': CASE WHEN {http_like} THEN {status_col} END}}"
    parent = f"CASE WHEN lower({get['parent_span_id']}) IN {_ROOT} THEN NULL ELSE {get['parent_span_id']} END"
    return f"""
SELECT {_id_sql(get['trace_id'], TRACE_ID_HEX)} AS trace_id, {_id_sql(get['span_id'], SPAN_ID_HEX)} AS span_id,
  {_id_sql(parent, SPAN_ID_HEX)} AS parent_span_id,
  {workload} AS service, coalesce({get['service_version']}, {maps['resource_attributes']}['service.version'])
    AS service_version, {get['name']} AS name,
  {kind_expr} AS kind, {get['kind']} AS kind_raw, {status_canon} AS status, {status_col} AS status_raw,
  {get['status_message']} AS status_message,
  {start} AS start_time, {end} AS end_time, {duration} AS duration_ms,
  map_concat({maps['attributes']}, map_from_entries(list_filter([{', '.join(x for x in (originals, extras, http_status) if x)}],
    lambda e: e.value IS NOT NULL))) AS attributes,
  map_concat({maps['resource_attributes']}, map_from_entries(list_filter([{{'key': 'service.name', 'value': {workload}}},
    {{'key': 'k8s.pod.name', 'value': CASE WHEN regexp_full_match({service_col}, {_POD}) THEN {service_col} END}}],
    lambda e: e.value IS NOT NULL))) AS resource_attributes,
  NULL AS scope_name, NULL AS scope_version, NULL AS events, NULL AS links, {maps['resource_attributes']}['host.name'] AS host_name,
  {line} AS source_line, {offset} AS source_offset, {raw} AS _raw, {width_check} AS _width_reason
FROM {src} t"""


def _wrap(inner: str) -> str:
    """Reject wrong-width rows first, then what :func:`finalize_spans_sql` rejects."""
    return f"""
SELECT * REPLACE (CASE WHEN _width_reason IS NOT NULL THEN 'wrong_shape' ELSE _reject_code END AS _reject_code,
                  coalesce(_width_reason, _reject_reason) AS _reject_reason)
FROM ({finalize_spans_sql(inner)})"""


def _duration_unit(ctx: LoadContext, names: list[str], cols: dict[str, int], sample_start: str | None) -> float:
    option = ctx.options.get("duration_unit")
    if option is not None:
        if option not in ("s", "ms", "us", "ns"):
            raise UsageError(f"duration_unit={option!r}; use one of s, ms, us, ns")
        return UNITS[option]
    if "duration" in cols and "end_time" not in cols and unit_of(names[cols["duration"]]) is None and \
            normalized(names[cols["attributes"]] if "attributes" in cols else "") == "spanattributes":
        return UNITS["ns"]  # the ClickHouse exporter's otel_traces: Duration in nanoseconds
    named = unit_of(names[cols["start_time"]])
    return named or _epoch_unit(sample_start) or 1e3


def _columns(ctx: LoadContext, names: list[str], line: int | None = None) -> dict[str, int]:
    cols = match_columns(names, _mapping(ctx.options.get("mapping")))
    missing = [f for f in ("trace_id", "span_id", "start_time") if f not in cols]
    if missing or ("end_time" not in cols and "duration" not in cols):
        need = missing + ([] if "end_time" in cols or "duration" in cols else ["end_time or duration"])
        ctx.fail("the table names no column for " + ", ".join(need), line=line, reason=Reason.MISSING_FIELD,
                 expected="columns like TraceID, SpanID, ParentID, ServiceName, OperationName, StartTime, Duration",
                 found=", ".join(names[:30]), hint="name them with mapping={'start_time': '<column>', ...}")
    return cols


def _params(names: list[str], extra: list[int]) -> dict[str, str]:
    return {f"n{i}": names[i] for i in extra}


@register_format("spans_table", signal="traces", sniff=_sniff, extensions=(".csv", ".parquet"),
                 description="Spans as table rows: CSV or Parquet trace dumps (TraceID, SpanID, ParentID, "
                             "ServiceName, OperationName, StartTime, Duration/EndTime, StatusCode/IsError)")
def load_spans_table(ctx: LoadContext) -> None:
    """Load a CSV or Parquet spans table (see the module docstring); options ``mapping=`` and
    ``duration_unit=``."""
    if ctx.path and schema_of(ctx.path) is not None:
        _load_columnar(ctx)
    else:
        _load_csv(ctx)


def _first_start(batch: pa.Table, column: int) -> str | None:
    """The start time written in the first row of a CSV batch that has that column."""
    for raw in batch.column("raw").to_pylist()[:100]:
        try:
            fields = split_header(raw)
        except csv.Error:  # a broken row: look at the next one
            continue
        if len(fields) > column and fields[column]:
            return fields[column]
    return None


def _load_csv(ctx: LoadContext) -> None:
    cols: dict[str, int] | None = None
    for header, header_line, batch in csv_batches(ctx):
        if cols is None:
            cols = _columns(ctx, header, header_line)
            sample = _first_start(batch, cols["start_time"])
            unit = _duration_unit(ctx, header, cols, sample)
            extra = [i for i in range(len(header)) if i not in cols.values()]
        ref = {f: map_sql(f"f[{i + 1}]") if f in MAPS else f"f[{i + 1}]" for f, i in cols.items()} | {
            f"_{i}": f"f[{i + 1}]" for i in extra}
        src = ctx.register(batch)
        try:
            inner = _select(f"(SELECT line, raw, {csv_fields_sql('raw')} AS f FROM {src})", ref, header, cols, extra,
                            "t.line", "NULL", "t.raw", f"CASE WHEN len(f) <> {len(header)} THEN 'expected {len(header)} "
                            f"fields as in the header, found ' || len(f) END", unit)
            ctx.emit("spans", _wrap(inner), _params(header, extra))
        finally:
            ctx.unregister(src)


def _map_column(arrow_type: pa.DataType, column: str) -> str:
    """SQL of an attributes column of a Parquet/Arrow file as a MAP (a map or struct column as
    it is, text parsed by :func:`map_sql`)."""
    if pa.types.is_map(arrow_type) or pa.types.is_struct(arrow_type):
        return f"TRY_CAST({column} AS MAP(VARCHAR, VARCHAR))"
    return map_sql(f"CAST({column} AS VARCHAR)")


def _load_columnar(ctx: LoadContext) -> None:
    found = schema_of(ctx.path)
    assert found is not None
    names = list(found.names)
    cols = _columns(ctx, names)
    extra = [i for i in range(len(names)) if i not in cols.values()]
    unit: float | None = None
    ref = {f: _map_column(found.field(i).type, column_sql(i)) if f in MAPS else f"CAST({column_sql(i)} AS VARCHAR)"
           for f, i in cols.items()} | {f"_{i}": f"CAST({column_sql(i)} AS VARCHAR)" for i in extra}
    raw, raw_params = raw_json_sql(names)
    for _, table in row_batches(ctx):
        if unit is None:
            starts = table.column(cols["start_time"]).drop_null()
            unit = _duration_unit(ctx, names, cols, str(starts[0].as_py()) if len(starts) else None)
        src = ctx.register(table)
        try:
            inner = _select(src, ref, names, cols, extra, "NULL", "t._row", raw, "NULL", unit)
            ctx.emit("spans", _wrap(inner), _params(names, extra) | raw_params)
        finally:
            ctx.unregister(src)
