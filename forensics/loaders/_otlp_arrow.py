"""Arrow fast path for OTLP/JSON trace lines shaped as the Collector ``file`` exporter writes them.

The general path (``_otlp_sql``) parses every line with DuckDB's ``json_transform`` into
VARCHAR structs and builds attribute MAPs with per-entry lambdas. For the canonical shape —
one ``{"resourceSpans": ...}`` request per line, lowercase hex ids, ``intValue`` and times as
strings, ``kind``/``status.code`` as integers — this module instead

1. parses a block of lines with ``pyarrow.json`` against an explicit, strictly typed schema
   (multi-threaded),
2. flattens resource → scope → span with ``list_parent_indices``/``take`` (no per-span Python),
3. builds the span and resource attribute MAPs directly as Arrow ``MapArray`` s from the
   flattened key/value lists,
4. casts each span struct to the VARCHAR struct ``json_transform`` would have produced and hands
   the flat table to the shared span SQL (:func:`~._otlp_sql.spans_sql` with ``records=``), so
   ids, times, kind/status, promoted columns and validation are computed by the same SQL.

Anything else is declined, line block by line block, and goes to the general path unchanged:
lines that do not start with ``{"resourceSpans"`` or mention another signal, JSON that
pyarrow's strict reader refuses (a field whose JSON type differs from the canonical one,
``"kind": "SPAN_KIND_SERVER"``, ``intValue`` as a number, invalid JSON), ``arrayValue``/
``kvlistValue`` attributes, non-canonical integer text, keyless or duplicate attribute keys,
pre-1.0 ``instrumentationLibrary*`` keys and requests without a ``resourceSpans`` array. The
fast path therefore yields exactly the rows (and rejects) of the general path.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .._db import query_arrow
from ._otlp_sql import SPAN, spans_sql
from ._semconv import PRECOMPUTED_PREFIX, PROMOTED
from .context import LoadContext

#: leaves whose JSON type in canonical collector output is not a string
_TYPED = {"kind": pa.int64(), "code": pa.int64(), "doubleValue": pa.float64(), "boolValue": pa.bool_()}
_CANONICAL_INT = r"^-?(0|[1-9][0-9]{0,36})$"
_LINE_START = '{"resourceSpans":'
_OTHER_SIGNALS = ('"resourceLogs"', '"resourceMetrics"')
_OTHER_SIGNAL = re.compile(rb'"resource(Logs|Metrics)"')
_MAX_DEDUPE_CELLS = 50_000_000


class _Decline(Exception):
    """The block is not in the canonical shape: use the general path."""


def _arrow_type(spec: object, *, typed: bool) -> pa.DataType:
    """Arrow type of a ``json_transform`` structure (``_otlp_sql`` dicts); ``typed`` gives the
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


def candidates(lines: pa.Table) -> pa.ChunkedArray:
    """Boolean mask of the lines the fast path may take (a cheap text test).

    The other signals' keys are first searched in each chunk's whole data buffer (one regex
    scan, usually no match), and per line only when present.
    """
    raw = lines.column("raw")
    mask = pc.starts_with(raw, _LINE_START)
    if any(_OTHER_SIGNAL.search(memoryview(chunk.buffers()[2] or b"")) for chunk in raw.chunks):
        for key in _OTHER_SIGNALS:
            mask = pc.and_(mask, pc.invert(pc.match_substring(raw, key)))
    return mask


def _joined(raw: pa.ChunkedArray) -> pa.Buffer:
    """The lines as one newline-separated buffer (the strings' data buffer, no Python loop)."""
    empty = pa.scalar("", raw.type)
    arr = pc.binary_join_element_wise(raw, empty, pa.scalar("\n", raw.type)).combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if pa.types.is_large_string(arr.type) else np.int32)
    start, end = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    return arr.buffers()[2][start:end]


def parse(raw: pa.ChunkedArray) -> pa.ListArray:
    """The ``resourceSpans`` column of the lines, parsed by pyarrow (raises :class:`_Decline`)."""
    buf = _joined(raw)
    longest = int(pc.max(pc.binary_length(raw)).as_py() or 0)
    opts = pj.ReadOptions(use_threads=True, block_size=max(longest + 2, 4 << 20))
    try:
        table = pj.read_json(pa.BufferReader(buf), read_options=opts, parse_options=pj.ParseOptions(
            explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _Decline(str(exc)) from exc
    col = table.column("resourceSpans")
    if table.num_rows != len(raw) or col.null_count:
        raise _Decline("not one resourceSpans request per line")
    return col.combine_chunks()


def _unnest(lists: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(values, parent index, 1-based position in the parent list) of a list array."""
    values = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy()
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(len(values), dtype=np.int64) - starts[parents] + 1
    return values, parents, pos


def _value_text(ctx: LoadContext, values: pa.StructArray) -> pa.Array:
    """AnyValue -> text exactly as the ``otlp_any`` macro renders it (scalars only)."""
    for nested in ("arrayValue", "kvlistValue"):
        if values.field(nested).null_count != len(values):
            raise _Decline(f"{nested} attribute")
    ints = values.field("intValue")
    if ints.null_count != len(ints) and not pc.all(pc.match_substring_regex(ints.drop_null(), _CANONICAL_INT)).as_py():
        raise _Decline("intValue not in canonical decimal form")
    doubles = values.field("doubleValue")
    double_text = pa.nulls(len(values), pa.string())
    if doubles.null_count != len(doubles):  # DuckDB's own DOUBLE -> VARCHAR rendering
        name = ctx.register(pa.table({"d": doubles}))
        try:
            double_text = query_arrow(ctx.con, f"SELECT CAST(d AS VARCHAR) AS t FROM {name}").column("t").combine_chunks()
        finally:
            ctx.unregister(name)
    bools = values.field("boolValue")
    bool_text = pc.if_else(bools, "true", "false")
    return pc.coalesce(values.field("stringValue"), ints, double_text, bool_text, values.field("bytesValue"))


def attribute_maps(ctx: LoadContext, lists: pa.Array, promote: bool = False) -> tuple[pa.MapArray, dict[str, pa.Array]]:
    """MAP(VARCHAR, VARCHAR) per OTLP attribute list (NULL list -> empty map), as ``otlp_attrs``,
    and with ``promote`` the promoted columns as text (``_p_<column>``, see :func:`promoted`).

    Raises :class:`_Decline` for keyless or duplicate keys (``otlp_attrs`` dedupes those).
    """
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    entries = lists.flatten()
    keys = entries.field("key")
    if keys.null_count:
        raise _Decline("attribute without a key")
    parents = pc.list_parent_indices(lists).to_numpy()
    codes = keys.dictionary_encode()
    if len(keys):
        k = len(codes.dictionary)
        if len(lists) * k <= _MAX_DEDUPE_CELLS:
            dup = np.bincount(parents * k + codes.indices.to_numpy(), minlength=1).max() > 1
        else:
            dup = pa.table({"p": parents, "k": keys}).group_by(["p", "k"]).aggregate([]).num_rows != len(keys)
        if dup:
            raise _Decline("duplicate attribute key")
    text = _value_text(ctx, entries.field("value"))
    maps = pa.MapArray.from_arrays(pa.array(offsets), keys, text)
    return maps, (promoted(len(lists), parents, codes, text) if promote else {})


def promoted(n: int, parents: np.ndarray, codes: pa.DictionaryArray, text: pa.Array) -> dict[str, pa.Array]:
    """The promoted columns (``_semconv.PROMOTED``) as text: per span, the value of the first of
    the column's keys whose value is not NULL, as ``coalesce(attributes['k1'], ...)`` gives."""
    position = {key: i for i, key in enumerate(codes.dictionary.to_pylist())}
    index = codes.indices.to_numpy(zero_copy_only=False)
    present = pc.is_valid(text).to_numpy(zero_copy_only=False)
    out = {}
    for col, keys in PROMOTED.items():
        pick = np.full(n, -1, dtype=np.int64)
        for key in reversed(keys):  # the first key wins: write it last
            if key in position:
                sel = np.flatnonzero((index == position[key]) & present)
                pick[parents[sel]] = sel
        out[PRECOMPUTED_PREFIX + col] = text.take(pa.array(pick, mask=pick < 0))
    return out


#: (field, regex every value must match; NULL allowed) for spans that cannot be rejected
_CLEAN = (("traceId", "^[0-9a-f]{32}$", False), ("spanId", "^[0-9a-f]{16}$", False),
          ("parentSpanId", "^([0-9a-f]{16})?$", True), ("startTimeUnixNano", "^([1-9][0-9]{0,17}|1[0-9]{18})$", False))


def may_reject(spans: pa.StructArray) -> bool:
    """False when no span can be rejected by ``finalize_spans_sql`` (hex ids, not all zero, a
    positive start time, known kind and status codes); True when one might."""
    for name, regex, nullable in _CLEAN:
        values = spans.field(name)
        if values.null_count and not nullable:
            return True
        if not pc.all(pc.match_substring_regex(values, regex)).as_py():
            return True
    for name, zero in (("traceId", "0" * 32), ("spanId", "0" * 16)):
        if pc.any(pc.equal(spans.field(name), zero)).as_py():
            return True
    kind, code = spans.field("kind"), spans.field("status").field("code")
    return not (pc.all(pc.is_in(kind.drop_null(), pa.array(range(6)))).as_py()
                and pc.all(pc.is_in(code.drop_null(), pa.array(range(3)))).as_py())


def _lean(spans: pa.StructArray) -> pa.StructArray:
    """The span structs without their attribute lists (only a rejected row's ``_raw`` would
    read them, and :func:`may_reject` said there is none): less for DuckDB to import."""
    fields = [f for f in SPAN_VARCHAR if f.name != "attributes"]
    return pa.StructArray.from_arrays([spans.field(f.name).cast(f.type) for f in fields], fields=fields,
                                      mask=pc.is_null(spans))


def records(ctx: LoadContext, lines: pa.Array, resource_spans: pa.ListArray) -> tuple[pa.Table, pa.Table]:
    """The flat span table (``rid`` the resource's row in the second table, ``rid``, ``res``);
    joined they give what the shared span SQL expects (see :func:`~._otlp_sql.records_sql`).
    Schema metadata ``clean`` is ``1`` when :func:`may_reject` ruled out rejects.

    Resource MAPs are built once per resource and joined in DuckDB (copying a MAP is cheaper
    than importing one per span)."""
    rs, rs_row, rs_i = _unnest(resource_spans)
    if rs.field("instrumentationLibrarySpans").null_count != len(rs):
        raise _Decline("pre-1.0 instrumentationLibrarySpans")
    ss, ss_rs, ss_i = _unnest(rs.field("scopeSpans"))
    if ss.field("instrumentationLibrary").null_count != len(ss):
        raise _Decline("pre-1.0 instrumentationLibrary")
    spans, sp_ss, r_i = _unnest(ss.field("spans"))
    sp_rs = ss_rs[sp_ss]
    clean = not may_reject(spans)
    attrs, promoted_text = attribute_maps(ctx, spans.field("attributes"), promote=True)
    scope = ss.field("scope")
    spans_table = pa.table({
        "line": pc.take(lines, pa.array(rs_row[sp_rs])),
        "doc": pa.nulls(len(spans), pa.int64()),
        "rs_i": rs_i[sp_rs], "ss_i": ss_i[sp_ss], "r_i": r_i,
        "rid": sp_rs,
        "scope_name": scope.field("name").take(pa.array(sp_ss)),
        "scope_version": scope.field("version").take(pa.array(sp_ss)),
        "r": _lean(spans) if clean else spans.cast(SPAN_VARCHAR),
        "attrs": attrs,
        **promoted_text,
    })
    resources = pa.table({"rid": np.arange(len(rs), dtype=np.int64),
                          "res": attribute_maps(ctx, rs.field("resource").field("attributes"))[0]})
    return spans_table.replace_schema_metadata({"clean": "1" if clean else "0"}), resources


def emit_spans(ctx: LoadContext, lines: pa.Table) -> pa.Table:
    """Load the canonical-shape span lines of ``lines`` (``line``, ``raw``) through the fast
    path; return the lines left for the general path (all of them if the block is declined)."""
    mask = candidates(lines)
    if not pc.any(mask).as_py():
        return lines
    take = lines.filter(mask)
    try:
        flat, resources = records(ctx, take.column("line").combine_chunks(), parse(take.column("raw")))
    except _Decline:
        return lines
    name, res = ctx.register(flat), ctx.register(resources)
    sql = spans_sql(name, doc_mode=False, records=f"SELECT s.* EXCLUDE (rid), r.res FROM {name} s JOIN {res} r USING (rid)")
    try:
        if flat.schema.metadata.get(b"clean") == b"1":  # no rejects possible: no staging table
            ctx.insert_clean("spans", sql)
        else:
            ctx.emit("spans", sql)
    finally:
        ctx.unregister(name)
        ctx.unregister(res)
    return lines.filter(pc.invert(mask))
