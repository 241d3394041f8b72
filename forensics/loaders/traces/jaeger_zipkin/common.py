"""Shared machinery of the Jaeger and Zipkin JSON loaders: reading a file as JSON documents,
SQL fragments for their microsecond times and key/value lists, and the extra reject rows
(broken lines, unrecognised shapes).

Both formats are read the same way:

* a file whose first non-blank line is a complete JSON value *and* that has a second
  non-blank line is newline-delimited (one document per line, streamed in batches with
  :meth:`LoadContext.line_batches`); rows carry ``source_line`` (1-based);
* a document that is one large array (``[...]``) or a Jaeger envelope (``{"data": [...]}``)
  is streamed element by element (:mod:`forensics.loaders.core.json_stream`), so files larger than
  memory load; a document that ends early (a cut download) loads every complete element and
  rejects the rest;
* anything else (a single trace or span object) is read whole with
  :meth:`LoadContext.read_document`.

Decompression (``.gz``/``.zst``, by magic bytes) is :mod:`forensics.loaders.core.io`'s. In the last
two cases rows carry ``source_offset`` = the 0-based index of the span within the document,
in document order.

Each batch of JSON texts goes first to the format's Arrow fast path (:mod:`forensics.loaders.traces.jaeger.arrow`,
:mod:`forensics.loaders.traces.zipkin.arrow`, see :mod:`forensics.loaders.traces.jaeger_zipkin.arrow`), which takes the texts whose spans it
converts exactly; the others go to the loader's SQL (the general path, the reference), which
sees a registered Arrow table ``(line, raw, doc_key, base, what)`` (see :func:`json_sources`).
Neither loops over spans in Python.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from forensics._db import query_arrow, scalar
from forensics.errors import Reason
from forensics.loaders.core import io as fio
from forensics.loaders.core.arrow_spans import prepared_ahead
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.json_stream import Tail, Truncated, array_start, iter_elements
from forensics.loaders.core.read_ahead import RecordingContext, take_recorded
from forensics.loaders.core.semconv import hex_id_sql

from .arrow import FastBatch

#: longest first line read to decide whether a file is newline-delimited
_MAX_PROBE_BYTES = 64 << 20
#: JSON text read per batch (lines or streamed array elements): bounds the memory of a load
BATCH_BYTES = 16 << 20
_KEEP_LINE_BYTES = 8 << 20
_LINE_PIECE = 1 << 20
_BLANK = re.compile(rb"\s*")


def _pieces(fh: BinaryIO) -> Iterator[bytes]:
    """The lines of ``fh``, a line longer than :data:`_LINE_PIECE` in pieces of about that size
    (as ``fh.readline(_LINE_PIECE)`` would give them, but found in blocks with ``bytes.find``:
    several times faster on a one-line document)."""
    rest = b""
    while True:
        block = fh.read(_LINE_PIECE)
        if not block:
            if rest:
                yield rest
            return
        data = rest + block if rest else block
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            yield data[start: end + 1]
            start = end + 1
        rest = data[start:]
        if len(rest) >= _LINE_PIECE:
            yield rest
            rest = b""


def _first_lines(fh: BinaryIO) -> tuple[bytes | None, bool]:
    """(the first non-blank line if it is at most :data:`_KEEP_LINE_BYTES` long, whether it ends
    with a newline and another non-blank line follows); a longer line is read in pieces and not
    kept (a one-line document is not held in memory twice)."""
    first, length, complete = [], 0, False
    pieces = _pieces(fh)
    for piece in pieces:
        if not length and _BLANK.fullmatch(piece):
            continue
        length += len(piece)
        if length <= _KEEP_LINE_BYTES:
            first.append(piece)
        if piece.endswith(b"\n"):
            complete = True
            break
        if length > _MAX_PROBE_BYTES:
            break
    if not complete:
        return None, False
    for line in pieces:
        if not _BLANK.fullmatch(line):
            return (b"".join(first) if length <= _KEEP_LINE_BYTES else None), True
    return None, False


def _is_ndjson(path: str) -> bool:
    """True when the first non-blank line is a complete JSON value and another line follows (the
    first line is parsed only then: a one-line document is not parsed twice)."""
    try:
        with fio.open_binary(path) as fh:
            first, more = _first_lines(fh)
        if not more:
            return False
        if first is None:  # a long first line: read it again, whole
            with fio.open_binary(path) as fh:
                first = next(line for line in iter(lambda: fh.readline(_MAX_PROBE_BYTES), b"")
                             if not _BLANK.fullmatch(line))
        orjson.loads(first)
    except Exception:  # not JSON, or a truncated stream (read_document reports it)
        return False
    return True


@dataclass(frozen=True)
class SpanFormat:
    """What :func:`load_spans` needs from a loader.

    ``spans_sql(src)`` builds the finalized span SELECT over a source table (see the module
    docstring); ``recognised`` is a SQL predicate over ``doc`` (JSON) telling whether a document
    has a shape the loader reads; ``count`` a SQL expression over ``doc`` giving the number of
    spans the loader will enumerate in it; ``expected`` describes the shapes for reject reasons;
    ``tail(ctx, data, offset)`` is shown what follows a streamed array (the rest of an envelope) and where it starts.
    ``fast(con, source, mode)`` is the loader's Arrow fast path (see
    :mod:`forensics.loaders.traces.jaeger_zipkin.arrow`; ``con`` is its scratch DuckDB connection, not the case's), on
    unless ``ctx.options[fast_option]`` is false.
    """

    spans_sql: Callable[[str], str]
    recognised: str
    count: str
    expected: str
    tail: Callable[[LoadContext, bytes, int], None] | None = None
    fast: Callable[[duckdb.DuckDBPyConnection, pa.Table, str], FastBatch] | None = None
    fast_option: str = ""


@dataclass
class Source:
    """A batch of JSON texts: ``table`` is ``(line, raw, doc_key, base, what)`` (see
    :func:`json_sources`; ``base`` is NULL until :func:`_number_spans` fills it for streamed
    array elements); ``mode`` is ``line``, ``element`` (of a streamed array) or ``document``."""

    table: pa.Table
    mode: str


def _table(line: pa.Array, raw: pa.Array, doc_key: pa.Array, base: pa.Array, what: pa.Array) -> pa.Table:
    return pa.table({"line": line, "raw": raw, "doc_key": doc_key, "base": base, "what": what})


def _line_sources(ctx: LoadContext) -> Iterator[Source]:
    for batch in ctx.line_batches(ctx.options.get("batch_bytes", BATCH_BYTES)):
        n = batch.num_rows
        lines = batch.column("line")
        yield Source(_table(lines, batch.column("raw"), lines, pa.nulls(n, pa.int64()), pa.array(["line"] * n)), "line")


def _document_source(ctx: LoadContext) -> Iterator[Source]:
    text = ctx.read_document()
    if text is None:
        return
    if not text.strip():
        ctx.reject(Reason.WRONG_SHAPE, "file holds no JSON document (only whitespace)", offset=0, table="spans")
        return
    if not scalar(ctx.con, "SELECT json_valid(?)", [text]):
        try:
            orjson.loads(text)
            where, line, pos, detail = "", None, 0, "DuckDB's JSON parser refused it"
        except orjson.JSONDecodeError as exc:
            where = f" at line {exc.lineno} column {exc.colno} (char {exc.pos})"
            line, pos, detail = exc.lineno, exc.pos, exc.msg
        ctx.reject(Reason.INVALID_JSON, f"document is not valid JSON{where}: {detail}; nothing in it was loaded",
                   line=line, offset=pos, raw=text[max(0, pos - 200): pos + 200], table="spans")
        return
    one = pa.array([0], pa.int64())
    yield Source(_table(pa.nulls(1, pa.int64()), pa.array([text], pa.large_string()), one, one, pa.array(["document"])),
                 "document")


def _L(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _wrapped(raw: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(_L("["), raw, _L("]"), _L(""))


def _number_spans(ctx: LoadContext, fmt: SpanFormat, elements: pa.Table, base: int, counts: np.ndarray | None) -> tuple[pa.Table, int]:
    """Streamed ``elements`` numbered: the table ``(line, base)`` gives each element's ``base``
    (the document-wide index of its first span, continuing at ``base``); returns it and the
    base of the next batch. ``counts`` gives the span count of the elements a fast path took
    (-1 for the others); the rest come from ``fmt.count`` in one query."""
    rows = elements.num_rows
    n = np.full(rows, -1, dtype=np.int64) if counts is None else counts.copy()
    todo = np.flatnonzero(n < 0)
    if len(todo):
        probe = ctx.register(pa.table({"i": pa.array(todo), "raw": _wrapped(elements.column("raw").take(pa.array(todo)))}))
        try:
            got = query_arrow(ctx.con, f"""
                SELECT coalesce(CASE WHEN {fmt.recognised} THEN {fmt.count} END, 0) AS n
                FROM (SELECT i, CASE WHEN json_valid(raw) THEN raw::JSON END AS doc FROM {probe})
                ORDER BY i""")
        finally:
            ctx.unregister(probe)
        n[todo] = got.column("n").to_numpy(zero_copy_only=False).astype(np.int64)
    starts = base + np.cumsum(n) - n
    return pa.table({"line": pa.nulls(rows, pa.int64()), "base": pa.array(starts)}), base + int(n.sum())


def _general_elements(elements: pa.Table, numbered: pa.Table) -> pa.Table:
    """The source table of streamed elements for the general path (each wrapped as a
    one-element array document)."""
    element = elements.column("element")
    what = pc.binary_join_element_wise(_L("array element "), pc.cast(element, pa.large_string()), _L(""))
    return _table(numbered.column("line"), _wrapped(elements.column("raw")), element, numbered.column("base"), what)


def _element_batches(ctx: LoadContext, fmt: SpanFormat | None, start: int, envelope: bool) -> Iterator[pa.Table]:
    """The elements (``element``, ``raw``) of one streamed array, batch by batch, rejecting
    elements that are not UTF-8, an array the document ends inside of, and anything after a
    top-level array (a second document: never skipped silently)."""
    try:
        with ctx.open() as fh:
            for item in iter_elements(fh, start, ctx.options.get("batch_bytes", BATCH_BYTES)):
                if isinstance(item, Tail):
                    if envelope and fmt is not None and fmt.tail is not None:
                        fmt.tail(ctx, item.data, item.offset)
                    elif not envelope and item.data.strip():
                        ctx.reject(Reason.WRONG_SHAPE, "more data after the end of the top-level JSON array "
                                   f"(concatenated documents?); it was not read: split the file, or write one "
                                   f"document per line", raw=item.data[:1000].decode("utf-8", "backslashreplace"),
                                   offset=item.offset, table="spans")
                    return
                if isinstance(item, Truncated):
                    ctx.reject(Reason.TRUNCATED, f"document ends inside array element {item.element} (which starts "
                               f"at byte {item.offset}); the elements before it were loaded", offset=item.offset,
                               raw=item.raw[:1000].decode("utf-8", "backslashreplace"), table="spans")
                    return
                for number, offset, raw in item.bad_utf8:
                    ctx.reject(Reason.INVALID_UTF8, f"array element {number} (at byte {offset}) is not valid UTF-8 "
                               "text", offset=offset, raw=raw[:1000].decode("utf-8", "backslashreplace"), table="spans")
                if item.table.num_rows:
                    yield item.table
    except fio.StreamTruncated as exc:
        ctx.reject(Reason.TRUNCATED, f"compressed stream ends early after {exc.offset} decompressed bytes "
                   f"({exc.cause}); the array elements before it were loaded", offset=exc.offset, table="spans")


def sources(ctx: LoadContext, fmt: SpanFormat | None) -> Iterator[Source]:
    """The batches of JSON texts of ``ctx``: lines of a newline-delimited file, elements of a
    large array or envelope (streamed only when ``fmt`` is given: it counts their spans), or the
    one document. Element batches come with ``base`` NULL (see :func:`_number_spans`)."""
    if _is_ndjson(ctx.path):
        yield from _line_sources(ctx)
        return
    head = fio.read_head(ctx.path, 1 << 16)
    envelope = array_start(head, envelope=True)
    start = envelope or array_start(head, envelope=False)
    if fmt is not None and start is not None and not ctx.options.get("whole_documents", False):
        for elements in _element_batches(ctx, fmt, start, envelope is not None):
            yield Source(elements, "element")
    else:
        yield from _document_source(ctx)


def json_sources(ctx: LoadContext, fmt: SpanFormat | None) -> Iterator[str]:
    """Registered source tables ``(line, raw, doc_key, base, what)`` of the JSON documents of ``ctx``.

    ``line``: 1-based line of a newline-delimited file, else NULL. ``doc_key``: groups the rows
    of one document. ``base``: document-wide index of the first span of the row's document
    (NULL for newline-delimited files). ``what``: how reject reasons name the document. Large
    arrays and envelopes are streamed only when ``fmt`` is given (it counts their spans). The
    caller unregisters each table after use.
    """
    base = 0
    for src in sources(ctx, fmt):
        table = src.table
        if src.mode == "element":
            assert fmt is not None
            numbered, base = _number_spans(ctx, fmt, table, base, None)
            table = _general_elements(table, numbered)
        yield ctx.register(table)


def read_ahead(fmt: SpanFormat) -> Callable[..., RecordingContext | None]:
    """The format's ``read_ahead`` (:mod:`.read_ahead`): a file's sources, each with what the
    fast path took from it, recorded in order with the rejects and warnings of reading it;
    None when the fast path is off or the file holds more than
    :data:`~.read_ahead.READ_AHEAD_TEXT` of JSON text (it then streams and pipelines within
    itself)."""

    def run(path: str, format: str, strict: bool, options: dict, scratch: duckdb.DuckDBPyConnection) -> RecordingContext | None:
        fast = fmt.fast
        if fast is None or not options.get(fmt.fast_option, True):
            return None
        rec = RecordingContext(path, format, scratch, strict=strict, options=dict(options))
        return rec.record("source", sources(rec, fmt), lambda src: src.table.column("raw").nbytes,
                          lambda src: fast(scratch, src.table, src.mode))

    return run


def _with_fast(ctx: LoadContext, fmt: SpanFormat) -> Iterator[tuple[Source, FastBatch | None]]:
    """The sources of ``ctx``, each with what the format's fast path took from it (None when
    the fast path is off), the next source converted while the caller stores the current one
    (:func:`~forensics.loaders.core.arrow_spans.prepared_ahead`); or, for a file read ahead (``ctx.ahead``, see
    :func:`read_ahead`), its recorded sources, rejects and warnings replayed in order."""
    recorded = take_recorded(ctx)
    if recorded is not None:
        yield from recorded.replay(ctx)
        return
    fast = fmt.fast if fmt.fast is not None and ctx.options.get(fmt.fast_option, True) else None
    if fast is None:
        for src in sources(ctx, fmt):
            yield src, None
        return
    yield from prepared_ahead(sources(ctx, fmt), lambda con, src: fast(con, src.table, src.mode), f"{ctx.format}-fast")


def load_spans(ctx: LoadContext, fmt: SpanFormat) -> None:
    """Emit the spans (and document-level rejects) of every JSON source of ``ctx``: the texts
    the format's fast path takes are inserted from Arrow, the others go through its SQL."""
    base = 0
    for src, done in _with_fast(ctx, fmt):
        table = numbered = src.table
        if src.mode == "element":
            counts = None if done is None else np.where(done.handled, done.counts, -1)
            numbered, base = _number_spans(ctx, fmt, table, base, counts)
        if done is not None:
            done.insert(ctx, numbered)
            handled, done = done.handled, None  # the rows are stored: free them
            if handled.all():
                continue
            keep = pa.array(~handled)
            table, numbered = table.filter(keep), numbered.filter(keep)
        if src.mode == "element":
            table = _general_elements(table, numbered)
        name = ctx.register(table)
        try:
            ctx.emit("spans", with_document_rejects(fmt.spans_sql(name), name, fmt), [fmt.expected, fmt.expected])
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
    """Query: the valid JSON documents of ``src`` with their position columns and ``doc JSON``."""
    return f"SELECT line, raw, doc_key, base, what, raw::JSON AS doc FROM {src} WHERE json_valid(raw)"


def span_offset_sql(*order: str) -> str:
    """``source_offset`` of a span: its document's ``base`` plus its rank in the document."""
    return f"base + row_number() OVER (PARTITION BY doc_key ORDER BY {', '.join(order)}) - 1"


def bad_documents_sql(src: str, fmt: SpanFormat) -> str:
    """Reject rows for documents that are not JSON or not of a shape ``fmt`` reads."""
    return f"""
SELECT line AS source_line, base AS source_offset, left(raw, 1000) AS _raw, 'invalid_json' AS _reject_code,
       what || ' is not a complete JSON value (expected ' || ? || ')' AS _reject_reason
FROM {src} WHERE NOT json_valid(raw)
UNION ALL
SELECT line AS source_line, base AS source_offset, left(raw, 1000) AS _raw, 'wrong_shape' AS _reject_code,
       what || ' is valid JSON but not ' || ? || '; found a JSON ' ||
       CASE WHEN json_type(shown) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN 'number' ELSE lower(json_type(shown)) END ||
       coalesce(' with keys ' || nullif(array_to_string(list_slice(json_keys(shown), 1, 8), ', '), ''), '') AS _reject_reason
FROM (SELECT *, CASE WHEN starts_with(what, 'array element') THEN doc -> '$[0]' ELSE doc END AS shown
      FROM ({documents_sql(src)}) WHERE NOT coalesce(({fmt.recognised}), false))  -- NULL (a missing path) is not recognised
"""


def with_document_rejects(spans_sql: str, src: str, fmt: SpanFormat) -> str:
    """``spans_sql`` (finalized span rows) plus the reject rows of :func:`bad_documents_sql`."""
    return f"""
{spans_sql}
UNION ALL BY NAME
SELECT * FROM ({bad_documents_sql(src, fmt)})
"""


def head_json(head: Head) -> object:
    """The head's first JSON value (see :attr:`Head.first_json`); a head that is not valid UTF-8
    (a stray Latin-1 byte in one span) is decoded with replacement characters first, so one bad
    record does not hide the format."""
    if head.text is not None:
        return head.first_json
    if head.data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):  # binary (protobuf, Parquet): no JSON
        return None
    text = head.data.decode("utf-8", "replace")
    lines = [line for line in text.split("\n") if line.strip()]
    for candidate in (lines[0] if lines else None, text if head.complete else None):
        if candidate:
            try:
                return orjson.loads(candidate)
            except orjson.JSONDecodeError:
                continue
    return None


def large_document_has(head: Head, *patterns: str, absent: tuple[str, ...] = ()) -> bool:
    """For a JSON document too large to parse from the head: True when the head starts like JSON,
    matches every regex in ``patterns`` and none in ``absent``."""
    text = head.text if head.text is not None else head.data.decode("utf-8", "replace")
    if head_json(head) is not None or text.lstrip("\ufeff \t\r\n")[:1] not in ("{", "["):
        return False
    return all(re.search(p, text) for p in patterns) and not any(re.search(p, text) for p in absent)
