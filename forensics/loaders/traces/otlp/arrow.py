"""Arrow fast path for OTLP/JSON trace lines shaped as the Collector ``file`` exporter writes them.

The general path (``otlp.sql``) splits the file into lines, parses every line with DuckDB's
``json_transform`` into VARCHAR structs and builds attribute MAPs with per-entry lambdas. For the
canonical shape — one ``{"resourceSpans": ...}`` request per line, lowercase hex ids, ``intValue``
and times as strings, ``kind``/``status.code`` as integers — this module instead

1. hands a whole block of lines (bytes, no splitting) to ``pyarrow.json`` with an explicit,
   strictly typed schema (multi-threaded),
2. flattens resource → scope → span with ``list_parent_indices``/``take`` (no per-span Python),
3. computes every canonical column in Arrow (:mod:`forensics.loaders.core.arrow_spans`): MAPs from the flattened
   key/value lists, promoted columns, ids, times, kind and status; only span events and links are
   rendered to JSON by DuckDB, for the spans that have them,
4. stores the rows with :func:`~forensics.loaders.core.arrow_spans.insert_spans`.

What it cannot convert exactly goes to the general path, which stays the reference: a whole block
when pyarrow's strict reader refuses it (a field whose JSON type differs from the canonical one,
``"kind": "SPAN_KIND_SERVER"``, ``intValue`` as a number, ``arrayValue``/``kvlistValue``
attributes, invalid JSON or UTF-8), when a line does not start with ``{"resourceSpans"``, a line
is blank or another signal appears, or for pre-1.0 ``instrumentationLibrary*`` keys; single
lines when one of their spans would be rejected or needs normalizing (ids in UPPERCASE or
base64, all-zero ids, times that are not canonical decimal nanoseconds, unknown kind or status
codes, keyless or duplicate attribute keys, non-canonical integer text). The fast path therefore
yields exactly the rows (and rejects) of the general path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from forensics.loaders.core.arrow_spans import (KIND_NAMES, STATUS_NAMES, Staged, bad_key_rows, code_names, insert_spans, kv_map, prepared_ahead,
                           promoted_text, scratch_query, times_from_ns)
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.io import Block
from forensics.loaders.core.read_ahead import RecordingContext, take_recorded

from .sql import SPAN

#: leaves whose JSON type in canonical collector output is not a string
_TYPED = {"kind": pa.int64(), "code": pa.int64(), "doubleValue": pa.float64(), "boolValue": pa.bool_()}
_CANONICAL_INT = r"^-?(0|[1-9][0-9]{0,36})$"
_PREFIX = b'{"resourceSpans":'
#: keys of the other signals' requests (looked for as plain substrings first: memmem is faster)
_OTHER_SIGNALS = (b'"resourceLogs"', b'"resourceMetrics"')
_OTHER_SIGNAL = re.compile(b"|".join(map(re.escape, _OTHER_SIGNALS)))
#: newlines of a block looked for one at a time before numpy takes over (see :func:`_newlines`)
_FIND_LINES = 4096
_TRACE_ID = "^[0-9a-f]{32}$"
_SPAN_ID = "^[0-9a-f]{16}$"
#: unix nanoseconds in canonical decimal text that certainly fit a BIGINT (up to 2033)
_NANOS = "^([1-9][0-9]{0,17}|1[0-9]{18})$"




class _Decline(Exception):
    """The block is not in the canonical shape: use the general path."""


def _arrow_type(spec: object, *, typed: bool) -> pa.DataType:
    """Arrow type of a ``json_transform`` structure (``otlp.sql`` dicts); ``typed`` gives the
    canonical JSON types of :data:`_TYPED` leaves (the parse schema), else all VARCHAR."""
    if isinstance(spec, list):
        return pa.list_(_arrow_type(spec[0], typed=typed))
    if isinstance(spec, dict):
        return pa.struct([pa.field(k, _TYPED[k] if typed and k in _TYPED and not isinstance(v, (dict, list))
                                   else _arrow_type(v, typed=typed)) for k, v in spec.items()])
    return pa.string()


_KV = [{"key": "VARCHAR", "value": SPAN["attributes"][0]["value"]}]
_GROUP = {"scope": {"name": "VARCHAR", "version": "VARCHAR"}, "instrumentationLibrary": {"name": "VARCHAR"},
          "spans": [SPAN]}
_REQUEST = {"resourceSpans": [{"resource": {"attributes": _KV}, "scopeSpans": [_GROUP],
                               "instrumentationLibrarySpans": [{"scope": {"name": "VARCHAR"}}]}]}
PARSE_SCHEMA = pa.schema([pa.field("resourceSpans", _arrow_type(_REQUEST["resourceSpans"], typed=True))])
SPAN_VARCHAR = _arrow_type(SPAN, typed=False)
_EVENTS_VARCHAR = SPAN_VARCHAR.field("events").type
_LINKS_VARCHAR = SPAN_VARCHAR.field("links").type


def _newlines(data: bytes) -> np.ndarray:
    """Offsets of the newlines in ``data``: found one by one (``bytes.find``, memchr) while they
    are few, as in collector output (a request of hundreds of spans per line), by numpy over
    the rest when there are many."""
    found: list[int] = []
    at = data.find(b"\n")
    while at >= 0 and len(found) < _FIND_LINES:
        found.append(at)
        at = data.find(b"\n", at + 1)
    nl = np.array(found, dtype=np.int64)
    if at < 0:
        return nl
    rest = np.flatnonzero(np.frombuffer(data, dtype=np.uint8)[at:] == 10) + at
    return np.concatenate((nl, rest))


def _line_bounds(block: Block) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of the block's lines (end excludes the newline)."""
    data = np.frombuffer(block.data, dtype=np.uint8)
    nl = _newlines(block.data)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(data)]))
    if starts[-1] == len(data):  # the block ends with a newline
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _candidates(block: Block, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of the block's lines the fast path may take: lines starting with
    ``{"resourceSpans":`` that mention no other signal (cheap tests, no per-line Python); none
    when the block is not UTF-8."""
    data = np.frombuffer(block.data, dtype=np.uint8)
    ok = (ends - starts) >= len(_PREFIX)
    if not ok.any():
        return ok
    heads = data[np.minimum(starts[:, None] + np.arange(len(_PREFIX)), len(data) - 1)]
    ok &= (heads == np.frombuffer(_PREFIX, dtype=np.uint8)).all(axis=1)
    if any(name in block.data for name in _OTHER_SIGNALS):  # usually absent: then no per-line search
        for m in _OTHER_SIGNAL.finditer(block.data):
            ok[np.searchsorted(starts, m.start(), side="right") - 1] = False
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int64)),
                                                          pa.py_buffer(block.data)])
    try:
        whole.cast(pa.large_string())  # validates UTF-8
    except pa.ArrowInvalid:
        ok[:] = False
    return ok


def _select_lines(block: Block, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray) -> bytes:
    """The bytes of the kept lines, each with its newline (a vectorized byte mask)."""
    data = np.frombuffer(block.data, dtype=np.uint8)
    lengths = np.minimum(ends + 1, len(data)) - starts
    mask = np.repeat(keep, lengths)
    out = data[mask].tobytes()
    return out if out.endswith(b"\n") else out + b"\n"


def parse(block: Block, longest: int) -> pa.ListArray:
    """The ``resourceSpans`` column of the block's lines, parsed by pyarrow (raises :class:`_Decline`)."""
    opts = pj.ReadOptions(use_threads=True, block_size=max(longest + 2, 4 << 20))
    try:
        table = pj.read_json(pa.BufferReader(block.data), read_options=opts, parse_options=pj.ParseOptions(
            explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _Decline(str(exc)) from exc
    col = table.column("resourceSpans")
    if col.null_count:
        raise _Decline("a request without a resourceSpans array")
    return col.combine_chunks()


def _unnest(lists: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(values, parent index, 1-based position in the parent list) of a list array."""
    values = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy()
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(len(values), dtype=np.int64) - starts[parents] + 1
    return values, parents, pos


def _mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _value_text(con: duckdb.DuckDBPyConnection, values: pa.StructArray) -> tuple[pa.Array, np.ndarray]:
    """(AnyValue -> text exactly as the ``otlp_any`` macro renders it, mask of entries the fast
    path cannot render: nested values or non-canonical integer text)."""
    bad = np.zeros(len(values), dtype=bool)
    for nested in ("arrayValue", "kvlistValue"):
        bad |= _mask(pc.is_valid(values.field(nested)))
    ints = values.field("intValue")
    if ints.null_count != len(ints):
        bad |= ~_mask(pc.fill_null(pc.match_substring_regex(ints, _CANONICAL_INT), True))
    doubles = values.field("doubleValue")
    double_text = pa.nulls(len(values), pa.string())
    if doubles.null_count != len(doubles):  # DuckDB's own DOUBLE -> VARCHAR rendering
        double_text = scratch_query(con, pa.table({"d": doubles}), lambda t: f"SELECT CAST(d AS VARCHAR) AS t FROM {t}"
                                     ).column("t").combine_chunks()
    bool_text = pc.if_else(values.field("boolValue"), "true", "false")
    text = pc.coalesce(values.field("stringValue"), ints, double_text, bool_text, values.field("bytesValue"))
    return text, bad


class _Attributes:
    """An OTLP attribute list per row, flattened: the MAP per row, the text per entry, and the
    rows the fast path cannot take (``bad``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lists: pa.Array) -> None:
        n = len(lists)
        self.lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
        entries = lists.flatten()
        self.parents = pc.list_parent_indices(lists).to_numpy()
        self.keys = entries.field("key")
        self.text, bad_entry = _value_text(con, entries.field("value"))
        self.bad = bad_key_rows(n, self.parents, self.keys)
        self.bad[self.parents[bad_entry]] = True
        self.n = n

    def map(self) -> pa.MapArray:
        """MAP per row (rows marked bad get an empty map: they are not inserted)."""
        if not self.bad.any():
            return kv_map(self.lengths, self.keys, self.text)
        keep = ~self.bad[self.parents]
        lengths = np.where(self.bad, 0, self.lengths)
        return kv_map(lengths, self.keys.filter(pa.array(keep)), self.text.filter(pa.array(keep)))

    def value(self, key: str) -> pa.Array:
        """The value text of ``key`` per row (``attributes[key]``), NULL where absent."""
        sel = np.flatnonzero(_mask(pc.fill_null(pc.equal(self.keys, key), False)))
        pick = np.full(self.n, -1, dtype=np.int64)
        pick[self.parents[sel]] = sel
        return self.text.take(pa.array(pick, mask=pick < 0)).cast(pa.string())

    def promoted(self) -> dict[str, pa.Array]:
        return promoted_text(self.n, self.parents, self.keys.fill_null(""), self.text)


def _span_checks(spans: pa.StructArray) -> np.ndarray:
    """Mask of spans the fast path must leave to the general path (rejected, or needing a
    normalization it does not do)."""
    def ok(values: pa.Array, regex: str, null_ok: bool) -> np.ndarray:
        return _mask(pc.fill_null(pc.match_substring_regex(values, regex), null_ok))

    bad = ~ok(spans.field("traceId"), _TRACE_ID, False) | ~ok(spans.field("spanId"), _SPAN_ID, False)
    bad |= _mask(pc.fill_null(pc.equal(spans.field("traceId"), "0" * 32), False))
    bad |= _mask(pc.fill_null(pc.equal(spans.field("spanId"), "0" * 16), False))
    parent = spans.field("parentSpanId")
    bad |= ~(ok(parent, _SPAN_ID, True) | _mask(pc.fill_null(pc.equal(parent, ""), False)))
    bad |= ~ok(spans.field("startTimeUnixNano"), _NANOS, False) | ~ok(spans.field("endTimeUnixNano"), _NANOS, True)
    for codes, names in ((spans.field("kind"), KIND_NAMES), (spans.field("status").field("code"), STATUS_NAMES)):
        codes = codes.fill_null(0)
        bad |= ~_mask(pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(names))))
    return bad


def _ns_time(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(TIMESTAMPTZ from canonical unix-nanosecond text, mask of values that are not canonical)."""
    canonical = pc.fill_null(pc.match_substring_regex(text, _NANOS), True)
    ns = pc.cast(pc.if_else(canonical, text, None), pa.int64())
    return times_from_ns(ns, ns)[0], ~_mask(canonical)


def _events_links(con: duckdb.DuckDBPyConnection, spans: pa.StructArray) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(``events`` JSON text, ``links`` JSON text, mask of spans to leave to the general path).

    Event times, link ids and attribute MAPs are computed in Arrow like the spans' own; DuckDB
    only renders the lists (``to_json``), for the spans that have any."""
    n = len(spans)
    has = pc.or_(pc.greater(pc.list_value_length(spans.field("events")).fill_null(0), 0),
                 pc.greater(pc.list_value_length(spans.field("links")).fill_null(0), 0))
    idx = np.flatnonzero(_mask(has))
    bad = np.zeros(n, dtype=bool)
    if not len(idx):
        return pa.nulls(n, pa.string()), pa.nulls(n, pa.string()), bad
    take = pa.array(idx)
    lists = {}
    for field in ("events", "links"):
        sub = spans.field(field).take(take)
        items = sub.flatten()
        parent = idx[pc.list_parent_indices(sub).to_numpy()]
        attrs = _Attributes(con, items.field("attributes"))
        bad[parent[attrs.bad]] = True
        if field == "events":
            time, bad_time = _ns_time(items.field("timeUnixNano"))
            bad[parent[bad_time]] = True
            cols = {"time": pc.strftime(time, format="%Y-%m-%dT%H:%M:%SZ"), "name": items.field("name")}
        else:
            cols = {}
            for key, col, regex in (("traceId", "trace_id", _TRACE_ID), ("spanId", "span_id", _SPAN_ID)):
                ids = pc.if_else(pc.equal(items.field(key), ""), None, items.field(key))
                bad[parent[~_mask(pc.fill_null(pc.match_substring_regex(ids, regex), True))]] = True
                cols[col] = ids
            state = items.field("traceState")
            cols["trace_state"] = pc.if_else(pc.equal(state, ""), None, state)
        cols["attributes"] = attrs.map()
        values = pa.StructArray.from_arrays(list(cols.values()), names=list(cols))
        lists[field] = pa.ListArray.from_arrays(sub.offsets, values, mask=pc.is_null(sub))
    out = scratch_query(con, pa.table({"ev": lists["events"], "ln": lists["links"]}),
                         lambda t: "SELECT CASE WHEN len(ev) > 0 THEN to_json(ev)::VARCHAR END AS events, "
                                   f"CASE WHEN len(ln) > 0 THEN to_json(ln)::VARCHAR END AS links FROM {t}")
    pos = np.full(n, -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    where = pa.array(pos, mask=pos < 0)
    return (out.column("events").combine_chunks().take(where), out.column("links").combine_chunks().take(where), bad)


def spans_table(con: duckdb.DuckDBPyConnection, line_no: np.ndarray, resource_spans: pa.ListArray) -> tuple[pa.Table, np.ndarray]:
    """(canonical span rows of the block's good lines, mask of lines for the general path).

    Each span carries its resource's MAP, copied here (Arrow ``take``, on the fast path's
    worker): DuckDB joining a resources table by ``rid`` costs the thread that stores about
    2 µs more per span than reading the copied MAP."""
    rs, rs_line, rs_i = _unnest(resource_spans)
    if rs.field("instrumentationLibrarySpans").null_count != len(rs):
        raise _Decline("pre-1.0 instrumentationLibrarySpans")
    ss, ss_rs, ss_i = _unnest(rs.field("scopeSpans"))
    if ss.field("instrumentationLibrary").null_count != len(ss):
        raise _Decline("pre-1.0 instrumentationLibrary")
    spans, sp_ss, _ = _unnest(ss.field("spans"))
    sp_rs = ss_rs[sp_ss]
    sp_line = rs_line[sp_rs]

    res = _Attributes(con, rs.field("resource").field("attributes"))
    attrs = _Attributes(con, spans.field("attributes"))
    events, links, bad_lists = _events_links(con, spans)
    bad_span = _span_checks(spans) | attrs.bad | res.bad[sp_rs] | bad_lists
    bad_line = np.zeros(len(resource_spans), dtype=bool)
    bad_line[sp_line[bad_span]] = True
    bad_line[rs_line[res.bad]] = True
    keep = pa.array(~bad_line[sp_line])

    start_ns = pc.cast(spans.field("startTimeUnixNano"), pa.int64(), safe=False) if not bad_span.any() else \
        pc.cast(pc.if_else(pa.array(bad_span), "1", spans.field("startTimeUnixNano")), pa.int64())
    end_text = spans.field("endTimeUnixNano")
    end_ns = pc.cast(pc.if_else(pa.array(bad_span), None, end_text) if bad_span.any() else end_text, pa.int64())
    start, end, duration = times_from_ns(start_ns, end_ns)
    parent = spans.field("parentSpanId")
    parent = pc.if_else(pc.fill_null(pc.is_in(parent, pa.array(["", "0" * 16])), False), None, parent)
    scope = ss.field("scope")
    res_at = pa.array(sp_rs)
    table = pa.table({
        "trace_id": spans.field("traceId"), "span_id": spans.field("spanId"), "parent_span_id": parent,
        "service": res.value("service.name").take(res_at),
        "service_version": res.value("service.version").take(res_at),
        "host_name": res.value("host.name").take(res_at),
        "name": spans.field("name"),
        "kind": code_names(spans.field("kind"), KIND_NAMES),
        "status": code_names(spans.field("status").field("code"), STATUS_NAMES),
        "status_message": pc.if_else(pc.equal(spans.field("status").field("message"), ""), None,
                                     spans.field("status").field("message")),
        "start_time": start, "end_time": end, "duration_ms": duration,
        "attributes": attrs.map(),
        "resource_attributes": res.map().take(res_at),
        "scope_name": scope.field("name").take(pa.array(sp_ss)),
        "scope_version": scope.field("version").take(pa.array(sp_ss)),
        "events": events, "links": links,
        "source_line": line_no[sp_line],
        **attrs.promoted(),
    })
    return (table if not bad_line.any() else table.filter(keep)), bad_line


@dataclass
class Prepared:
    """A block's fast-path work, done off the case's connection: the span rows to insert, the
    line numbers taken, and which of them must go to the general path."""

    table: Staged
    line_no: np.ndarray
    bad_line: np.ndarray
    every_line: bool


def prepare(con: duckdb.DuckDBPyConnection, block: Block) -> Prepared | None:
    """The fast-path work for ``block`` (pure: it touches only the scratch connection ``con``),
    or None when the block is declined."""
    starts, ends = _line_bounds(block)
    take = _candidates(block, starts, ends)
    if not take.any():
        return None
    line_no = np.arange(block.first_line, block.first_line + len(starts), dtype=np.int64)[take]
    data = block if take.all() else Block(block.first_line, _select_lines(block, starts, ends, take))
    try:
        resource_spans = parse(data, int((ends - starts)[take].max()))
        if len(resource_spans) != len(line_no):
            raise _Decline("not one request per line")
        table, bad_line = spans_table(con, line_no, resource_spans)
    except _Decline:
        return None
    return Prepared(Staged.of(table), line_no, bad_line, bool(take.all()))


def apply(ctx: LoadContext, block: Block, prepared: Prepared | None) -> pa.Table:
    """Insert a prepared block's rows; return the lines (``line``, ``raw``) left for the general
    path (all of them when the block was declined)."""
    if prepared is None:
        return ctx.lines_of(block)
    insert_spans(ctx, prepared.table)
    if prepared.every_line and not prepared.bad_line.any():
        return pa.table({"line": pa.array([], pa.int64()), "raw": pa.array([], pa.large_string())})
    lines = ctx.lines_of(block)
    done = pa.array(prepared.line_no[~prepared.bad_line])
    return lines.filter(pc.invert(pc.is_in(lines.column("line"), done)))


def read_ahead(path: str, format: str, strict: bool, options: dict, scratch: duckdb.DuckDBPyConnection) -> RecordingContext | None:
    """A file of collector lines read ahead (:mod:`.read_ahead`): its blocks, each with its
    :func:`prepare` result, recorded in order with the rejects of reading them; None when the
    file holds more than :data:`~.read_ahead.READ_AHEAD_TEXT`."""
    rec = RecordingContext(path, format, scratch, strict=strict, options=dict(options))
    return rec.record("block", rec.blocks(), lambda block: len(block.data), lambda block: prepare(scratch, block))


def fast_blocks(ctx: LoadContext) -> Iterator[pa.Table]:
    """The file's blocks through the fast path, pipelined (:func:`~forensics.loaders.core.arrow_spans.prepared_ahead`:
    the next block is parsed and converted while the current one is inserted), or replayed from
    its reading ahead (``ctx.ahead``, see :func:`read_ahead`). Yields the lines each block leaves
    for the general path."""
    recorded = take_recorded(ctx)
    pairs = recorded.replay(ctx) if recorded is not None else prepared_ahead(ctx.blocks(), prepare, "otlp-prepare")
    for block, prepared in pairs:
        yield apply(ctx, block, prepared)
