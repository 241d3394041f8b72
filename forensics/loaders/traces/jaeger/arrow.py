"""Arrow fast path of the Jaeger JSON loader (see :mod:`forensics.loaders.traces.jaeger_zipkin.arrow` for the method).

A JSON text (a line, a streamed array element, a document) is taken when it is a trace object
(``"spans"`` an array) or a bare span, and each of its spans converts exactly. The text goes to
the general path (:mod:`.jaeger`'s SQL, the reference) when it is not a JSON object, when a line
or document mentions ``"data"`` (an envelope), or when one of its spans would be rejected (ids
not hex or all zero, no start time, no process) or needs what the fast path does not do: ids that
need more than lower-casing and zero padding, references with such ids, times that are not
decimal integers of microseconds, non-empty ``warnings``.

Trace-level processes become one resource row each (inline processes one per span), copied into
the rows of their spans (:func:`~forensics.loaders.core.arrow_spans.with_resources`); logs become events and
non-parent references links through the general path's own SQL (:func:`.jaeger.events_sql`,
:func:`.jaeger.links_sql`), for the spans that have them.
"""
from __future__ import annotations

import json
from functools import cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.loaders.core.json_stream import split_array
from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX

from ..jaeger_zipkin.arrow import (Converted, Entries, FastBatch, Vocabulary, convert_in_groups, converted,
                                   fields, hex_id, keep_good, mask, on_rows, rows_containing, span_times, transform,
                                   unnest)
from . import sql

_ZERO_HIGH = "0" * 16


@cache
def _structure() -> str:
    """A trace or a bare span: the span fields, plus the trace's ``spans`` and ``processes``."""
    return json.dumps({**sql.SPAN, "spans": [sql.SPAN], "processes": sql.PROCESSES})


def _spans(top: dict[str, pa.Array], is_trace: np.ndarray) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """(every span in text order, its text, its position in the text, spans per text): a trace's
    ``spans``, or the text itself for a bare span."""
    n = len(is_trace)
    traces = np.flatnonzero(is_trace)
    lists = top["spans"].take(pa.array(traces))
    listed, parent, position = unnest(lists)
    bare = np.flatnonzero(~is_trace)
    item = top["spans"].type.value_type
    alone = pa.StructArray.from_arrays([top[f.name].take(pa.array(bare)) for f in item], fields=list(item))
    counts = np.ones(n, dtype=np.int64)
    counts[traces] = pc.list_value_length(lists).fill_null(0).to_numpy()
    elem = np.concatenate([traces[parent], bare])
    index = np.concatenate([position, np.zeros(len(bare), dtype=np.int64)])
    order = np.empty(len(elem), dtype=np.int64)
    order[(np.cumsum(counts) - counts)[elem] + index] = np.arange(len(elem))
    spans = pa.concat_arrays([listed, alone]).take(pa.array(order))
    return spans, elem[order], index[order], counts


def _processes(top: dict[str, pa.Array], sp: dict[str, pa.Array], elem: np.ndarray) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(resources table, ``rid`` per span, mask of spans without a process): each entry of a
    trace's ``processes`` and each inline ``process`` is one resource."""
    entries, owner, _ = unnest(top["processes"])
    entry = fields(entries)
    found = np.full(len(elem), -1, dtype=np.int64)
    if len(entries):
        names = pc.unique(entry["key"])
        width = len(names)
        entry_key = owner * width + pc.index_in(entry["key"], value_set=names).to_numpy()
        code = pc.index_in(sp["processID"], value_set=names).fill_null(-1).to_numpy()
        span_key = np.where(code >= 0, elem * width + code, -1)
        found = pc.index_in(pa.array(span_key), value_set=pa.array(entry_key)).fill_null(-1).to_numpy()
    proc = fields(sp["process"])
    inline = mask(pc.is_valid(proc["serviceName"])) | mask(pc.is_valid(proc["tags"]))
    own = np.flatnonzero(inline)
    rid = found.copy()
    rid[own] = len(entries) + np.arange(len(own))
    resources = pa.concat_arrays([entry["value"], sp["process"].take(pa.array(own))])
    res = fields(resources)
    named = np.flatnonzero(mask(pc.is_valid(res["serviceName"])))
    tags, tag_owner, _ = unnest(res["tags"])
    tag = fields(tags)
    attrs = Entries.concat(len(resources), [
        (named, pa.array(["service.name"] * len(named)), res["serviceName"].take(pa.array(named))),
        (tag_owner, tag["key"], tag["value"])])
    table = pa.table({
        "rid": np.arange(len(resources), dtype=np.int64),
        "resource_attributes": attrs.map(),
        "service": pc.if_else(pc.equal(res["serviceName"], ""), None, res["serviceName"]),
        "service_version": attrs.value("service.version"),
        "host_name": attrs.first_value("host.name", "hostname", "ip"),
    })
    return table, rid, ~inline & (found < 0)


def _parents(con: duckdb.DuckDBPyConnection, sp: dict[str, pa.Array], refs: tuple[pa.Array, np.ndarray, np.ndarray],
             kind: pa.Array, trace_id: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(parent_span_id, links JSON, mask of spans left to the general path): the first
    CHILD_OF reference (``kind``: upper-case ``refType``) into the span's own trace, else the
    first FOLLOWS_FROM, else the legacy ``parentSpanID``; the other references are links."""
    n = len(trace_id)
    items, owner, position = refs
    ref = fields(items)
    ref_trace, bad_trace = hex_id(ref["traceID"], TRACE_ID_HEX)
    ref_span, bad_span = hex_id(ref["spanID"], SPAN_ID_HEX)
    bad = np.zeros(n, dtype=bool)
    bad[owner[bad_trace | bad_span]] = True
    own = trace_id.take(pa.array(owner))
    low = pc.equal(pc.utf8_slice_codeunits(ref_trace, -16), pc.utf8_slice_codeunits(own, -16))
    wide = pc.or_(pc.starts_with(ref_trace, _ZERO_HIGH), pc.starts_with(own, _ZERO_HIGH))
    same = mask(pc.equal(ref_trace, own)) | ~mask(pc.is_valid(ref_trace)) | mask(pc.and_(low, wide))
    chosen = np.full(n, -1, dtype=np.int64)
    for name in ("FOLLOWS_FROM", "CHILD_OF"):  # CHILD_OF wins: written last
        hit = np.flatnonzero(same & mask(pc.equal(kind, name)))
        spans, first = np.unique(owner[hit], return_index=True)
        chosen[spans] = hit[first]
    legacy, bad_legacy = hex_id(sp["parentSpanID"], SPAN_ID_HEX)
    bad |= bad_legacy
    legacy = pc.if_else(pc.equal(legacy, "0" * SPAN_ID_HEX), None, legacy)
    has = chosen >= 0
    parent = pc.if_else(pa.array(has), ref_span.take(pa.array(np.maximum(chosen, 0))) if len(items) else legacy, legacy)
    linked = np.flatnonzero(np.bincount(owner, minlength=n) > has)
    parent_ref = pa.array(np.where(has, position[np.maximum(chosen, 0)] + 1 if len(items) else 0, -1)[linked],
                          mask=~has[linked])
    links = on_rows(con, n, linked, {"refs": sp["references"].take(pa.array(linked)), "parent_ref": parent_ref},
                    {"links": sql.links_sql(sql.refs_sql("refs"), "parent_ref")})["links"]
    return parent, links, bad


def _span_rows(con: duckdb.DuckDBPyConnection, top: dict[str, pa.Array], is_trace: np.ndarray) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """(canonical span rows with ``_elem``/``_index``/``rid``, resources, spans per text, mask
    of spans left to the general path)."""
    spans, elem, index, counts = _spans(top, is_trace)
    n = len(spans)
    sp = fields(spans)
    trace_ids = pc.if_else(pa.array(is_trace), top["traceID"], None).take(pa.array(elem))
    trace_id, bad = hex_id(pc.coalesce(sp["traceID"], trace_ids), TRACE_ID_HEX)
    span_id, bad_id = hex_id(sp["spanID"], SPAN_ID_HEX)
    resources, rid, no_process = _processes(top, sp, elem)
    tags = Entries.of_lists(sp["tags"])
    refs = unnest(sp["references"])
    vocabulary = Vocabulary()
    vocabulary.add({"k": tags.value("span.kind")}, lambda c: sql.kind_from_tag_sql(c["k"]))
    vocabulary.add({"e": tags.value("error"), "c": tags.value("otel.status_code")},
                   lambda c: sql.status_from_tags_sql(c["e"], c["c"]))
    vocabulary.add({"t": fields(refs[0])["refType"]}, lambda c: f"upper({c['t']})")
    kind, status, ref_kind = vocabulary.run(con)
    parent, links, bad_refs = _parents(con, sp, refs, ref_kind, trace_id)
    times, bad_time = span_times(sp["startTime"], sp["duration"])
    bad |= bad_id | no_process | bad_refs | bad_time
    bad |= mask(pc.is_valid(sp["warnings"])) & ~mask(pc.equal(sp["warnings"], "[]"))
    logged = np.flatnonzero(mask(pc.greater(pc.list_value_length(sp["logs"]), 0)))
    logs = sql.logs_sql("logs")
    from_logs = on_rows(con, n, logged, {"logs": sp["logs"].take(pa.array(logged))},
                        {"events": sql.events_sql(logs), "message": sql.error_message_sql(sql.error_log_sql(logs))})
    error_message = pc.if_else(pc.equal(status, "error"), from_logs["message"], None)
    table = pa.table({
        "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent,
        "name": sp["operationName"],
        "kind": kind,
        "status": status,
        "status_message": pc.coalesce(tags.value("otel.status_description"), error_message),
        **times,
        "attributes": tags.map(),
        "scope_name": tags.first_value("otel.scope.name", "otel.library.name"),
        "scope_version": tags.first_value("otel.scope.version", "otel.library.version"),
        "events": from_logs["events"], "links": links,
        "rid": rid,
        **tags.promoted(),
        "_elem": elem, "_index": index,
    })
    return table, resources, counts, bad


def _convert(con: duckdb.DuckDBPyConnection, texts: pa.Array, mode: str) -> Converted:
    """The spans of the JSON texts that are traces or bare spans (see :class:`Converted`)."""
    top = fields(transform(con, texts, f"try(json_transform(raw, '{_structure()}'))"))
    is_trace = mask(pc.is_valid(top["spans"]))
    is_span = ~is_trace & mask(pc.is_valid(top["spanID"]))
    if mode != "element":
        is_span &= mask(pc.is_valid(top["operationName"]))
    took = is_trace | is_span
    top = {k: v.filter(pa.array(took)) for k, v in top.items()}
    return converted(len(texts), took, *_span_rows(con, top, is_trace[took]))


def prepare(con: duckdb.DuckDBPyConnection, source: pa.Table, mode: str) -> FastBatch:
    """Take what the fast path can from a batch of JSON texts (``source.raw``; ``mode`` as in
    :class:`~forensics.loaders.traces.jaeger_zipkin.common.Source`); a huge trace is converted a run of spans at a time."""
    raw = source.column("raw").combine_chunks()
    candidate = mask(pc.starts_with(raw, "{"))
    if mode != "element":
        candidate &= ~rows_containing(raw, '"data"')
    rows = np.flatnonzero(candidate)
    if not len(rows):
        return FastBatch.nothing(len(raw))
    texts = raw if len(rows) == len(raw) else raw.take(pa.array(rows))
    part = convert_in_groups(texts, lambda group: _convert(con, group, mode),
                             lambda text, size: split_array(text, b"spans", size))
    return keep_good(rows, len(raw), part)
