"""Normalization of span descriptions (names, URL paths, statements) into stable operation text.

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

The operations built from these pieces are in :mod:`forensics.semantics.operations`. Every
function returns a SQL *expression* over column expressions given by the caller (trusted
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
