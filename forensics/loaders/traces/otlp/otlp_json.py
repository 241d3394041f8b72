"""OTLP/JSON: traces, logs and metrics as the OpenTelemetry Collector ``file`` exporter writes them.

Supported shapes
----------------
- One ExportTraceServiceRequest / ExportLogsServiceRequest / ExportMetricsServiceRequest per
  line, signals interleaved in one file (collector ``file`` exporter, ``otlpjson`` dumps).
  Rows carry ``source_line``; a line that is not JSON, or JSON that is not a request, is one
  reject with its line number.
- A single request document, possibly pretty-printed, several pretty-printed documents one
  after the other (``jq . export.json``), or a JSON array of requests (``jq -s``). Rows carry
  ``source_offset``: the 0-based index of the record (span, log record, metric data point)
  among the file's records of its signal. These files are streamed in bounded memory
  (``otlp.document_stream``): the first invalid JSON (or non-UTF-8 text, or the end of a
  broken compressed stream) is one reject with the position Python's ``json`` gives for the
  whole file, and the records before it are loaded, those of its own request included.
  ``whole_documents=True`` reads the file whole instead (the reference: same rows and rejects,
  except that it loads nothing of the request, or ``jq -s`` array, that holds the error).

Quirks handled: ids as lowercase hex, UPPERCASE hex or base64 (protobuf-JSON), ``intValue``
and times as strings or numbers, ``kind``/``status.code``/``severityNumber``/
``aggregationTemporality`` as integers or enum names, ``parentSpanId: ""`` and all-zero parents
for roots, empty or all-zero log trace ids as NULL, pre-1.0 ``instrumentationLibrary*`` keys.
Canonical collector trace lines take an Arrow fast path (``otlp.arrow``; ``otlp_fast=False``
turns it off) that yields the same rows. The mapping itself lives in ``traces/otlp/sql.py``/``traces/otlp/metrics.py`` (shared with ``otlp_proto``).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import orjson

from forensics._db import query_arrow, scalar
from forensics.errors import Reason
from forensics.loaders.core import io as fio
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head, head_of
from forensics.loaders.core.json_stream import unescaped_quotes
from forensics.loaders.core.registry import register_format

from .arrow import fast_blocks, read_ahead
from .document_stream import DocumentWalker, Elements, Problem, Whole
from .requests import emit_files, emit_requests, files_table, install_macros, lines_table, requests_table

_REQUEST_START = re.compile(r'\[?\s*\{\s*"(resourceSpans|resourceLogs|resourceMetrics)"\s*:')
_KEYS = ("resourceSpans", "resourceLogs", "resourceMetrics")
_WHITESPACE = re.compile(r"\s*")
_SNIFF_LINES = 20


def _is_request(value: object) -> bool:
    if isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, dict) and any(k in value for k in _KEYS)


def _sniff(head: Head) -> float:
    """0.95 when the first JSON record is an OTLP request (a top-level resource* key), 0.9 when
    the file starts like one (pretty-printed, or a first line longer than the head), else 0.

    The first of the first 20 lines that is JSON decides, so a corrupt first line of a
    collector file still sniffs as OTLP (and becomes a reject).
    """
    first = head.first_json
    if first is not None:
        return 0.95 if _is_request(first) else 0.0
    if _REQUEST_START.match(head.stripped):
        return 0.9
    for line in head.lines[1:_SNIFF_LINES]:
        try:
            value = orjson.loads(line)  # not json.loads: a line nested ~400 deep is a RecursionError there
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, (dict, list)):
            return 0.95 if _is_request(value) else 0.0
    return 0.0


def _is_document(head: Head) -> bool:
    """True when the file starts with a pretty-printed (multi-line) JSON value.

    A first line that opens an object or array without closing it (``{``, ``{ "resourceSpans": [``)
    means a document; anything else (a complete line, or a garbage first line of a JSON-lines
    file) means one request per line.
    """
    first = next((line.strip().lstrip("\ufeff") for line in (head.text or "").split("\n") if line.strip()), "")
    try:
        return isinstance(orjson.loads(first), list)  # a one-line JSON array of requests (orjson: depth-bounded)
    except orjson.JSONDecodeError:
        pass
    if "\n" not in (head.text or "").strip():  # one (possibly huge) line: line mode
        return False
    return first.startswith(("{", "[")) and first.endswith(("{", "[", ","))


def _split_documents(ctx: LoadContext, text: str) -> list[str]:
    """The JSON values of ``text`` (one, or several concatenated); a tail that does not parse
    is rejected with its character offset."""
    if scalar(ctx.con, "SELECT json_valid(?)", [text]):
        return _array_elements(ctx, text) if text.lstrip().startswith("[") else [text]
    decoder = json.JSONDecoder()
    docs: list[str] = []
    pos = _WHITESPACE.match(text, 0).end()
    while pos < len(text):
        try:
            _, end = decoder.raw_decode(text, pos)
        except RecursionError:
            ctx.reject(Reason.TOO_DEEP, f"JSON document at character {pos} is nested deeper than Python can parse; "
                       "it was not read", offset=pos, raw=text[pos: pos + 1000])
            break
        except json.JSONDecodeError as exc:
            ctx.reject(Reason.INVALID_JSON, f"not valid JSON at character {exc.pos} (line {exc.lineno}, column "
                       f"{exc.colno}): {exc.msg}; expected an OTLP ExportServiceRequest document",
                       line=exc.lineno, offset=exc.pos, raw=text[pos: pos + 1000])
            break
        docs.append(text[pos:end])
        pos = _WHITESPACE.match(text, end).end()
    return docs


def _array_elements(ctx: LoadContext, text: str) -> list[str]:
    """The elements of a JSON array of requests (``jq -s`` output), as JSON texts."""
    rows = query_arrow(ctx.con, "SELECT unnest(json_extract(?::JSON, '$[*]'))::VARCHAR AS doc", [text])
    return rows.column("doc").to_pylist() if rows.num_rows else []


def _read_ahead(path: str, format: str, strict: bool, options: dict, scratch: duckdb.DuckDBPyConnection) -> object | None:
    """Collector lines are read ahead through the fast path (:func:`~forensics.loaders.traces.otlp.arrow.read_ahead`);
    documents are not."""
    if not options.get("otlp_fast", True) or _is_document(head_of(path)):
        return None
    return read_ahead(path, format, strict, options, scratch)


#: largest file (text bytes, estimated) loaded in a batch with others (see :func:`load_otlp_json_files`)
BATCH_FILE_BYTES = 1 << 20


def _batchable(path: str) -> bool:
    """Small files (an OTLP/HTTP request body with JSON encoding is one line) go to
    :func:`load_otlp_json_files`; larger ones keep their own load, read ahead on the fast path."""
    size = fio.estimated_text_bytes(path)
    return size is not None and size <= BATCH_FILE_BYTES


def load_otlp_json_files(ctxs: list[LoadContext]) -> None:
    """Load several small OTLP/JSON files at once: one SQL mapping (the general path, whose rows
    the fast path reproduces) for all the request lines, and another for all the documents;
    each file's rows, positions and rejects as if it were loaded alone. A document that is not
    valid UTF-8 JSON is loaded on its own (its rejects come from the stream)."""
    lines: list[tuple[LoadContext, pa.Table]] = []
    docs: list[tuple[LoadContext, list[str]]] = []
    for ctx in ctxs:
        if not _is_document(head_of(ctx.path)):
            read = list(ctx.line_batches())
            lines.append((ctx, pa.concat_tables(read) if read else pa.table({"line": pa.array([], pa.int64()),
                                                                              "raw": pa.array([], pa.string())})))
            continue
        text = _valid_document(ctx)
        if text is None:
            load_otlp_json(ctx)
        else:
            docs.append((ctx, _split_documents(ctx, text)))
    install_macros(ctxs[0])
    if lines:
        _emit_files([c for c, _ in lines], lines_table([t for _, t in lines]), doc_mode=False)
    if docs:
        _emit_files([c for c, _ in docs], files_table([d for _, d in docs]), doc_mode=True)


def _valid_document(ctx: LoadContext) -> str | None:
    """The file's text when it is whole, UTF-8 and valid JSON (else None: nothing rejected)."""
    try:
        text = fio.read_all(ctx.path, BATCH_FILE_BYTES * 4).decode("utf-8-sig")
    except (fio.StreamTruncated, fio.RecordTooLarge, UnicodeDecodeError):
        return None
    return text if scalar(ctx.con, "SELECT json_valid(?)", [text]) else None


def _emit_files(ctxs: list[LoadContext], table: pa.Table, *, doc_mode: bool) -> None:
    if table.num_rows:
        name = ctxs[0].register(table)
        try:
            emit_files(ctxs, name, doc_mode=doc_mode)
        finally:
            ctxs[0].unregister(name)


@register_format("otlp_json", signal="mixed",
                 description="OTLP/JSON traces, logs and metrics (collector file exporter lines or one document)",
                 sniff=_sniff, extensions=(".json", ".jsonl", ".ndjson", ".otlp"), read_ahead=_read_ahead,
                 load_batch=load_otlp_json_files, batchable=_batchable)
def load_otlp_json(ctx: LoadContext) -> None:
    """Load an OTLP/JSON file (see the module docstring for the supported shapes)."""
    install_macros(ctx)
    if _is_document(head_of(ctx.path)) and not ctx.options.get("whole_documents", False):
        _load_documents(ctx)
        return
    if _is_document(head_of(ctx.path)):
        text = ctx.read_document()
        if text is None:
            return
        docs = _split_documents(ctx, text)
        if docs:
            _emit(ctx, requests_table(docs), doc_mode=True)
        return
    fast = ctx.options.get("otlp_fast", True)
    for lines in fast_blocks(ctx) if fast else ctx.line_batches():
        if lines.num_rows:
            table = pa.table({"line": lines["line"], "doc": pa.nulls(lines.num_rows, pa.int64()), "raw": lines["raw"]})
            _emit(ctx, table, doc_mode=False)


def _emit(ctx: LoadContext, table: pa.Table, *, doc_mode: bool) -> None:
    name = ctx.register(table)
    emit_requests(ctx, name, doc_mode=doc_mode)
    ctx.unregister(name)


def _load_documents(ctx: LoadContext) -> None:
    """Document mode in bounded memory: the resource elements of each request are read a
    quarter of ``batch_bytes`` (default 16 MiB) of text at a time; once that much of them is
    pending they are checked with DuckDB's parser (all at once), wrapped back into
    requests of about 1 MiB without their insignificant whitespace (pretty-printing is about
    half of the text) and emitted, with record offsets carried across emits (see
    ``otlp.document_stream``). Memory does not depend on the file's size: about 250 MB above
    what DuckDB holds for the rows not yet written, as for collector lines (see the module
    docstring of ``otlp.document_stream`` for one huge resource)."""
    batch_bytes = ctx.options.get("batch_bytes", 16 << 20)
    pending = _Pending(ctx, batch_bytes // 4)
    problem: Problem | None = None
    try:
        with ctx.open() as fh:
            for event in DocumentWalker(ctx.path, fh, batch_bytes // 4).events():
                if isinstance(event, Problem):  # an invalid element pending comes first
                    problem = pending.flush() or event
                    break
                pending.add(event)
                if pending.nbytes >= pending.limit and (problem := pending.flush()):
                    break
            else:
                problem = pending.flush()
    except fio.StreamTruncated as exc:
        if not (problem := pending.flush()):
            ctx.reject(Reason.TRUNCATED, f"compressed stream ends early ({exc.cause})", offset=exc.offset)
    if problem is not None:
        ctx.reject(problem.code, problem.reason, line=problem.line, offset=problem.offset, raw=problem.raw)


class _Pending:
    """Walk events waiting to be emitted together (``limit`` bytes of text), and each
    signal's records emitted so far."""

    def __init__(self, ctx: LoadContext, limit: int) -> None:
        self.ctx, self.limit = ctx, limit
        self.events: list[Elements | Whole] = []
        self.nbytes = 0
        self.bases: dict[str, int] = {}
        self._heads: dict[int, str] = {}  # of the documents being emitted
        self._pieces = itertools.count()

    def add(self, event: Elements | Whole) -> None:
        self.events.append(event)
        self.nbytes += event.table.nbytes if isinstance(event, Elements) else len(event.text)

    def flush(self) -> Problem | None:
        """Emit the pending events up to the first element DuckDB's parser rejects, and return
        that element's Problem (or None)."""
        events, self.events, self.nbytes = self.events, [], 0
        bad = _first_invalid(self.ctx, events)
        problem = None
        if bad is not None:
            i, element, offset = bad
            problem = events[i].locate(element, offset)
            table = events[i].table
            events = events[:i] + [dataclasses.replace(events[i], table=table.filter(pc.less(table["element"], element)))]
        elements = [e for e in events if isinstance(e, Elements) and e.table.num_rows]
        wholes = [e for e in events if isinstance(e, Whole)]
        docs, texts = _requests(elements) if elements else ([], pa.array([], pa.large_string()))
        for event in wholes:  # a jq -s element as the whole-file path has it: re-serialized by DuckDB
            docs.append(event.doc)
            texts = pa.concat_arrays([texts, pa.array([event.text if event.head is not None else _compact(
                self.ctx, event.text)], pa.large_string())])
        if docs:
            self._remember_heads(elements + wholes, docs, texts)
            self._emit(docs, texts)
        return problem

    def _remember_heads(self, events: list, docs: list[int], texts: pa.Array) -> None:
        """The first 1000 characters of each document (for its own rejects): as read, or inside
        a jq -s array as DuckDB re-serializes it (the whole-file path's view), for which the
        start of its first request text stands."""
        firsts = dict(zip(reversed(docs), range(len(docs) - 1, -1, -1)))
        for event in events:
            if event.doc not in self._heads:
                self._heads[event.doc] = (event.head if event.head is not None
                                          else texts[firsts[event.doc]].as_py()[:1000])

    def _emit(self, docs: list[int], texts: pa.Array) -> None:
        table = pa.table({  # line: -1 - document (its rejects' offset); doc: piece (orders the records)
            "line": pa.array([-1 - d for d in docs], pa.int64()),
            "doc": pa.array([next(self._pieces) for _ in docs], pa.int64()),
            "raw": texts,
            "head": pa.array([self._heads[d] for d in docs], pa.string()),
        })
        last = max(docs)
        self._heads = {last: self._heads[last]}  # the last document may go on
        name = self.ctx.register(table)
        del table
        emit_requests(self.ctx, name, doc_mode=True, bases=self.bases)
        self.ctx.unregister(name)


def _requests(batches: list[Elements], piece_bytes: int = 1 << 20) -> tuple[list[int], pa.Array]:
    """Batches of elements as request texts ``{"<key>":[e1,e2,...]}`` of about ``piece_bytes``
    each (DuckDB parses many small texts in less memory than one large one), without the
    whitespace outside strings; and the document of each."""
    raw = pa.concat_arrays([b.table.column("raw").combine_chunks().cast(pa.large_string()) for b in batches])
    lengths = pc.binary_length(raw).to_numpy(zero_copy_only=False)
    batch = np.repeat(np.arange(len(batches)), [b.table.num_rows for b in batches])
    new_batch = np.diff(batch, prepend=-1) != 0
    size = np.cumsum(lengths)
    before = size - lengths  # bytes before each element
    group = (size - np.maximum.accumulate(np.where(new_batch, before, 0)) - 1) // piece_bytes  # within its batch
    starts = np.flatnonzero(new_batch | (np.diff(group, prepend=-1) != 0))
    lists = pa.LargeListArray.from_arrays(pa.array(np.append(starts, len(raw)), pa.int64()), raw)
    prefixes = pa.array([f'{{"{batches[i].key}":[' for i in batch[starts]], pa.large_string())
    texts = pc.binary_join_element_wise(prefixes, pc.binary_join(lists, pa.scalar(",", pa.large_string())),
                                        pa.scalar("]}", pa.large_string()), pa.scalar("", pa.large_string()))
    return [batches[i].doc for i in batch[starts]], _squeezed(texts)


_JSON_SPACE = np.zeros(256, dtype=bool)
_JSON_SPACE[[9, 10, 13, 32]] = True


def _squeezed(texts: pa.Array) -> pa.Array:
    """Valid JSON ``texts`` without the whitespace outside their strings (pretty-printing is
    about half of a document: DuckDB then parses half as much). Each text has an even number
    of quotes, so one pass over all of them tells inside from outside."""
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset: texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    quotes = np.zeros(len(data), dtype=np.uint8)
    quotes[unescaped_quotes(data)] = 1
    inside = np.bitwise_xor.accumulate(quotes, out=quotes)  # 1 inside a string (and on its opening quote)
    keep = ~_JSON_SPACE[data] | inside.view(bool)
    kept = np.add.reduceat(keep, offsets[:-1] - offsets[0], dtype=np.int64)
    new_offsets = np.concatenate(([0], np.cumsum(kept))).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(new_offsets), pa.py_buffer(data[keep].tobytes()))


def _compact(ctx: LoadContext, text: str) -> str:
    """``text`` as DuckDB re-serializes JSON (the whole-file path's view of a jq -s element)."""
    return scalar(ctx.con, "SELECT CASE WHEN json_valid($t) THEN json($t)::VARCHAR ELSE $t END", {"t": text})


def _first_invalid(ctx: LoadContext, events: list) -> tuple[int, int, int] | None:
    """(event index, element, offset) of the first element of the ``Elements`` among ``events``
    that DuckDB's JSON parser rejects, or None."""
    tables = [e.table.select(["element", "offset", "raw"]).append_column(
        "event", pa.array(np.full(e.table.num_rows, i, np.int64))) for i, e in enumerate(events) if isinstance(e, Elements)]
    if not tables:
        return None
    rel = ctx.con.from_arrow(pa.concat_tables(tables))
    got = rel.query("_elements", "SELECT event, element, \"offset\" FROM _elements WHERE NOT json_valid(raw) "
                                 "ORDER BY event, element LIMIT 1").to_arrow_table().to_pylist()
    return (got[0]["event"], got[0]["element"], got[0]["offset"]) if got else None
