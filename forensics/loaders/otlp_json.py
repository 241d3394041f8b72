"""OTLP/JSON: traces, logs and metrics as the OpenTelemetry Collector ``file`` exporter writes them.

Supported shapes
----------------
- One ExportTraceServiceRequest / ExportLogsServiceRequest / ExportMetricsServiceRequest per
  line, signals interleaved in one file (collector ``file`` exporter, ``otlpjson`` dumps).
  Rows carry ``source_line``; a line that is not JSON, or JSON that is not a request, is one
  reject with its line number.
- A single request document, possibly pretty-printed, several pretty-printed documents one
  after the other (``jq . export.json``), or a JSON array of requests (``jq -s``). Rows carry ``source_offset``: the 0-based index of
  the record (span, log record, metric data point) among the file's records of its signal.

Quirks handled: ids as lowercase hex, UPPERCASE hex or base64 (protobuf-JSON), ``intValue``
and times as strings or numbers, ``kind``/``status.code``/``severityNumber``/
``aggregationTemporality`` as integers or enum names, ``parentSpanId: ""`` and all-zero parents
for roots, empty or all-zero log trace ids as NULL, pre-1.0 ``instrumentationLibrary*`` keys.
Canonical collector trace lines take an Arrow fast path (``_otlp_arrow``; ``otlp_fast=False``
turns it off) that yields the same rows. The mapping itself lives in ``_otlp_sql.py``/``_otlp_metrics.py`` (shared with ``otlp_proto``).
"""
from __future__ import annotations

import json
import re

import pyarrow as pa

from .._db import query_arrow, scalar
from ..errors import Reason
from ._otlp_arrow import fast_blocks
from ._otlp_requests import emit_requests, install_macros, requests_table
from .context import LoadContext
from .registry import register_format
from .sniff import Head, head_of

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
            value = json.loads(line)
        except ValueError:
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
    first = next((line.strip() for line in (head.text or "").split("\n") if line.strip()), "")
    try:
        return isinstance(json.loads(first), list)  # a one-line JSON array of requests
    except ValueError:
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


@register_format("otlp_json", signal="mixed",
                 description="OTLP/JSON traces, logs and metrics (collector file exporter lines or one document)",
                 sniff=_sniff, extensions=(".json", ".jsonl", ".ndjson", ".otlp"))
def load_otlp_json(ctx: LoadContext) -> None:
    """Load an OTLP/JSON file (see the module docstring for the supported shapes)."""
    install_macros(ctx)
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
