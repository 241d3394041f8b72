"""SQL fragments shared by the trace loaders: id normalization, semantic-convention promotion,
and the validation that decides whether a span row is loaded or rejected.

Every loader builds a SELECT that yields the raw canonical columns (``attributes`` and
``resource_attributes`` as ``MAP(VARCHAR, VARCHAR)``) plus ``source_line``/``source_offset`` and
``_raw``, then wraps it with :func:`finalize_spans_sql`, which promotes attributes to columns,
normalizes kind/status vocabularies and adds ``_reject_code``/``_reject_reason``.
"""
from __future__ import annotations

TRACE_ID_HEX = 32
SPAN_ID_HEX = 16


def hex_id_sql(expr: str, width: int) -> str:
    """Lowercase hex id left-padded with zeros to ``width`` (NULL/'' stays NULL; invalid kept for
    validation to reject)."""
    return (f"(CASE WHEN {expr} IS NULL OR trim({expr}) = '' THEN NULL "
            f"WHEN length(trim({expr})) < {width} THEN lpad(lower(trim({expr})), {width}, '0') "
            f"ELSE lower(trim({expr})) END)")


def _first(attrs: str, *keys: str) -> str:
    return "coalesce(" + ", ".join(f"{attrs}['{k}']" for k in keys) + ")" if len(keys) > 1 else f"{attrs}['{keys[0]}']"


#: promoted column -> attribute keys, newest semantic convention first (then OpenTracing-era tags:
#: ``db.type``, ``peer.hostname``, ``peer.address``; Brave's ``sql.query``; the older ``sql``)
PROMOTED: dict[str, tuple[str, ...]] = {
    "http_route": ("http.route",),
    "http_method": ("http.request.method", "http.method"),
    "http_status_code": ("http.response.status_code", "http.status_code"),
    "http_url": ("url.full", "http.url", "url.path", "http.target", "http.path"),
    "url_template": ("url.template",),
    "peer_service": ("peer.service",),
    "server_address": ("server.address", "net.peer.name", "net.host.name", "peer.hostname", "http.host",
                       "peer.address"),
    "server_port": ("server.port", "net.peer.port", "net.host.port", "peer.port"),
    "rpc_system": ("rpc.system",),
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "db_system": ("db.system.name", "db.system", "db.type"),
    "db_statement": ("db.query.text", "db.statement", "sql.query", "sql"),
    "db_operation": ("db.operation.name", "db.operation"),
    "messaging_system": ("messaging.system",),
    "messaging_destination": ("messaging.destination.name", "messaging.destination"),
    "messaging_operation": ("messaging.operation.type", "messaging.operation"),
    "messaging_message_id": ("messaging.message.id", "messaging.message_id"),
}
INTEGER_COLUMNS = {"http_status_code", "server_port"}


PRECOMPUTED_PREFIX = "_p_"


def promoted_sql(attrs: str = "attributes", precomputed: str | None = None) -> str:
    """Select-list fragment computing every promoted column from the attributes map, or from
    the text columns ``{precomputed}_p_<column>`` a loader already extracted (first present key
    of :data:`PROMOTED`, as text)."""
    parts = []
    for col, keys in PROMOTED.items():
        expr = f"{precomputed}{PRECOMPUTED_PREFIX}{col}" if precomputed is not None else _first(attrs, *keys)
        if col in INTEGER_COLUMNS:
            expr = f"TRY_CAST(TRY_CAST({expr} AS DOUBLE) AS INTEGER)"
        parts.append(f"{expr} AS {col}")
    return ",\n  ".join(parts)


KIND_SQL = """CASE
    WHEN k IS NULL OR k IN ('', '0', 'SPAN_KIND_UNSPECIFIED', 'UNSPECIFIED', 'unspecified') THEN 'unspecified'
    WHEN k IN ('1', 'SPAN_KIND_INTERNAL', 'INTERNAL', 'internal') THEN 'internal'
    WHEN k IN ('2', 'SPAN_KIND_SERVER', 'SERVER', 'server') THEN 'server'
    WHEN k IN ('3', 'SPAN_KIND_CLIENT', 'CLIENT', 'client') THEN 'client'
    WHEN k IN ('4', 'SPAN_KIND_PRODUCER', 'PRODUCER', 'producer') THEN 'producer'
    WHEN k IN ('5', 'SPAN_KIND_CONSUMER', 'CONSUMER', 'consumer') THEN 'consumer'
    ELSE NULL END"""

STATUS_SQL = """CASE
    WHEN s IS NULL OR s IN ('', '0', 'STATUS_CODE_UNSET', 'UNSET', 'unset') THEN 'unset'
    WHEN s IN ('1', 'STATUS_CODE_OK', 'OK', 'ok') THEN 'ok'
    WHEN s IN ('2', 'STATUS_CODE_ERROR', 'ERROR', 'error') THEN 'error'
    ELSE NULL END"""


def kind_sql(expr: str) -> str:
    """Canonical kind from an integer or enum-name text expression (NULL if unknown)."""
    return KIND_SQL.replace("WHEN k IS NULL OR k IN", f"WHEN ({expr}) IS NULL OR ({expr}) IN").replace("WHEN k IN", f"WHEN ({expr}) IN")


def status_sql(expr: str) -> str:
    """Canonical status from an integer or enum-name text expression (NULL if unknown)."""
    return STATUS_SQL.replace("WHEN s IS NULL OR s IN", f"WHEN ({expr}) IS NULL OR ({expr}) IN").replace("WHEN s IN", f"WHEN ({expr}) IN")


def finalize_spans_sql(inner: str, *, precomputed: bool = False) -> str:
    """Wrap a loader's raw span SELECT: promote attributes, validate, add reject columns.

    ``inner`` must produce: trace_id, span_id, parent_span_id (already hex-normalized), service,
    service_version, name, kind, status (canonical or NULL when unrecognised; ``kind_raw`` and
    ``status_raw`` give the original text for the reject reason), status_message, start_time,
    end_time (TIMESTAMPTZ), duration_ms, attributes, resource_attributes, scope_name,
    scope_version, events, links, host_name, source_line, source_offset, _raw; with
    ``precomputed`` also the promoted columns as text, named ``_p_<column>``.
    """
    exclude = f" EXCLUDE ({', '.join(PRECOMPUTED_PREFIX + c for c in PROMOTED)})" if precomputed else ""
    return f"""
SELECT s.*{exclude},
  {promoted_sql('s.attributes', 's.' if precomputed else None)},
  CASE
    WHEN s.trace_id IS NULL THEN 'missing_field'
    WHEN NOT regexp_full_match(s.trace_id, '[0-9a-f]{{{TRACE_ID_HEX}}}') OR s.trace_id = repeat('0', {TRACE_ID_HEX}) THEN 'bad_id'
    WHEN s.span_id IS NULL THEN 'missing_field'
    WHEN NOT regexp_full_match(s.span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}') OR s.span_id = repeat('0', {SPAN_ID_HEX}) THEN 'bad_id'
    WHEN s.parent_span_id IS NOT NULL AND NOT regexp_full_match(s.parent_span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}') THEN 'bad_id'
    WHEN s.start_time IS NULL THEN 'bad_time'
    WHEN s.kind IS NULL THEN 'bad_value'
    WHEN s.status IS NULL THEN 'bad_value'
    ELSE NULL END AS _reject_code,
  CASE
    WHEN s.trace_id IS NULL THEN 'span has no trace id'
    WHEN NOT regexp_full_match(s.trace_id, '[0-9a-f]{{{TRACE_ID_HEX}}}') OR s.trace_id = repeat('0', {TRACE_ID_HEX})
      THEN 'trace id is not 1-32 hex digits (or is all zero): ' || left(s.trace_id, 80)
    WHEN s.span_id IS NULL THEN 'span has no span id'
    WHEN NOT regexp_full_match(s.span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}') OR s.span_id = repeat('0', {SPAN_ID_HEX})
      THEN 'span id is not 1-16 hex digits (or is all zero): ' || left(s.span_id, 80)
    WHEN s.parent_span_id IS NOT NULL AND NOT regexp_full_match(s.parent_span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}')
      THEN 'parent span id is not 1-16 hex digits: ' || left(s.parent_span_id, 80)
    WHEN s.start_time IS NULL THEN 'span has no valid start time'
    WHEN s.kind IS NULL THEN 'unknown span kind: ' || coalesce(s.kind_raw, 'NULL')
    WHEN s.status IS NULL THEN 'unknown status code: ' || coalesce(s.status_raw, 'NULL')
    ELSE NULL END AS _reject_reason
FROM ({inner}) s
"""
