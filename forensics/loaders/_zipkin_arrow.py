"""Arrow fast path of the Zipkin v2 JSON loader (see :mod:`._jaeger_zipkin_arrow` for the method).

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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import zipkin as sql
from ._jaeger_zipkin_arrow import (GROUP_BYTES, Converted, Entries, FastBatch, Vocabulary, convert_in_groups, converted,
                                   distinct_rows, fields, hex_id, keep_good, mask, on_rows, rows_containing, span_times,
                                   transform, unnest)
from ._jaeger_zipkin_stream import split_array
from ._semconv import PRECOMPUTED_PREFIX, SPAN_ID_HEX, TRACE_ID_HEX
from .context import LoadContext

_REMOTE = "zipkin.remote_endpoint."
_LOCAL = "zipkin.local_endpoint."
#: attributes the loader adds to the tags (a tag of the same name is left to the general path)
_ADDED = ("zipkin.debug", "zipkin.shared", _REMOTE + "service_name", _REMOTE + "ipv4", _REMOTE + "ipv6", _REMOTE + "port")
_V1_MARKS = '"(binaryAnnotations|endpoint)"'


@cache
def _expr() -> str:
    """The spans of a text: an array of span objects, or one."""
    return (f"CASE WHEN starts_with(raw, '[') THEN try(json_transform(raw, '[{sql._SPAN}]')) "
            f"ELSE [try(json_transform(raw, '{sql._SPAN}'))] END")


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
                      "resource_attributes": Entries.concat(len(first), parts).map(), "service": service})
    return table, rid


def _span_rows(ctx: LoadContext, lists: pa.Array) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
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
    tags = Entries.of_lists(sp["tags"])
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
    service, remote_service, debug, shared, status, kind = vocabulary.run(ctx)
    added = [debug, shared, remote["serviceName"], remote["ipv4"], remote["ipv6"], remote["port"]]
    parts = [(tags.parents, tags.keys, tags.values)]
    for key, values in zip(_ADDED, added):
        rows = np.flatnonzero(mask(pc.is_valid(values)))
        parts.append((rows, pa.array([key] * len(rows)), values.take(pa.array(rows))))
    attributes = Entries.concat(n, parts)
    annotated = np.flatnonzero(mask(pc.greater(pc.list_value_length(sp["annotations"]), 0)))
    events = on_rows(ctx, n, annotated, {"annotations": sp["annotations"].take(pa.array(annotated))},
                     {"events": sql.events_sql("annotations")})["events"]
    resources, rid = _resources(local, service)
    error = tags.value("error")
    promoted = attributes.promoted()
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


def _convert(ctx: LoadContext, texts: pa.Array) -> Converted:
    """The spans of the JSON texts that are spans or arrays of spans (see :class:`Converted`)."""
    lists = transform(ctx, texts, _expr())
    took = mask(pc.is_valid(lists))
    return converted(len(texts), took, *_span_rows(ctx, lists.filter(pa.array(took))))


def prepare(ctx: LoadContext, source: pa.Table, mode: str) -> FastBatch:
    """Take what the fast path can from a batch of JSON texts (``source.raw``; ``mode`` as in
    :class:`~._jaeger_zipkin.Source`, the same for every mode here); a huge array of spans is
    converted a run of spans at a time."""
    raw = source.column("raw").combine_chunks()
    candidate = (mask(pc.starts_with(raw, "{")) | mask(pc.starts_with(raw, "["))) & ~rows_containing(raw, _V1_MARKS)
    rows = np.flatnonzero(candidate)
    if not len(rows):
        return FastBatch.nothing(len(raw))
    texts = raw if len(rows) == len(raw) else raw.take(pa.array(rows))
    part = convert_in_groups(texts, lambda group: _convert(ctx, group), lambda text: split_array(text, None, GROUP_BYTES))
    return keep_good(rows, len(raw), part)
