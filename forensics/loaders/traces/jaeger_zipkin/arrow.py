"""What the Jaeger and Zipkin Arrow fast paths share (:mod:`forensics.loaders.traces.jaeger.arrow`, :mod:`forensics.loaders.traces.zipkin.arrow`).

The general path (the loaders' SQL) reads every JSON document several times (shape tests, span
enumeration, one ``json_transform`` per trace and per span) and builds MAPs with per-entry
lambdas. A fast path instead

1. parses each JSON text of a batch (a line, an array element, a document) once, with DuckDB's
   ``json_transform`` into the *same* structures the SQL uses (:func:`transform`), so values are
   read and rendered exactly as there (numbers as text, duplicate keys, ``null``...); about
   :data:`GROUP_BYTES` of text at a time, a huge trace cut into runs of its spans
   (:func:`convert_in_groups`), so memory does not grow with the batch or the trace,
2. flattens traces, spans, tags and processes with list offsets (:func:`unnest`),
3. computes the canonical columns in Arrow (:class:`Entries` for the ``kv_map_sql`` MAPs, ids,
   times), evaluating the few SQL expressions it does not re-implement with DuckDB, once per
   distinct input (:class:`Vocabulary`: kind and status vocabularies) or only for the spans
   that need them (:func:`on_rows`: events and links JSON),
4. stores the rows with :func:`~forensics.loaders.core.arrow_spans.insert_spans` (:class:`FastBatch`).

A JSON text is taken only when every span in it converts exactly and none would be rejected;
otherwise the whole text goes to the general path, which stays the reference (and produces the
rejects with their reasons).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.loaders.core.arrow_spans import (Staged, bad_key_rows, insert_spans, invalid_rows, kv_map, list_offsets, promoted_text,
                           scratch_query, with_resources)
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.json_stream import ArrayRuns
from forensics.loaders.core.semconv import PRECOMPUTED_PREFIX, PROMOTED

#: DuckDB parses one chunk of this many bytes of JSON text per thread
_CHUNK_BYTES = 1 << 20
_HEX = "^[0-9a-fA-F]{1,%d}$"
#: microseconds as ``micros_sql`` reads them when the text is a plain decimal integer
_MICROS = "^[0-9]{1,18}$"
_DURATION = "^(-?0*[1-9][0-9]{0,14}|0{1,15})$"  # not -0: its DOUBLE keeps the sign
_UTC_US = pa.timestamp("us", tz="UTC")


def mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy (NULL -> False)."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def fields(struct: pa.Array) -> dict[str, pa.Array]:
    """The child arrays of a struct array, NULL where the struct itself is NULL."""
    return {f.name: child for f, child in zip(struct.type, struct.flatten())}


def unnest(lists: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(values, parent row, 0-based position in the parent's list) of a list or map array (a
    NULL list has no values)."""
    if pa.types.is_map(lists.type):
        lists = lists.cast(pa.list_(pa.struct([("key", lists.type.key_type), ("value", lists.type.item_type)])))
    values = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy().astype(np.int64)
    return values, parents, rank_in_group(parents)


def rank_in_group(groups: np.ndarray) -> np.ndarray:
    """0-based position of each item among the items of its group (``groups`` sorted)."""
    return np.arange(len(groups), dtype=np.int64) - np.searchsorted(groups, groups)


def _scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """An array of length ``n`` with ``values`` at ``rows`` and NULL elsewhere."""
    pick = np.full(n, -1, dtype=np.int64)
    pick[rows] = np.arange(len(rows))
    return values.take(pa.array(pick, mask=pick < 0))


def run_sql(con: duckdb.DuckDBPyConnection, columns: dict[str, pa.Array], select: str, *,
            chunk_rows: np.ndarray | None = None) -> pa.Table:
    """``SELECT {select} FROM`` a table of ``columns`` (one row per input row, in order), on the
    fast path's scratch connection ``con`` (an in-memory DuckDB, not the case's: a batch is
    converted on a second thread while the previous one is stored); ``chunk_rows``: row offsets
    where a new record batch starts (DuckDB reads batches in parallel)."""
    n = len(next(iter(columns.values())))
    table = pa.table({**columns, "_row": np.arange(n, dtype=np.int64)})
    if chunk_rows is not None and len(chunk_rows) > 1:
        bounds = np.append(chunk_rows, n)
        table = pa.Table.from_batches([b for a, z in zip(bounds[:-1], bounds[1:]) if z > a
                                       for b in table.slice(int(a), int(z - a)).to_batches()])
    out = scratch_query(con, table, lambda name: f"SELECT _row, {select} FROM {name}")
    rows = out.column("_row").to_numpy()
    if len(rows) > 1 and not (rows[1:] > rows[:-1]).all():
        out = out.take(pa.array(np.argsort(rows)))
    return out.drop_columns(["_row"])


def rows_containing(raw: pa.Array, *needles: str) -> np.ndarray:
    """Mask of the texts that contain one of the strings ``needles`` (one ``bytes.find`` per
    needle over the whole text buffer first: usually nothing matches)."""
    data = raw.buffers()[2]
    found = np.zeros(len(raw), dtype=bool)
    if data is None:
        return found
    text = data.to_pybytes()
    for needle in needles:
        if text.find(needle.encode()) >= 0:
            found |= mask(pc.match_substring(raw, needle))
    return found


def transform(con: duckdb.DuckDBPyConnection, raw: pa.Array, expr: str) -> pa.Array:
    """``expr`` (SQL over the JSON text column ``raw``) for every text of ``raw`` (not empty), in
    order."""
    lengths = pc.binary_length(raw).fill_null(0).to_numpy().astype(np.int64)
    ends = np.cumsum(lengths)
    chunks = np.unique(np.searchsorted(ends, np.arange(0, int(ends[-1]), _CHUNK_BYTES), side="right"))
    chunks = chunks[chunks < len(raw)]
    return run_sql(con, {"raw": raw}, f"{expr} AS j", chunk_rows=np.unique(np.append(0, chunks))).column("j").combine_chunks()


def distinct_rows(columns: list[pa.Array]) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct combination of the ``columns``' values, NULL included; the
    combination of each row as an index into the first array)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for values in columns:
        enc = pc.dictionary_encode(values)
        key = key * (len(enc.dictionary) + 1) + enc.indices.fill_null(-1).to_numpy().astype(np.int64) + 1
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


class Vocabulary:
    """SQL expressions evaluated once per distinct input (kind and status vocabularies, endpoint
    names: exact, and cheap because inputs repeat): :meth:`add` each, then :meth:`run`. Results
    are remembered across batches (the expressions are pure), so DuckDB only sees inputs not
    met before, all in one query."""

    _known: dict[tuple[str, tuple], object] = {}
    _MAX_KNOWN = 100_000

    def __init__(self) -> None:
        self._jobs: list[tuple[dict[str, pa.Array], Callable[[dict[str, str]], str]]] = []

    def add(self, columns: dict[str, pa.Array], expr: Callable[[dict[str, str]], str]) -> int:
        """Register ``expr(names)`` (SQL over the columns, named by ``names[key]``); returns the
        index of its result in :meth:`run`'s list."""
        self._jobs.append((columns, expr))
        return len(self._jobs) - 1

    def run(self, con: duckdb.DuckDBPyConnection) -> list[pa.Array]:
        """Each expression's text per input row."""
        known = Vocabulary._known
        if len(known) > Vocabulary._MAX_KNOWN:
            known.clear()
        plans, todo = [], []
        for j, (columns, expr) in enumerate(self._jobs):
            first, inverse = distinct_rows(list(columns.values()))
            inputs = list(zip(*(v.take(pa.array(first)).to_pylist() for v in columns.values())))  # per distinct input
            key = expr({k: f"_{k}" for k in columns})
            plans.append((key, inputs, inverse))
            todo += [(j, i) for i, values in enumerate(inputs) if (key, values) not in known]
        if todo:
            arrays = {"_job": pa.array([j for j, _ in todo], pa.int64())}
            cases = []
            for j, (columns, expr) in enumerate(self._jobs):
                names = {k: f"_j{j}_{k}" for k in columns}
                for n, (k, values) in enumerate(columns.items()):
                    arrays[names[k]] = pa.array([plans[j][1][i][n] if jj == j else None for jj, i in todo], values.type)
                cases.append(f"WHEN {j} THEN ({expr(names)})::VARCHAR")
            out = run_sql(con, arrays, f"CASE _job {' '.join(cases)} END AS v").column("v").to_pylist()
            for (j, i), value in zip(todo, out):
                known[(plans[j][0], plans[j][1][i])] = value
        return [pa.array([known[(key, values)] for values in inputs], pa.string()).take(pa.array(inverse))
                for key, inputs, inverse in plans]


def on_rows(con: duckdb.DuckDBPyConnection, n: int, rows: np.ndarray, columns: dict[str, pa.Array], exprs: dict[str, str]) -> dict[str, pa.Array]:
    """``exprs`` (name -> SQL over ``columns``, which have one value per row of ``rows``)
    evaluated as text for ``rows`` only; each result has length ``n``, NULL outside ``rows``."""
    if not len(rows):
        return {k: pa.nulls(n, pa.string()) for k in exprs}
    out = run_sql(con, columns, ", ".join(f"({e})::VARCHAR AS {k}" for k, e in exprs.items()))
    return {k: _scatter(out.column(k).combine_chunks(), rows, n) for k in exprs}


def hex_id(values: pa.Array, width: int) -> tuple[pa.Array, np.ndarray]:
    """(``hex_sql(values, width)`` for hex text, mask of non-NULL values that are not 1..width
    hex digits: their normalization is left to the general path)."""
    ok = mask(pc.match_substring_regex(values, _HEX % width))
    bad = ~ok & mask(pc.is_valid(values))
    return pc.utf8_lpad(pc.ascii_lower(values), width=width, padding="0"), bad


def span_times(start: pa.Array, duration: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
    """(start_time, end_time, duration_ms as ``micros_sql``/``ts_sql`` compute them from
    ``startTime``/``timestamp`` and ``duration`` in microseconds, mask of spans whose start is
    missing or zero (rejected) or either is not plain decimal text)."""
    good_start = mask(pc.match_substring_regex(start, _MICROS))
    good_duration = mask(pc.match_substring_regex(duration, _DURATION)) | ~mask(pc.is_valid(duration))
    start_us = pc.cast(pc.if_else(pa.array(good_start), start, None), pa.int64())
    start_us = pc.if_else(pc.greater(start_us, 0), start_us, None)
    duration_us = pc.cast(pc.if_else(pa.array(good_duration), duration, None), pa.int64())
    end_us = pc.add(start_us, duration_us)
    end_us = pc.if_else(pc.greater(end_us, 0), end_us, None)
    bad = ~good_start | ~good_duration | ~mask(pc.is_valid(start_us))
    return {"start_time": start_us.cast(_UTC_US), "end_time": end_us.cast(_UTC_US),
            "duration_ms": pc.divide(duration_us.cast(pa.float64()), 1000.0)}, bad


class Entries:
    """Key/value lists per row, flattened (``parents`` sorted), with ``kv_map_sql``'s rules:
    entries without a key are dropped and the first of duplicate keys wins."""

    def __init__(self, n: int, parents: np.ndarray, keys: pa.Array, values: pa.Array, *, unique: bool = False) -> None:
        """``unique``: the caller knows every key is set and unique within its row (a MAP's)."""
        keys, values = keys.cast(pa.string()), values.cast(pa.string())
        bad = np.zeros(n, dtype=bool) if unique else bad_key_rows(n, parents, keys)
        if bad.any():
            keep = ~bad[parents]
            sel = np.flatnonzero(bad[parents] & mask(pc.is_valid(keys)))
            codes = pc.dictionary_encode(keys.take(pa.array(sel))).indices.to_numpy().astype(np.int64)
            _, first = np.unique(parents[sel] * (int(codes.max()) + 1) + codes, return_index=True)
            keep[sel[first]] = True
            keep_at = pa.array(keep)
            parents, keys, values = parents[keep], keys.filter(keep_at), values.filter(keep_at)
        self.n, self.parents, self.keys, self.values = n, parents, keys, values
        self._encoded: pa.DictionaryArray | None = None

    def _entries(self, key: str) -> np.ndarray:
        """Indices of the entries named ``key``."""
        if self._encoded is None:  # once, for all lookups
            self._encoded = pc.dictionary_encode(self.keys)
            self._codes = self._encoded.indices.to_numpy(zero_copy_only=False)
        code = pc.index(self._encoded.dictionary, key).as_py()
        return np.zeros(0, np.int64) if code < 0 else np.flatnonzero(self._codes == code)

    @classmethod
    def of_lists(cls, lists: pa.Array) -> Entries:
        """From a list of ``{key, value}`` structs (or a MAP) per row."""
        items, parents, _ = unnest(lists)
        parts = fields(items)
        return cls(len(lists), parents, parts["key"], parts["value"])

    @classmethod
    def concat(cls, n: int, parts: list[tuple[np.ndarray, pa.Array, pa.Array]], *, unique: bool = False) -> Entries:
        """The entries of ``parts`` (parents, keys, values), a row's entries of one part after
        those of the parts before it (``unique`` as for the constructor)."""
        counts = [np.bincount(p, minlength=n) for p, _, _ in parts]
        before = np.zeros(n, dtype=np.int64)
        row_start = list_offsets(np.sum(counts, axis=0))[:-1].astype(np.int64)
        slots = []
        for (p, _, _), c in zip(parts, counts):
            slots.append(row_start[p] + before[p] + rank_in_group(p))
            before += c
        slot = np.concatenate(slots)
        perm = np.empty(len(slot), dtype=np.int64)
        perm[slot] = np.arange(len(slot))
        take = pa.array(perm)
        parents = np.concatenate([p for p, _, _ in parts])[perm]
        keys = pa.concat_arrays([k.cast(pa.string()) for _, k, _ in parts]).take(take)
        values = pa.concat_arrays([v.cast(pa.string()) for _, _, v in parts]).take(take)
        return cls(n, parents, keys, values, unique=unique)

    def lengths(self) -> np.ndarray:
        return np.bincount(self.parents, minlength=self.n)

    def map(self) -> pa.MapArray:
        return kv_map(self.lengths(), self.keys, self.values)

    def has(self, key: str) -> np.ndarray:
        """``map_contains(map, key)`` per row."""
        out = np.zeros(self.n, dtype=bool)
        out[self.parents[self._entries(key)]] = True
        return out

    def value(self, key: str) -> pa.Array:
        """``map[key]`` per row (NULL where absent)."""
        sel = self._entries(key)
        return _scatter(self.values.take(pa.array(sel)), self.parents[sel], self.n)

    def first_value(self, *keys: str) -> pa.Array:
        """``coalesce(map[k1], map[k2], ...)``."""
        return pc.coalesce(*(self.value(k) for k in keys))

    def promoted(self) -> dict[str, pa.Array]:
        return promoted_text(self.n, self.parents, self.keys, self.values)


@dataclass
class FastBatch:
    """What a fast path took from a batch of JSON texts (the rows of a source table): ``handled``
    and ``counts`` (spans per text) per row, the canonical span rows (``_elem``: the source row
    of each, ``_index``: its 0-based position among that text's spans), their resource columns
    copied in (:func:`~forensics.loaders.core.arrow_spans.with_resources`)."""

    handled: np.ndarray
    counts: np.ndarray
    spans: Staged

    @classmethod
    def nothing(cls, n: int) -> FastBatch:
        """Nothing taken from a batch of ``n`` texts."""
        return cls(np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), Staged(pa.table({"_elem": pa.array([], pa.int64())})))

    def insert(self, ctx: LoadContext, source: pa.Table) -> int:
        """Store the span rows with their provenance from ``source`` (``line``; ``base``, the
        document-wide index of a text's first span)."""
        if not self.spans.num_rows:
            return 0
        spans = self.spans.table
        elem = spans.column("_elem")
        table = spans.drop_columns(["_elem", "_index"])
        table = table.append_column("source_line", source.column("line").take(elem))
        base = source.column("base").take(elem)
        table = table.append_column("source_offset", pc.add(base, spans.column("_index")))
        return insert_spans(ctx, self.spans.with_table(table))


@dataclass
class Converted:
    """What a format's converter made of a list of JSON texts: the span rows (``_elem``: index of
    the text, ``_index``: position among its spans; ``rid`` into ``resources``), spans per text,
    the texts whose shape it reads (``taken``), and the spans it cannot convert exactly (``bad``)."""

    table: pa.Table
    resources: pa.Table | None
    counts: np.ndarray
    taken: np.ndarray
    bad: np.ndarray


#: JSON text converted at a time (bounds the memory of a batch); a longer text is cut into runs of
#: RUN_BYTES (a huge trace: its conversion takes memory in proportion)
GROUP_BYTES = 4 << 20
RUN_BYTES = 1 << 20
#: span columns left out of a group where they are all NULL (insert_spans stores NULL for them)
_OPTIONAL = ("status_message", "scope_name", "scope_version", "events", "links", "service_version", "host_name",
             *(PRECOMPUTED_PREFIX + c for c in PROMOTED))


def _text(strings: pa.Array, i: int) -> memoryview:
    """The bytes of ``strings[i]``, without a copy."""
    width = np.int64 if pa.types.is_large_string(strings.type) or pa.types.is_large_binary(strings.type) else np.int32
    lo, hi = np.frombuffer(strings.buffers()[1], dtype=width)[strings.offset + i: strings.offset + i + 2]
    return memoryview(strings.buffers()[2])[int(lo): int(hi)]


def _groups(raw: pa.Array, split: Callable[[memoryview, int], ArrayRuns | None]) -> Iterator[tuple[pa.Array, np.ndarray, np.ndarray]]:
    """(texts to convert together, the text of ``raw`` each comes from, index of its first span
    there): about :data:`GROUP_BYTES` of ``raw`` at a time; a text larger than that is cut by
    ``split`` into runs of :data:`RUN_BYTES` (when it can) that come one at a time."""
    lengths = pc.binary_length(raw).to_numpy(zero_copy_only=False).astype(np.int64)
    at = 0
    for i in [*np.flatnonzero(lengths > GROUP_BYTES).tolist(), len(raw)]:  # per huge text
        ends = np.cumsum(lengths[at:i])
        bounds = np.unique(np.concatenate(([0], np.searchsorted(ends, np.arange(GROUP_BYTES, ends[-1] if len(ends) else 0,
                                                                               GROUP_BYTES), side="right"), [i - at])))
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield raw.slice(at + int(a), int(b - a)), np.arange(at + a, at + b), np.zeros(b - a, dtype=np.int64)
        if i == len(raw):
            return
        runs = split(_text(raw, i), RUN_BYTES)
        if runs is None:
            yield raw.slice(i, 1), np.array([i]), np.zeros(1, dtype=np.int64)
        else:
            for k in range(len(runs)):
                yield pa.array([runs.piece(k)], pa.large_binary()).cast(raw.type), np.array([i]), runs.firsts[k: k + 1]
        at = i + 1


def convert_in_groups(raw: pa.Array, convert: Callable[[pa.Array], Converted],
                      split: Callable[[memoryview, int], ArrayRuns | None]) -> Converted:
    """``convert`` over about :data:`GROUP_BYTES` of the texts ``raw`` at a time (a huge text cut
    into pieces by ``split``); the results put together as if converted at once."""
    tables, resources, bad, rid_at = [], [], [], 0
    counts = np.zeros(len(raw), dtype=np.int64)
    taken = np.ones(len(raw), dtype=bool)
    for texts, of_text, first in _groups(raw, split):
        part = convert(texts)
        piece = part.table.column("_elem").to_numpy()
        table = part.table.set_column(part.table.schema.get_field_index("_elem"), "_elem", pa.array(of_text[piece]))
        table = table.set_column(table.schema.get_field_index("_index"), "_index",
                                 pc.add(table.column("_index"), pa.array(first[piece])))
        if part.resources is not None:
            table = table.set_column(table.schema.get_field_index("rid"), "rid", pc.add(table.column("rid"), rid_at))
            resources.append(part.resources.set_column(0, "rid", pc.add(part.resources.column("rid"), rid_at)))
            rid_at += part.resources.num_rows
        tables.append(table.drop_columns([c for c in _OPTIONAL if c in table.column_names
                                          and table.column(c).null_count == table.num_rows]))
        bad.append(part.bad)
        np.add.at(counts, of_text, part.counts)
        np.logical_and.at(taken, of_text, part.taken)
    return Converted(pa.concat_tables(tables, promote_options="permissive"),
                     pa.concat_tables(resources, promote_options="permissive") if resources else None, counts, taken,
                     np.concatenate(bad))


def converted(texts: int, took: np.ndarray, table: pa.Table, resources: pa.Table | None, counts: np.ndarray,
              bad: np.ndarray) -> Converted:
    """A :class:`Converted` of ``texts`` texts from the rows of the ``took`` ones (``table``'s
    ``_elem`` and ``counts`` index those)."""
    taken = np.flatnonzero(took)
    table = table.set_column(table.schema.get_field_index("_elem"), "_elem", pa.array(taken[table.column("_elem").to_numpy()]))
    all_counts = np.zeros(texts, dtype=np.int64)
    all_counts[taken] = counts
    return Converted(table, resources, all_counts, took, bad)


def keep_good(rows: np.ndarray, n_source: int, part: Converted) -> FastBatch:
    """The :class:`FastBatch` of the texts ``rows`` (source rows) converted as ``part``: those
    taken whose spans all convert exactly and pass :func:`invalid_rows`."""
    table = part.table
    elem = table.column("_elem").to_numpy()
    invalid = invalid_rows(table)
    bad_text = ~part.taken
    bad_text[elem[part.bad | invalid]] = True
    handled = np.zeros(n_source, dtype=bool)
    handled[rows[~bad_text]] = True
    counts = np.zeros(n_source, dtype=np.int64)
    counts[rows] = part.counts
    keep = ~bad_text[elem]
    if bad_text.any():
        table = table.filter(pa.array(keep))
    table = table.set_column(table.schema.get_field_index("_elem"), "_elem", pa.array(rows[table.column("_elem").to_numpy()]))
    pa.default_memory_pool().release_unused()  # the conversion's scratch memory, before DuckDB needs its own
    if part.resources is not None:
        table = with_resources(table, part.resources)
    return FastBatch(handled, counts, Staged.of(table, invalid=bool(invalid[keep].any())))  # checked once, above
