"""Shared machinery of the Jaeger and Zipkin JSON loaders: reading a file as JSON documents
(one document, or one document per line), SQL fragments for their microsecond times and
key/value lists, and the extra reject rows (broken lines, unrecognised shapes).

Both formats are read the same way:

* a file whose first non-blank line is a complete JSON value *and* that has a second
  non-blank line is newline-delimited (one document per line, streamed in batches with
  :meth:`LoadContext.line_batches`); rows carry ``source_line`` (1-based);
* anything else is one document (:meth:`LoadContext.read_document`, which also handles
  ``.gz``/``.zst``); rows carry ``source_offset`` = the 0-based index of the span within the
  document, in document order.

Either way the loader's SQL sees a registered Arrow table ``(line BIGINT, raw VARCHAR)``
(``line`` is NULL for a single document) and never loops over spans in Python.
"""
from __future__ import annotations

from typing import Callable, Iterator

import orjson
import pyarrow as pa

from ..errors import Reason
from . import io as fio
from ._semconv import hex_id_sql
from .context import LoadContext
from .sniff import Head

#: longest first line read to decide whether a file is newline-delimited
_MAX_PROBE_BYTES = 256 << 20


def _is_ndjson(path: str) -> bool:
    """True when the first non-blank line is a complete JSON value and another line follows."""
    first: bytes | None = None
    try:
        with fio.open_binary(path) as fh:
            for raw in iter(lambda: fh.readline(_MAX_PROBE_BYTES), b""):
                if not raw.strip():
                    continue
                if first is not None:
                    return True
                if not raw.endswith(b"\n"):
                    return False  # one line only, or a line longer than the probe
                first = raw
                try:
                    orjson.loads(first)
                except orjson.JSONDecodeError:
                    return False
    except Exception:  # truncated stream: let read_document report it
        return False
    return False


def json_sources(ctx: LoadContext) -> Iterator[tuple[str, bool]]:
    """Registered tables ``(line, raw)`` of JSON documents and whether the file is NDJSON.

    A single document that is not valid JSON is rejected here (``invalid_json``, with the line,
    column and character offset of the first error) and yields nothing. The caller unregisters
    each table after use.
    """
    if _is_ndjson(ctx.path):
        for batch in ctx.line_batches():
            yield ctx.register(batch), True
        return
    text = ctx.read_document()
    if text is None:
        return
    if not text.strip():
        ctx.reject(Reason.WRONG_SHAPE, "file holds no JSON document (only whitespace)", offset=0, table="spans")
        return
    name = ctx.register(pa.table({"line": pa.array([None], pa.int64()), "raw": pa.array([text], pa.large_string())}))
    from .._db import scalar

    if not scalar(ctx.con, f"SELECT json_valid(raw) FROM {name}"):
        ctx.unregister(name)
        try:
            orjson.loads(text)
            where, line, pos = "", None, 0  # valid for orjson but not for DuckDB (should not happen)
        except orjson.JSONDecodeError as exc:
            where, line, pos = f" at line {exc.lineno} column {exc.colno} (char {exc.pos})", exc.lineno, exc.pos
            detail = exc.msg
        else:
            detail = "DuckDB's JSON parser refused it"
        ctx.reject(Reason.INVALID_JSON, f"document is not valid JSON{where}: {detail}; nothing in it was loaded",
                   line=line, offset=pos, raw=text[max(0, pos - 200): pos + 200], table="spans")
        return
    yield name, False


def load_spans(ctx: LoadContext, build_sql: Callable[[str, bool], str]) -> None:
    """Emit the spans of every JSON source of ``ctx`` with ``build_sql(table, ndjson)``."""
    for name, ndjson in json_sources(ctx):
        try:
            ctx.emit("spans", build_sql(name, ndjson))
        finally:
            ctx.unregister(name)


# -- SQL fragments ------------------------------------------------------------------------------

def hex_sql(expr: str, width: int) -> str:
    """Lowercase hex id left-padded to ``width``; text that is not hex is kept as is, so the
    validation in :func:`finalize_spans_sql` rejects it quoting the original."""
    return f"CASE WHEN regexp_full_match(trim({expr}), '[0-9a-fA-F]+') THEN {hex_id_sql(expr, width)} ELSE {expr} END"


def micros_sql(expr: str) -> str:
    """Microseconds given as a JSON number or a numeric string -> BIGINT (0 or junk -> NULL)."""
    return (f"nullif(coalesce(TRY_CAST({expr} AS BIGINT), "
            f"TRY_CAST(round(TRY_CAST({expr} AS DOUBLE)) AS BIGINT)), 0)")


def ts_sql(micros: str) -> str:
    """Unix microseconds (BIGINT) -> TIMESTAMPTZ in UTC (NULL stays NULL)."""
    return f"CASE WHEN {micros} > 0 THEN timezone('UTC', make_timestamp({micros})) END"


def iso_sql(ts: str) -> str:
    """TIMESTAMPTZ -> ISO-8601 UTC text with microseconds, e.g. 2026-02-18T10:00:00.000123Z."""
    return f"strftime({ts}, '%Y-%m-%dT%H:%M:%S.%fZ')"


def kv_map_sql(entries: str) -> str:
    """A list of ``{key, value}`` structs -> ``MAP(VARCHAR, VARCHAR)``.

    NULL list -> empty map; entries without a key are dropped; on duplicate keys the first wins
    (DuckDB map keys must be unique). ``entries`` is evaluated several times: pass a column or a
    lambda parameter, not an expensive expression.
    """
    lst = f"coalesce({entries}, [])"
    return (f"map_from_entries(list_transform(list_filter({lst}, lambda kv_e, kv_i: kv_e.key IS NOT NULL AND "
            f"list_position(list_transform({lst}, lambda kv_k: kv_k.key), kv_e.key) = kv_i), "
            f"lambda kv_e: {{'key': kv_e.key, 'value': kv_e.value}}))")


def documents_sql(src: str) -> str:
    """Query: the valid JSON documents of ``src`` as ``(line, raw, doc JSON)``."""
    return f"SELECT line, raw, raw::JSON AS doc FROM {src} WHERE json_valid(raw)"


def bad_documents_sql(src: str, ndjson: bool, recognised: str, expected: str) -> str:
    """Reject rows for lines that are not JSON and documents whose shape is not ``expected``.

    ``recognised`` is a SQL predicate over ``doc`` (JSON) telling whether a valid document has
    one of the shapes the loader reads.
    """
    where_line = "line AS source_line, NULL::BIGINT AS source_offset" if ndjson else "NULL::BIGINT AS source_line, 0::BIGINT AS source_offset"
    what = "line" if ndjson else "document"
    return f"""
SELECT {where_line}, left(raw, 1000) AS _raw, 'invalid_json' AS _reject_code,
       '{what} is not a complete JSON value (expected {expected})' AS _reject_reason
FROM {src} WHERE NOT json_valid(raw)
UNION ALL
SELECT {where_line}, left(raw, 1000) AS _raw, 'wrong_shape' AS _reject_code,
       'valid JSON but not ' || '{expected}' || '; found a JSON ' || lower(json_type(doc)) ||
       coalesce(' with keys ' || nullif(array_to_string(list_slice(json_keys(doc), 1, 8), ', '), ''), '') AS _reject_reason
FROM ({documents_sql(src)}) WHERE NOT ({recognised})
"""


def with_document_rejects(spans_sql: str, src: str, ndjson: bool, recognised: str, expected: str) -> str:
    """``spans_sql`` (finalized span rows) plus the reject rows of :func:`bad_documents_sql`."""
    return f"""
{spans_sql}
UNION ALL BY NAME
SELECT * FROM ({bad_documents_sql(src, ndjson, recognised, expected)})
"""


def large_document_has(head: Head, *patterns: str, absent: tuple[str, ...] = ()) -> bool:
    """For a JSON document too large to parse from the head: True when the head starts like JSON,
    matches every regex in ``patterns`` and none in ``absent``."""
    if head.first_json is not None or head.stripped[:1] not in ("{", "["):
        return False
    return all(head.has(p) for p in patterns) and not any(head.has(p) for p in absent)
