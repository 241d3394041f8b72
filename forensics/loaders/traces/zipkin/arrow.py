"""Arrow fast path of the Zipkin v2 JSON loader (see :mod:`forensics.loaders.traces.jaeger_zipkin.arrow` for the method).

A JSON text (a line, a streamed array element, a document) is taken when it is a span object or
an array of span objects (each with ``traceId`` and ``id``) and each span converts exactly. The
text goes to the general path (:mod:`.zipkin`'s SQL, the reference) when it is not an object or
array, mentions ``"binaryAnnotations"`` or ``"endpoint"`` (Zipkin v1), holds an array inside the
array, or when one of its spans would be rejected (ids not hex or all zero, no timestamp, unknown
kind) or needs what the fast path does not do: ids that need more than lower-casing and zero
padding, times that are not decimal integers of microseconds, tags named like the
``zipkin.*`` attributes the loader adds.

Local endpoints become resource rows, one per distinct endpoint; annotations become events
through the general path's own SQL (:func:`.zipkin.events_sql`), for the spans that have them.
The file-wide fix-ups (shared span halves, 64-bit trace ids) run over every row afterwards, as
before.
"""
from __future__ import annotations

from functools import cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.loaders.core.arrow_spans import bad_key_rows
from forensics.loaders.core.json_stream import split_array
from forensics.loaders.core.semconv import PRECOMPUTED_PREFIX, SPAN_ID_HEX, TRACE_ID_HEX

from ..jaeger_zipkin.arrow import (Converted, Entries, FastBatch, Vocabulary, convert_in_groups, converted,
                                   distinct_rows, fields, hex_id, keep_good, mask, on_rows, rows_containing,
                                   run_sql, span_times, transform, unnest)
from . import sql

_REMOTE = "zipkin.remote_endpoint."
_LOCAL = "zipkin.local_endpoint."
#: attributes the loader adds to the tags (a tag of the same name is left to the general path)
_ADDED = ("zipkin.debug", "zipkin.shared", _REMOTE + "service_name", _REMOTE + "ipv4", _REMOTE + "ipv6", _REMOTE + "port")
_V1_MARKS = ('"binaryAnnotations"', '"endpoint"')


_TAGS_MAP = '"tags": "MAP(VARCHAR, VARCHAR)"'


@cache
def _expr() -> str:
    """The spans of a text: an array of span objects, or one; ``tags`` as (minified) JSON text,
    read by :func:`_tags`."""
    assert _TAGS_MAP in sql.SPAN
    span = sql.SPAN.replace(_TAGS_MAP, '"tags": "JSON"')
    return (f"CASE WHEN starts_with(raw, '[') THEN try(json_transform(raw, '[{span}]')) "
            f"ELSE [try(json_transform(raw, '{span}'))] END")


def _string_objects(text: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array, pa.Array]:
    """(rows read, entry row, keys, values) of the minified JSON objects in ``text`` whose
    values are all strings and that hold no backslash: cut at their quotes, four per entry."""
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset: text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    lo = int(starts[0])
    quotes = np.flatnonzero(data[lo: int(ends[-1])] == 34) + lo
    count = np.searchsorted(quotes, ends) - np.searchsorted(quotes, starts)  # quotes per row
    read = mask(pc.is_valid(text)) & ~mask(pc.match_substring(text, "\\")) & (count % 4 == 0)
    read &= (count > 0) | (ends - starts == 2)  # or "{}"
    quotes = quotes[np.repeat(read, count)]  # whole rows of 4 quotes per entry
    key_open, key_close, value_open, value_close = quotes[0::4], quotes[1::4], quotes[2::4], quotes[3::4]
    owner = np.repeat(np.flatnonzero(read), count[read] // 4)
    good = (data[key_open - 1] == np.where(key_open - 1 == starts[owner], ord("{"), ord(","))) \
        & (data[key_close + 1] == ord(":")) & (value_open == key_close + 2) \
        & (data[value_close + 1] == np.where(value_close + 2 == ends[owner], ord("}"), ord(",")))
    read[owner[~good]] = False
    ok = read[owner]
    cuts = np.empty(4 * int(ok.sum()), dtype=np.int64)
    cuts[0::4], cuts[1::4], cuts[2::4], cuts[3::4] = key_open[ok] + 1, key_close[ok], value_open[ok] + 1, value_close[ok]
    if not len(cuts):
        return read, np.zeros(0, np.int64), pa.array([], pa.large_string()), pa.array([], pa.large_string())
    pieces = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(cuts) - 1, [None, pa.py_buffer(cuts), text.buffers()[2]])
    keys = pieces.take(pa.array(np.arange(0, len(cuts), 4))).cast(pa.large_string())
    values = pieces.take(pa.array(np.arange(2, len(cuts), 4))).cast(pa.large_string())
    return read, owner[ok], keys, values


def _tags(con: duckdb.DuckDBPyConnection, tags: pa.Array) -> Entries:
    """The ``tags`` objects (minified JSON text) as ``json_transform(..., 'MAP(VARCHAR, VARCHAR)')``
    reads them, NULL or a duplicate key giving no tags: objects of plain string values are cut
    in numpy (:func:`_string_objects`), any other goes through DuckDB."""
    n = len(tags)
    text = tags.cast(pa.large_string())
    read, parents, keys, values = _string_objects(text) if n and text.null_count < n else \
        (np.zeros(n, bool), np.zeros(0, np.int64), pa.array([], pa.large_string()), pa.array([], pa.large_string()))
    other = np.flatnonzero(~read & mask(pc.is_valid(text)))
    if len(other):  # escapes, values that are not strings
        maps = run_sql(con, {"t": text.take(pa.array(other))}, "json_transform(t, '\"MAP(VARCHAR, VARCHAR)\"') AS m")
        items, owner, _ = unnest(maps.column("m").combine_chunks())
        item = fields(items)
        parents = np.concatenate([parents, other[owner]])
        keys = pa.concat_arrays([keys, item["key"].cast(pa.large_string())])
        values = pa.concat_arrays([values, item["value"].cast(pa.large_string())])
        order = np.argsort(parents, kind="stable")
        parents, keys, values = parents[order], keys.take(pa.array(order)), values.take(pa.array(order))
    duplicated = bad_key_rows(n, parents, keys)
    if duplicated.any():  # a MAP cannot hold a key twice: json_transform gives NULL, the loader no tags
        keep = ~duplicated[parents]
        parents, keys, values = parents[keep], keys.filter(pa.array(keep)), values.filter(pa.array(keep))
    return Entries(n, parents, keys, values, unique=True)


def _flag(values: dict[str, str]) -> str:
    """``debug``, ``shared``: the attribute value."""
    return f"CASE WHEN lower({values['v']}) = 'true' THEN 'true' END"


def _resources(local: dict[str, pa.Array], service: pa.Array) -> tuple[pa.Table, np.ndarray]:
    """(one resource row per distinct local endpoint, ``rid`` per span)."""
    columns = [service, local["ipv4"], local["ipv6"], local["port"]]
    first, rid = distinct_rows(columns)
    at = pa.array(first)
    service, ipv4, ipv6, port = (c.take(at) for c in columns)
    parts = []
    for key, values in (("service.name", service), (_LOCAL + "ipv4", ipv4), (_LOCAL + "ipv6", ipv6), (_LOCAL + "port", port)):
        rows = np.flatnonzero(mask(pc.is_valid(values)))
        parts.append((rows, pa.array([key] * len(rows)), values.take(pa.array(rows))))
    table = pa.table({"rid": np.arange(len(first), dtype=np.int64),
                      "resource_attributes": Entries.concat(len(first), parts, unique=True).map(), "service": service})
    return table, rid


def _span_rows(con: duckdb.DuckDBPyConnection, lists: pa.Array) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """(canonical span rows with ``_elem``/``_index``/``rid``, resources, spans per text, mask
    of spans left to the general path)."""
    spans, elem, index = unnest(lists)
    n = len(spans)
    sp = fields(spans)
    trace_id, bad = hex_id(sp["traceId"], TRACE_ID_HEX)
    span_id, bad_id = hex_id(sp["id"], SPAN_ID_HEX)
    parent, bad_parent = hex_id(sp["parentId"], SPAN_ID_HEX)
    times, bad_time = span_times(sp["timestamp"], sp["duration"])
    bad |= bad_id | bad_parent | bad_time
    tags = _tags(con, sp["tags"])
    bad[tags.parents[mask(pc.is_in(tags.keys, pa.array(_ADDED)))]] = True
    local, remote = fields(sp["localEndpoint"]), fields(sp["remoteEndpoint"])
    status_tag = tags.first_value("otel.status_code", "ot.status_code")
    vocabulary = Vocabulary()
    for name in (local["serviceName"], remote["serviceName"]):
        vocabulary.add({"s": name}, lambda c: sql.service_name_sql(c["s"]))
    for flag in (sp["debug"], sp["shared"]):
        vocabulary.add({"v": flag}, _flag)
    vocabulary.add({"e": pa.array(tags.has("error")), "c": status_tag}, lambda c: sql.status_from_tags_sql(c["e"], c["c"]))
    vocabulary.add({"k": sp["kind"]}, lambda c: sql.kind_from_field_sql(c["k"]))
    service, remote_service, debug, shared, status, kind = vocabulary.run(con)
    added = [debug, shared, remote["serviceName"], remote["ipv4"], remote["ipv6"], remote["port"]]
    parts = [(tags.parents, tags.keys, tags.values)]
    for key, values in zip(_ADDED, added):
        rows = np.flatnonzero(mask(pc.is_valid(values)))
        parts.append((rows, pa.array([key] * len(rows)), values.take(pa.array(rows))))
    attributes = Entries.concat(n, parts, unique=True)  # a span whose tags hold an added name is declined
    annotated = np.flatnonzero(mask(pc.greater(pc.list_value_length(sp["annotations"]), 0)))
    events = on_rows(con, n, annotated, {"annotations": sp["annotations"].take(pa.array(annotated))},
                     {"events": sql.events_sql("annotations")})["events"]
    resources, rid = _resources(local, service)
    error = tags.value("error")
    promoted = tags.promoted()  # the names the loader adds are not promoted
    peer = PRECOMPUTED_PREFIX + "peer_service"
    promoted[peer] = pc.coalesce(promoted[peer], remote_service)
    table = pa.table({
        "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent,
        "service_version": tags.value("service.version"),
        "name": sp["name"],
        "kind": kind,
        "status": status,
        "status_message": pc.coalesce(pc.if_else(pc.equal(error, ""), None, error),
                                      tags.first_value("otel.status_description", "ot.status_description")),
        **times,
        "attributes": attributes.map(),
        "scope_name": tags.first_value("otel.scope.name", "otel.library.name"),
        "scope_version": tags.first_value("otel.scope.version", "otel.library.version"),
        "events": events,
        "host_name": pc.coalesce(tags.first_value("host.name", "hostname"), local["ipv4"], local["ipv6"]),
        "rid": rid,
        **promoted,
        "_elem": elem, "_index": index,
    })
    counts = pc.list_value_length(lists).fill_null(0).to_numpy().astype(np.int64)
    return table, resources, counts, bad


def _convert(con: duckdb.DuckDBPyConnection, texts: pa.Array) -> Converted:
    """The spans of the JSON texts that are spans or arrays of spans (see :class:`Converted`)."""
    lists = transform(con, texts, _expr())
    took = mask(pc.is_valid(lists))
    return converted(len(texts), took, *_span_rows(con, lists.filter(pa.array(took))))


def prepare(con: duckdb.DuckDBPyConnection, source: pa.Table, mode: str) -> FastBatch:
    """Take what the fast path can from a batch of JSON texts (``source.raw``; ``mode`` as in
    :class:`~forensics.loaders.traces.jaeger_zipkin.common.Source`, the same for every mode here); a huge array of spans is
    converted a run of spans at a time."""
    raw = source.column("raw").combine_chunks()
    candidate = (mask(pc.starts_with(raw, "{")) | mask(pc.starts_with(raw, "["))) & ~rows_containing(raw, *_V1_MARKS)
    rows = np.flatnonzero(candidate)
    if not len(rows):
        return FastBatch.nothing(len(raw))
    texts = raw if len(rows) == len(raw) else raw.take(pa.array(rows))
    part = convert_in_groups(texts, lambda group: _convert(con, group), lambda text, size: split_array(text, None, size))
    return keep_good(rows, len(raw), part)
