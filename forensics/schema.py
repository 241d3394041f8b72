"""Canonical tables of a case: one declaration per column, with its DuckDB type and meaning.

Times are UTC ``TIMESTAMPTZ`` (microsecond precision); durations are ``duration_ms`` (DOUBLE,
milliseconds, keeping sub-microsecond precision as a fraction). Ids are lowercase hex, left
padded (trace ids 32 chars, span ids 16 chars). ``source_file``/``source_line`` say where
each row came from (``source_line`` is 1-based; formats without lines store the 0-based record
index or byte offset in ``source_offset``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


MAP = "MAP(VARCHAR, VARCHAR)"

_PROVENANCE = [
    Column("format", "VARCHAR", "loader format name, e.g. otlp_json"),
    Column("source_file", "VARCHAR", "path of the file the row was read from"),
    Column("source_line", "BIGINT", "1-based line in the (decompressed) file, when line-based"),
    Column("source_offset", "BIGINT", "byte offset or 0-based record index, when not line-based"),
]

SPANS = [
    Column("trace_id", "VARCHAR", "32 lowercase hex chars"),
    Column("span_id", "VARCHAR", "16 lowercase hex chars"),
    Column("parent_span_id", "VARCHAR", "16 lowercase hex chars; NULL for roots"),
    Column("service", "VARCHAR", "service.name (resource) or process/endpoint service name"),
    Column("service_version", "VARCHAR", "service.version"),
    Column("name", "VARCHAR", "span name / operation"),
    Column("kind", "VARCHAR", "server|client|producer|consumer|internal|unspecified"),
    Column("start_time", "TIMESTAMPTZ", "span start, UTC"),
    Column("end_time", "TIMESTAMPTZ", "span end, UTC"),
    Column("duration_ms", "DOUBLE", "end - start in milliseconds"),
    Column("status", "VARCHAR", "ok|error|unset"),
    Column("status_message", "VARCHAR", "status description / error message"),
    Column("http_route", "VARCHAR", "http.route"),
    Column("http_method", "VARCHAR", "http.request.method or http.method"),
    Column("http_status_code", "INTEGER", "http.response.status_code or http.status_code"),
    Column("http_url", "VARCHAR", "url.full / http.url / http.target / url.path"),
    Column("url_template", "VARCHAR", "url.template"),
    Column("peer_service", "VARCHAR", "peer.service"),
    Column("server_address", "VARCHAR", "server.address / net.peer.name"),
    Column("server_port", "INTEGER", "server.port / net.peer.port"),
    Column("rpc_system", "VARCHAR", "rpc.system"),
    Column("rpc_service", "VARCHAR", "rpc.service"),
    Column("rpc_method", "VARCHAR", "rpc.method"),
    Column("db_system", "VARCHAR", "db.system.name / db.system"),
    Column("db_statement", "VARCHAR", "db.query.text / db.statement"),
    Column("db_operation", "VARCHAR", "db.operation.name / db.operation"),
    Column("messaging_system", "VARCHAR", "messaging.system"),
    Column("messaging_destination", "VARCHAR", "messaging.destination.name / messaging.destination"),
    Column("messaging_operation", "VARCHAR", "messaging.operation.type / messaging.operation"),
    Column("messaging_message_id", "VARCHAR", "messaging.message.id"),
    Column("host_name", "VARCHAR", "host.name (resource) or hostname / ip of the process"),
    Column("attributes", MAP, "span attributes, values as text"),
    Column("resource_attributes", MAP, "resource / process attributes, values as text"),
    Column("scope_name", "VARCHAR", "instrumentation scope name"),
    Column("scope_version", "VARCHAR", "instrumentation scope version"),
    Column("events", "JSON", "span events (OTLP events / Jaeger logs / Zipkin annotations) as JSON"),
    Column("links", "JSON", "span links / non-parent references as JSON"),
    *_PROVENANCE,
]

LOGS = [
    Column("time", "TIMESTAMPTZ", "log time, UTC"),
    Column("observed_time", "TIMESTAMPTZ", "time the log was observed by a collector, UTC"),
    Column("service", "VARCHAR", "emitting service"),
    Column("severity", "VARCHAR", "trace|debug|info|warn|error|fatal (lowercase)"),
    Column("severity_number", "INTEGER", "OTLP severity number (1-24) when known"),
    Column("body", "VARCHAR", "message text"),
    Column("trace_id", "VARCHAR", "32 lowercase hex chars, NULL if absent"),
    Column("span_id", "VARCHAR", "16 lowercase hex chars, NULL if absent"),
    Column("attributes", MAP, "remaining fields, values as text"),
    Column("resource_attributes", MAP, "resource attributes"),
    Column("template", "VARCHAR", "mined log template (drain3), e.g. 'timeout calling <*>'"),
    Column("template_id", "VARCHAR", "stable id of the template"),
    *_PROVENANCE,
]

METRICS = [
    Column("time", "TIMESTAMPTZ", "sample time, UTC"),
    Column("name", "VARCHAR", "metric name, including _bucket/_sum/_count suffixes"),
    Column("labels", MAP, "label set"),
    Column("value", "DOUBLE", "sample value (NaN and +/-Inf kept)"),
    Column("type", "VARCHAR", "counter|created|gauge|histogram_bucket|histogram_sum|histogram_count|summary_quantile|summary_sum|summary_count|exp_histogram|info|stateset|untyped"),
    Column("unit", "VARCHAR", "unit when declared"),
    Column("description", "VARCHAR", "HELP / description text"),
    Column("temporality", "VARCHAR", "cumulative|delta for OTLP sums and histograms"),
    Column("service", "VARCHAR", "service (job / service.name) when known"),
    Column("resource_attributes", MAP, "resource attributes (OTLP: service.instance.id, host.name, k8s.pod.name, ...)"),
    Column("exemplar_trace_id", "VARCHAR", "trace id of an attached exemplar"),
    Column("exemplar_span_id", "VARCHAR", "span id of an attached exemplar"),
    Column("exemplar_value", "DOUBLE", "exemplar value"),
    Column("exemplar_time", "TIMESTAMPTZ", "exemplar timestamp"),
    *_PROVENANCE,
]

EVENTS = [
    Column("time", "TIMESTAMPTZ", "when it happened, UTC"),
    Column("end_time", "TIMESTAMPTZ", "for events with a duration (k8s lastTimestamp)"),
    Column("kind", "VARCHAR", "deploy|config|scale|k8s|alert|rollback|feature_flag|..."),
    Column("service", "VARCHAR", "service or workload the event is about"),
    Column("version", "VARCHAR", "version deployed, when relevant"),
    Column("reason", "VARCHAR", "short machine reason (OOMKilled, BackOff, ScalingReplicaSet)"),
    Column("message", "VARCHAR", "human message"),
    Column("severity", "VARCHAR", "normal|warning|... as reported"),
    Column("count", "BIGINT", "how many times it occurred (k8s count)"),
    Column("attributes", MAP, "remaining fields"),
    *_PROVENANCE,
]

REJECTS = [
    Column("source_file", "VARCHAR", "file the bad record came from"),
    Column("source_line", "BIGINT", "1-based line, when line-based"),
    Column("source_offset", "BIGINT", "byte offset or 0-based record index, otherwise"),
    Column("format", "VARCHAR", "loader format"),
    Column("target_table", "VARCHAR", "table the record was meant for"),
    Column("reason_code", "VARCHAR", "a forensics.errors.Reason value"),
    Column("reason", "VARCHAR", "what was expected and what was found"),
    Column("raw", "VARCHAR", "the record, truncated to 1000 characters"),
]

FILES = [
    Column("path", "VARCHAR", "absolute path of the loaded file"),
    Column("size_bytes", "BIGINT", "file size on disk"),
    Column("sha256", "VARCHAR", "sha256 of the file bytes on disk"),
    Column("format", "VARCHAR", "detected or forced format"),
    Column("records_read", "BIGINT", "records read (loaded + merged + rejected)"),
    Column("rows_loaded", "BIGINT", "rows inserted into canonical tables"),
    Column("rows_rejected", "BIGINT", "rows inserted into rejects"),
    Column("loaded_rows_by_table", "JSON", "rows loaded per canonical table"),
    Column("loaded_at", "TIMESTAMPTZ", "when the load committed, UTC"),
    Column("tool_version", "VARCHAR", "forensics version that loaded it"),
    Column("rows_merged", "BIGINT", "records merged into another row: Zipkin partial flushes merged into their "
                                    "span, exact duplicates of spans already in the case"),
]

TABLES: dict[str, list[Column]] = {
    "spans": SPANS,
    "logs": LOGS,
    "metrics": METRICS,
    "events": EVENTS,
    "rejects": REJECTS,
    "files": FILES,
}

CANONICAL = ("spans", "logs", "metrics", "events")

#: the table that makes a DuckDB database a case: the chain of custody
CASE_MARKER = "files"


def ddl(table: str) -> str:
    """CREATE TABLE IF NOT EXISTS statement for a canonical table."""
    cols = ",\n  ".join(f'"{c.name}" {c.type}' for c in TABLES[table])
    return f'CREATE TABLE IF NOT EXISTS "{table}" (\n  {cols}\n)'


def missing_columns_ddl(table: str, existing: set[str]) -> list[str]:
    """ALTER TABLE statements adding the columns of ``table`` a case made by an older version lacks."""
    return [f'ALTER TABLE "{table}" ADD COLUMN "{c.name}" {c.type}' for c in TABLES[table] if c.name not in existing]


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


_ARROW = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    MAP: pa.map_(pa.string(), pa.string()),
}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a canonical table (what ``case.sql('select * from t')`` returns)."""
    return pa.schema([pa.field(c.name, _ARROW[c.type]) for c in TABLES[table]])
