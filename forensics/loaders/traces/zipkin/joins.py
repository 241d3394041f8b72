"""File-wide fix-ups of the Zipkin loader, run over all the rows a file loaded (so spans in
different streamed batches or lines still meet): shared client/server halves and mixed 64/128-bit
trace ids of one trace.
"""
from __future__ import annotations

import uuid

from forensics._db import one, run
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.semconv import SPAN_ID_HEX

#: XOR mask deriving the CLIENT half's span id from a shared span id
CLIENT_ID_MASK = 0x8000000000000000

_MINE = "spans.source_file = ? AND spans.format = ?"
_ZERO_HIGH = "'0000000000000000'"


def _derived_sql(span_id: str) -> str:
    """The CLIENT half's id: ``span_id`` (16 hex digits) XOR :data:`CLIENT_ID_MASK`."""
    return (f"lpad(lower(to_hex(xor(CAST('0x' || {span_id} AS UBIGINT), CAST('{CLIENT_ID_MASK:#x}' AS UBIGINT)))), "
            f"{SPAN_ID_HEX}, '0')")


def _join_shared_halves(ctx: LoadContext) -> None:
    """For every (trace, span id) of the file's rows with both a server and a client row, give
    the client row the derived id (recording the shared one in ``zipkin.original_span_id``)
    and point the server row at it."""
    groups = f"_zipkin_shared_{uuid.uuid4().hex}"
    run(ctx.con, f"CREATE TEMP TABLE {groups} AS SELECT trace_id, span_id FROM spans WHERE {_MINE} "
                 "GROUP BY ALL HAVING bool_or(kind = 'server') AND bool_or(kind = 'client')", [ctx.path, ctx.format])
    try:
        if not one(ctx.con, f"SELECT count(*) FROM {groups}")[0]:  # usually: skip the UPDATEs' scans
            return
        same = f"spans.trace_id = g.trace_id AND spans.span_id = g.span_id AND {_MINE}"
        run(ctx.con, f"UPDATE spans SET parent_span_id = {_derived_sql('g.span_id')} FROM {groups} g "
                     f"WHERE {same} AND spans.kind = 'server'", [ctx.path, ctx.format])
        run(ctx.con, f"UPDATE spans SET span_id = {_derived_sql('g.span_id')}, "
                     "attributes = map_concat(spans.attributes, MAP {'zipkin.original_span_id': g.span_id}) "
                     f"FROM {groups} g WHERE {same} AND spans.kind = 'client'", [ctx.path, ctx.format])
    finally:
        ctx.unregister(groups)


def _widen_trace_ids(ctx: LoadContext) -> None:
    """Zipkin joins 64-bit and 128-bit trace ids by their low 64 bits (``STRICT_TRACE_ID=false``,
    its default): a span whose trace id has a zero high half takes the 128-bit id of the file's
    spans with the same low half, when exactly one such id exists, and keeps the id it had in
    attribute ``zipkin.original_trace_id``."""
    if not one(ctx.con, f"SELECT EXISTS (SELECT 1 FROM spans WHERE {_MINE} AND starts_with(trace_id, {_ZERO_HIGH}))",
               [ctx.path, ctx.format])[0]:
        return
    run(ctx.con, f"""
        UPDATE spans SET trace_id = w.wide,
               attributes = map_concat(spans.attributes, MAP {{'zipkin.original_trace_id': spans.trace_id}})
        FROM (SELECT right(trace_id, 16) AS low, min(trace_id) AS wide FROM spans
              WHERE {_MINE} AND NOT starts_with(trace_id, {_ZERO_HIGH})
              GROUP BY 1 HAVING count(DISTINCT trace_id) = 1) w
        WHERE {_MINE} AND starts_with(spans.trace_id, {_ZERO_HIGH}) AND right(spans.trace_id, 16) = w.low""",
        [ctx.path, ctx.format, ctx.path, ctx.format])


def join_file_rows(ctx: LoadContext) -> None:
    """Run the fix-ups over the rows ``ctx`` loaded (trace ids first: halves may differ in width)."""
    _widen_trace_ids(ctx)
    _join_shared_halves(ctx)
