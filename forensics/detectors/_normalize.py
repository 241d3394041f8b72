"""SQL expression builders that turn span descriptions into stable operation names.

Detectors group calls by *what* they do, not by the literal values they carry: ``GET
/inventory/12345`` and ``GET /inventory/9f1c0e6a-...`` are the same operation, and so are
``SELECT * FROM items WHERE id = 42`` and ``... WHERE id = 43``. Templates the instrumentation
already provides (``url.template``, ``http.route``, ``db.query.text`` with placeholders) are
preferred; otherwise the description is normalized with RE2 regular expressions in DuckDB, so
normalization is vectorized and runs once per row inside the query.

Rules of :func:`normalize_text_sql`, applied in order:

1. URL path segments that look like ids become ``{id}``: all digits, a UUID, or a segment with
   three or more digits (``sku-00123``, hex object ids); ``/api/v1`` is kept.
2. Quoted string literals (``'abc'``, with ``''`` escapes) become ``?``.
3. UUIDs, ``0x``-hex and bare hex runs of 12+ characters become ``?``.
4. Numbers and positional parameters (``$1``) become ``?``.
5. ``IN (?, ?, ?)`` lists collapse to ``IN (?)``; whitespace is collapsed.

Every function returns a SQL *expression* over column expressions given by the caller (trusted
identifiers such as ``c.name``), never over values: telemetry never reaches the SQL text.
"""
from __future__ import annotations

UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_SEG = r"[^/?#\s;,)]"
#: a path segment that looks like an id: digits, a UUID, or three or more digits anywhere
ID_SEGMENT_RE = rf"(?:[0-9]+|{UUID_RE}|{_SEG}*[0-9]{_SEG}*[0-9]{_SEG}*[0-9]{_SEG}*)"
ID_PLACEHOLDER = "{id}"
VALUE_PLACEHOLDER = "?"


def _replace(expr: str, pattern: str, replacement: str, flags: str = "g") -> str:
    pattern_sql = pattern.replace("'", "''")
    replacement_sql = replacement.replace("'", "''")
    return f"regexp_replace({expr}, '{pattern_sql}', '{replacement_sql}', '{flags}')"


def path_ids_sql(expr: str) -> str:
    """``expr`` with id-like URL path segments replaced by ``{id}``.

    Applied twice because RE2 matches do not overlap: ``/1/2`` needs a second pass for ``2``.
    """
    pat = rf"/{ID_SEGMENT_RE}(/|\?|#|$|\s|;|,|\))"
    rep = "/" + ID_PLACEHOLDER + r"\1"
    return _replace(_replace(expr, pat, rep), pat, rep)


def url_path_sql(expr: str) -> str:
    """The path of a URL expression: scheme, host and port, query string and fragment removed."""
    no_host = _replace(expr, r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", "", "")
    return f"nullif({_replace(no_host, r'[?#].*$', '', '')}, '')"


#: text that any rule could change: digits, quotes, runs of whitespace
NEEDS_WORK_RE = r"""[0-9'"]|\s\s|[\t\n\r]"""


def normalize_text_sql(expr: str) -> str:
    """Normalize a span name, URL path, SQL statement or destination (see module rules).

    Text without digits, quotes or runs of whitespace is returned as is, trimmed (one cheap
    test instead of nine replacements: most operation names are already templates).
    """
    return (f"(CASE WHEN regexp_matches({expr}, '{NEEDS_WORK_RE.replace(chr(39), chr(39) * 2)}') "
            f"THEN {_normalize_all_sql(expr)} ELSE trim({expr}) END)")


def _normalize_all_sql(expr: str) -> str:
    out = path_ids_sql(expr)
    out = _replace(out, r"'(?:[^']|'')*'", VALUE_PLACEHOLDER)
    out = _replace(out, UUID_RE, VALUE_PLACEHOLDER)
    out = _replace(out, r"\b0[xX][0-9a-fA-F]+\b", VALUE_PLACEHOLDER)
    out = _replace(out, r"\b[0-9a-fA-F]{12,}\b", VALUE_PLACEHOLDER)
    out = _replace(out, r"\$[0-9]+\b", VALUE_PLACEHOLDER)
    out = _replace(out, r"\b[0-9]+(?:\.[0-9]+)?\b", VALUE_PLACEHOLDER)
    out = _replace(out, r"\b([Ii][Nn])\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", r"\1 (?)")
    out = _replace(out, r"\s+", " ")
    return f"trim({out})"


HTTP_METHOD_RE = r"^(get|post|put|delete|patch|head|options|trace|connect) "


def name_sql(expr: str) -> str:
    """A normalized span name with a leading lower-case HTTP method upper-cased (Zipkin writes
    ``get /cart``; OpenTelemetry ``GET /cart``)."""
    method_up = (f"(CASE WHEN regexp_matches({expr}, '{HTTP_METHOD_RE}', 'i') "
                 f"THEN upper(split_part({expr}, ' ', 1)) || substr({expr}, strpos({expr}, ' ')) ELSE {expr} END)")
    return normalize_text_sql(method_up)


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


def call_target_sql(c: str = "c", child: str | None = "ch") -> str:
    """The dependency an outbound span aliased ``c`` calls.

    ``peer_service``, else the service of its child server/consumer span (alias ``child``),
    else ``server_address``, else ``db_system``, else ``messaging_system``, else ``'unknown'``.
    """
    parts = [f"{c}.peer_service"] + ([f"{child}.service"] if child else []) + [
        f"{c}.server_address", f"{c}.db_system", f"{c}.messaging_system", "'unknown'"]
    return "coalesce(" + ", ".join(f"nullif({p}, '')" if p != "'unknown'" else p for p in parts) + ")"


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
