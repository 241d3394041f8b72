"""SQL pieces shared by the trace-tree analyses (operations of spans, roots, error-ness)."""
from __future__ import annotations

from ..detectors._normalize import call_operation_sql, server_operation_sql

#: default bound on the depth of recursive walks over parent links (guards against cycles)
MAX_DEPTH = 64


def span_operation_sql(s: str = "s") -> str:
    """Normalized operation of any span aliased ``s``: the call template for client, producer and
    DB spans (``GET /inventory/{id}``, ``SELECT * FROM items WHERE id = ?``), the route or
    normalized name otherwise."""
    outbound = f"({s}.kind IN ('client', 'producer') OR {s}.db_statement IS NOT NULL)"
    return f"(CASE WHEN {outbound} THEN {call_operation_sql(s, None)} ELSE {server_operation_sql(s)} END)"


def is_error_sql(s: str = "s") -> str:
    """Whether a span aliased ``s`` failed: status ``error``, or an HTTP status >= 500."""
    return f"({s}.status = 'error' OR coalesce({s}.http_status_code, 0) >= 500)"


def host_sql(s: str = "s") -> str:
    """The clock a span was timed with: ``host_name``, else its service."""
    return f"coalesce(nullif({s}.host_name, ''), {s}.service)"


#: span columns the operation of a span depends on (see :func:`span_operation_sql`)
OP_COLUMNS = ("kind", "name", "url_template", "http_route", "http_method", "db_statement", "http_url",
              "rpc_service", "rpc_method", "messaging_destination", "messaging_operation")


def operation_key_sql(s: str = "s") -> str:
    """A 64-bit key of the columns a span's operation depends on (equal inputs, equal key)."""
    return f"hash({', '.join(f'{s}.{c}' for c in OP_COLUMNS)})"


def operations_sql(source: str) -> str:
    """SELECT (opkey, operation) for the distinct ``opkey`` of relation ``source`` (which has
    :data:`OP_COLUMNS` and ``opkey``): normalization runs once per distinct input, not per span."""
    return f"SELECT opkey, {span_operation_sql('o')} AS operation FROM (SELECT DISTINCT ON (opkey) * FROM {source}) o"


def roots_sql(sp: str = "sp") -> str:
    """SELECT of the roots of relation ``sp`` (trace_id, span_id, parent_span_id, ...): spans
    without a parent, or whose parent is not in ``sp`` (never exported, or filtered out), so a
    broken trace is walked from each of its fragments."""
    return (f"SELECT r.* FROM {sp} r WHERE r.parent_span_id IS NULL OR NOT EXISTS "
            f"(SELECT 1 FROM {sp} p WHERE p.trace_id = r.trace_id AND p.span_id = r.parent_span_id)")
