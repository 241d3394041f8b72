"""The operation of a span: one definition for detectors, analyses, figures and the report.

* A **server operation** (what a request asked for) is the span name when it already carries
  the route (``GET /search``), else method and ``http.route``, else the normalized name
  (:func:`server_operation_sql`).
* A **call operation** (what an outbound call asked a dependency for) is the template the
  instrumentation gives (``url.template``, ``http.route``, a ``db.query.text`` statement), else the
  route of the server span that answered it, else the normalized URL path, RPC method,
  messaging destination or name (:func:`call_operation_sql`).
* Any span: the call operation for an outbound call (:func:`forensics.semantics.calls.is_call_sql`),
  the server operation otherwise (:func:`span_operation_sql`).

The ``*_key_sql`` functions give 64-bit keys of the columns an operation depends on, so a query
normalizes once per distinct input (a handful of regular-expression runs over millions of spans)
and joins back on the key.
"""
from __future__ import annotations

from .calls import CALL_COLUMNS, is_call_sql
from .normalize import name_sql, normalize_text_sql, url_path_sql


def _http(method: str, path_expr: str) -> str:
    return f"concat_ws(' ', upper({method}), {path_expr})"


def call_operation_sql(c: str = "c", child: str | None = "ch") -> str:
    """The normalized operation of an outbound (client/producer/DB) span aliased ``c``.

    Preference: ``url_template``; the client's ``http_route``; ``db_statement`` (normalized, so
    ``db.query.text`` templates pass through); the route of the called server span (alias
    ``child``, columns ``http_route``; omit with ``child=None``); the normalized ``http_url``
    path; ``rpc_service/rpc_method``; messaging operation and destination; the normalized name.
    HTTP operations are prefixed with the upper-case method (``GET /inventory/{id}``).
    """
    branches = [
        (f"{c}.url_template IS NOT NULL", _http(f"{c}.http_method", f"{c}.url_template")),
        (f"{c}.http_route IS NOT NULL", _http(f"{c}.http_method", f"{c}.http_route")),
        (f"{c}.db_statement IS NOT NULL", normalize_text_sql(f"{c}.db_statement")),
    ]
    if child:
        branches.append((f"{child}.http_route IS NOT NULL",
                         _http(f"coalesce({c}.http_method, {child}.http_method)", f"{child}.http_route")))
    branches += [
        (f"{c}.http_url IS NOT NULL AND {url_path_sql(f'{c}.http_url')} IS NOT NULL",
         _http(f"{c}.http_method", normalize_text_sql(url_path_sql(f"{c}.http_url")))),
        (f"{c}.rpc_method IS NOT NULL", f"concat_ws('/', {c}.rpc_service, {c}.rpc_method)"),
        (f"{c}.messaging_destination IS NOT NULL",
         f"concat_ws(' ', {c}.messaging_operation, {normalize_text_sql(f'{c}.messaging_destination')})"),
    ]
    whens = "\n    ".join(f"WHEN {cond} THEN {value}" for cond, value in branches)
    return f"(CASE\n    {whens}\n    ELSE {name_sql(f'{c}.name')} END)"


def server_operation_sql(s: str = "s") -> str:
    """The operation of a server/consumer (or any parent) span aliased ``s``.

    The span name when it already carries the route (``GET /search``); otherwise method and
    ``http_route``; otherwise the normalized name (:func:`name_sql`).
    """
    return (f"(CASE WHEN {s}.http_route IS NOT NULL AND strpos({s}.name, {s}.http_route) = 0 "
            f"THEN {_http(f'{s}.http_method', f'{s}.http_route')} "
            f"ELSE {name_sql(f'{s}.name')} END)")


def server_operation_key_sql(s: str = "s") -> str:
    """A 64-bit key of the columns :func:`server_operation_sql` reads (``name``, ``http_route``,
    ``http_method``) of a span aliased ``s``: equal inputs, equal key (engine-specific values,
    for equality only)."""
    return f"hash({s}.name, {s}.http_route, {s}.http_method)"


def server_operations_sql(rel: str) -> str:
    """SELECT (opkey, operation) for each distinct ``opkey`` of relation ``rel`` (columns
    ``opkey`` = :func:`server_operation_key_sql`, ``name``, ``http_route``, ``http_method``).

    Joined back on ``opkey``, it normalizes once per distinct input instead of once per span:
    over millions of requests with a handful of names, the regular expressions run a handful
    of times.
    """
    return (f"SELECT opkey, {server_operation_sql('o')} AS operation FROM ("
            f"SELECT opkey, any_value(name) AS name, any_value(http_route) AS http_route, "
            f"any_value(http_method) AS http_method FROM {rel} GROUP BY opkey) o")


def with_server_operation_sql(query: str, columns: str = "r.*") -> str:
    """SELECT ``columns`` of ``query`` (alias ``r``; it must have ``opkey`` =
    :func:`server_operation_key_sql`, ``name``, ``http_route`` and ``http_method``) and
    ``operation`` (:func:`server_operation_sql`), normalized once per distinct ``opkey``."""
    return (f"WITH r AS ({query})\nSELECT {columns}, o.operation FROM r "
            f"JOIN ({server_operations_sql('r')}) o ON o.opkey = r.opkey")


def span_operation_sql(s: str = "s") -> str:
    """Normalized operation of any span aliased ``s``: the call operation of an outbound call
    (:func:`call_operation_sql` without the callee's route), the server operation otherwise."""
    return f"(CASE WHEN {is_call_sql(s)} THEN {call_operation_sql(s, None)} ELSE {server_operation_sql(s)} END)"


#: span columns the operation of any span depends on (see :func:`span_operation_sql`)
OP_COLUMNS = tuple(dict.fromkeys(("kind", "name", "url_template", "http_route", "http_method", "db_statement",
                                  "http_url", "rpc_service", "rpc_method", "messaging_destination",
                                  "messaging_operation") + CALL_COLUMNS))


def operation_key_sql(s: str = "s") -> str:
    """A 64-bit key of the columns a span's operation depends on (:data:`OP_COLUMNS`; equal
    inputs, equal key; engine-specific values, for equality only)."""
    return f"hash({', '.join(f'{s}.{c}' for c in OP_COLUMNS)})"


def operations_sql(source: str) -> str:
    """SELECT (opkey, operation) for the distinct ``opkey`` of relation ``source`` (which has
    :data:`OP_COLUMNS` and ``opkey``): normalization runs once per distinct input, not per span."""
    return f"SELECT opkey, {span_operation_sql('o')} AS operation FROM (SELECT DISTINCT ON (opkey) * FROM {source}) o"
