"""Jaeger query API v3 (``/api/v3/traces``, Jaeger v2): OTLP traces wrapped as
``{"result": {"resourceSpans": [...]}}``, one response or a stream of them (one per line, as
grpc-gateway writes a server stream). Errors come as ``{"error": {"grpcCode", "message"}}``.

The ``result`` objects are OTLP ExportTraceServiceRequest JSON, so they are handed to the OTLP
mapping (:mod:`forensics.loaders.traces.otlp.requests`): ids hex or base64, times as strings, kinds as numbers.
Error responses become load warnings (``trace not found`` is not a record); lines that are
neither a result nor an error are rejected by the OTLP mapping as not an OTLP request.
"""
from __future__ import annotations

from forensics._db import query_arrow
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head

from ..jaeger_zipkin.common import head_json, json_sources
from ..otlp.requests import emit_requests, install_macros


def sniff_v3(head: Head) -> float:
    """0.95 for a ``{"result": {"resourceSpans": ...}}`` response; 0.6 for an error response."""
    doc = head_json(head)
    if not isinstance(doc, dict):
        return 0.0
    result = doc.get("result")
    if isinstance(result, dict) and "resourceSpans" in result:
        return 0.95
    error = doc.get("error")
    return 0.6 if isinstance(error, dict) and {"grpcCode", "message"} <= error.keys() and len(doc) == 1 else 0.0


def load_v3(ctx: LoadContext) -> None:
    """Load a Jaeger API v3 response file (see the module docstring)."""
    install_macros(ctx)
    for src in json_sources(ctx, None):
        try:
            parsed = (f"SELECT line, doc_key, raw, json_type(j, '$.result') = 'OBJECT' AS is_result, "
                      f"json_type(j, '$.error') = 'OBJECT' AND json_type(j, '$.result') IS NULL AS is_error, j "
                      f"FROM (SELECT *, CASE WHEN json_valid(raw) THEN raw::JSON END AS j FROM {src})")
            errors = query_arrow(ctx.con, f"""
                SELECT line, json_extract_string(j, '$.error.message') AS message
                FROM ({parsed}) WHERE is_error ORDER BY doc_key LIMIT 20""").to_pylist()
            for e in errors:
                where = "document" if e["line"] is None else f"line {e['line']}"
                ctx.warn(f"{where}: the Jaeger query API returned an error: {e['message']}")
            requests = query_arrow(ctx.con, f"""
                SELECT line, CASE WHEN line IS NULL THEN doc_key END AS doc,
                       CASE WHEN is_result THEN json_extract(j, '$.result')::VARCHAR ELSE raw END AS raw
                FROM ({parsed}) WHERE is_error IS NOT TRUE ORDER BY doc_key""")
        finally:
            ctx.unregister(src)
        if requests.num_rows:
            name = ctx.register(requests)
            try:
                emit_requests(ctx, name, doc_mode=requests.column("line").null_count == requests.num_rows)
            finally:
                ctx.unregister(name)
