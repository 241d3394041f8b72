"""File-wide fix-ups of the Zipkin loader, run over all the rows a file loaded (so spans in
different streamed batches or lines still meet): partial flushes merged into their span, shared
client/server halves and mixed 64/128-bit trace ids of one trace.
"""
from __future__ import annotations

import uuid

from forensics import schema
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


#: how a partial flush's column combines with its span's (``s``: the span, ``h``: the flush);
#: any other column: the span's value, else the flush's
_MERGED = {
    "end_time": "coalesce(s.end_time, s.start_time + to_microseconds(CAST(round(h.duration_ms * 1000) AS BIGINT)))",
    "name": "CASE WHEN s.name IS NULL OR s.name IN ('', 'unknown') THEN h.name ELSE s.name END",
    "kind": "CASE WHEN s.kind = 'unspecified' THEN h.kind ELSE s.kind END",
    "status": "CASE WHEN 'error' IN (s.status, h.status) THEN 'error' WHEN s.status = 'unset' THEN h.status ELSE s.status END",
    "attributes": "map_concat(coalesce(h.attributes, MAP {}), coalesce(s.attributes, MAP {}))",
    "resource_attributes": "map_concat(coalesce(h.resource_attributes, MAP {}), coalesce(s.resource_attributes, MAP {}))",
    "events": ("CASE WHEN s.events IS NULL THEN h.events WHEN h.events IS NULL THEN s.events "
               "ELSE to_json(list_concat(CAST(s.events AS JSON[]), CAST(h.events AS JSON[]))) END"),
}
_KEPT = ("trace_id", "span_id", "start_time", "format", "source_file", "source_line", "source_offset")


def _merge_partial_flushes(ctx: LoadContext) -> None:
    """Merge each held partial flush (a span without ``timestamp``, see :mod:`.sql`) into the
    file's span with its trace id and span id (same side: equal kinds, or one unspecified; same
    service, or one unknown), as Zipkin merges the halves a tracer flushes at different times:
    duration, end, tags, annotations, name and error status fill in what the span lacks. A flush
    with no such span is rejected (``bad_time``). Merged flushes count as merged records."""
    held = ctx.held.get("spans")
    if held is None:
        return
    matches = f"_zipkin_merge_{uuid.uuid4().hex}"
    try:
        run(ctx.con, f"""
            CREATE TEMP TABLE {matches} AS
            SELECT hid, sid, row_number() OVER (PARTITION BY sid ORDER BY hid) AS round FROM (
              SELECT h.rowid AS hid, s.rowid AS sid,
                row_number() OVER (PARTITION BY h.rowid ORDER BY s.kind = h.kind DESC,
                                   s.service IS NOT DISTINCT FROM h.service DESC, s.rowid) AS pick
              FROM {held} h JOIN spans s ON {_MINE} AND s.trace_id = h.trace_id AND s.span_id = h.span_id
                AND (s.kind = h.kind OR 'unspecified' IN (s.kind, h.kind))
                AND (s.service = h.service OR s.service IS NULL OR h.service IS NULL))
            WHERE pick = 1""".replace("spans.", "s."), [ctx.path, ctx.format])
        rounds = one(ctx.con, f"SELECT max(round), count(*) FROM {matches}")
        have = {r[0] for r in run(ctx.con, "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                  [held])}
        sets = ", ".join(f'"{c}" = {_MERGED.get(c, f"coalesce(s.{c}, h.{c})")}'
                         for c in schema.column_names("spans") if c not in _KEPT and c in have)
        for r in range(1, (rounds[0] or 0) + 1):
            run(ctx.con, f"""
                UPDATE spans SET {sets.replace("s.", "spans.")}
                FROM (SELECT h.*, m.sid FROM {held} h JOIN {matches} m ON h.rowid = m.hid WHERE m.round = ?) h
                WHERE spans.rowid = h.sid""", [r])
        run(ctx.con, f"DELETE FROM {held} WHERE rowid IN (SELECT hid FROM {matches})")
        ctx.count_merged("spans", int(rounds[1]))
    finally:
        run(ctx.con, f"DROP TABLE IF EXISTS {matches}")
    ctx.reject_held("spans")


def join_file_rows(ctx: LoadContext) -> None:
    """Run the fix-ups over the rows ``ctx`` loaded: partial flushes first (they carry the ids
    as written), then trace ids (halves may differ in width), then shared halves."""
    _merge_partial_flushes(ctx)
    _widen_trace_ids(ctx)
    _join_shared_halves(ctx)
