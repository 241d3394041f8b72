"""Canonical span rows built in Arrow: attribute MAPs, promoted columns, times, validation, insert.

The trace loaders' fast paths (OTLP collector lines, Jaeger, Zipkin) flatten their records with
pyarrow and hand the canonical columns to :func:`insert_spans`, which stores them in one statement.
Nothing here runs Python per span. The rules are those of the SQL path
(:func:`~forensics.loaders.core.semconv.finalize_spans_sql`): a fast path checks its rows with :func:`invalid_rows` and
sends the records that would be rejected (or that it cannot convert exactly) to its general path,
which produces the reject with its reason; :func:`insert_spans` refuses an invalid row (an internal
error rolls the file back) rather than storing or dropping it silently.
"""
from __future__ import annotations

import itertools
import os
import tempfile
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forensics import schema
from forensics._db import query_arrow

from .context import LoadContext
from .semconv import INTEGER_COLUMNS, PRECOMPUTED_PREFIX, PROMOTED, SPAN_ID_HEX, TRACE_ID_HEX

#: OTLP SpanKind / StatusCode integers -> canonical names (index = code)
KIND_NAMES = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_NAMES = ("unset", "ok", "error")
_TRACE_RE = f"^[0-9a-f]{{{TRACE_ID_HEX}}}$"
_SPAN_RE = f"^[0-9a-f]{{{SPAN_ID_HEX}}}$"
_MAX_DEDUPE_CELLS = 50_000_000
#: tables with fewer rows hand their MAP columns to DuckDB through Arrow (see :class:`Staged`)
STAGE_MIN_ROWS = 1000
_names = itertools.count()
_Item = TypeVar("_Item")
_Done = TypeVar("_Done")


def scratch_query(con: duckdb.DuckDBPyConnection, table: pa.Table, query: Callable[[str], str]) -> pa.Table:
    """``query(name)`` (SQL reading the table by that name) over an Arrow table, on a fast path's scratch
    connection: an in-memory DuckDB of its own, so a block can be converted on a second thread
    while the case's connection stores the previous one (the table is registered as a view,
    without a copy; the case's connection would have to copy it, see ``LoadContext.register``)."""
    name = f"_scratch_{next(_names)}"
    con.register(name, table)
    try:
        return query_arrow(con, query(name))
    finally:
        con.unregister(name)


def prepared_ahead(items: Iterable[_Item], prepare: Callable[[duckdb.DuckDBPyConnection, _Item], _Done],
                   thread_name: str) -> Iterator[tuple[_Item, _Done]]:
    """Each item with ``prepare(scratch, item)``, pipelined: while the caller stores one item's rows
    on the case's connection, the next item is prepared on a second thread with a scratch
    connection of its own (pyarrow and DuckDB release the GIL). Two items are in flight at most."""
    scratch = duckdb.connect(config={"threads": 1})
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
    pending: tuple[_Item, Future] | None = None
    try:
        for item in items:
            future = pool.submit(prepare, scratch, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        scratch.close()


def list_offsets(lengths: np.ndarray) -> np.ndarray:
    """int32 offsets (n + 1) of lists with the given lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def bad_key_rows(n: int, parents: np.ndarray, keys: pa.Array) -> np.ndarray:
    """Boolean mask of the ``n`` rows whose key/value list has a NULL key or a key twice
    (``parents[i]`` is the row of entry ``i``): a MAP cannot hold them as they are."""
    bad = np.zeros(n, dtype=bool)
    if not len(keys):
        return bad
    if keys.null_count:
        bad[parents[pc.is_null(keys).to_numpy(zero_copy_only=False)]] = True
    codes = pc.dictionary_encode(keys.fill_null("")).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    k = int(codes.max()) + 1
    if n * k <= _MAX_DEDUPE_CELLS:
        counts = np.bincount(parents * k + codes, minlength=1)
        dup_cells = np.flatnonzero(counts > 1)
        bad[dup_cells // k] = True
    else:  # many rows and keys: sort the (row, key) pairs instead of counting a dense grid
        pair = parents.astype(np.int64) * k + codes
        pair.sort()
        bad[pair[1:][pair[1:] == pair[:-1]] // k] = True
    return bad


def kv_map(lengths: np.ndarray, keys: pa.Array, text: pa.Array) -> pa.MapArray:
    """MAP(VARCHAR, VARCHAR) per row from flattened keys and value texts (``lengths`` entries
    per row, in order). Keys must be non-NULL and unique within a row (see :func:`bad_key_rows`)."""
    return pa.MapArray.from_arrays(pa.array(list_offsets(lengths)), keys.cast(pa.string()), text.cast(pa.string()))


def promoted_text(n: int, parents: np.ndarray, keys: pa.Array, text: pa.Array) -> dict[str, pa.Array]:
    """The promoted columns (:data:`~forensics.loaders.core.semconv.PROMOTED`) as text, named ``_p_<column>``: per row,
    the value of the first of the column's keys whose value is not NULL, as
    ``coalesce(attributes['k1'], attributes['k2'], ...)`` gives."""
    wanted = sorted({k for ks in PROMOTED.values() for k in ks})
    index = pc.fill_null(pc.index_in(keys, value_set=pa.array(wanted, pa.string())), -1)
    found = pc.and_(pc.greater_equal(index, 0), pc.is_valid(text))
    entries = np.flatnonzero(found.to_numpy(zero_copy_only=False))  # entries of a wanted key with a value
    index = index.to_numpy(zero_copy_only=False)[entries]
    position = {key: i for i, key in enumerate(wanted)}
    text = text.cast(pa.string())
    out = {}
    for col, ks in PROMOTED.items():
        pick = np.full(n, -1, dtype=np.int64)
        for key in reversed(ks):  # the first key wins: write it last
            sel = entries[index == position[key]]
            pick[parents[sel]] = sel
        out[PRECOMPUTED_PREFIX + col] = text.take(pa.array(pick, mask=pick < 0))
    return out


def times_from_ns(start_ns: pa.Array, end_ns: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(start_time, end_time, duration_ms) from unix nanoseconds (int64) as the SQL path computes
    them: a time <= 0 is NULL, timestamps are truncated to microseconds (UTC), the duration is
    ``(end - start) / 1e6`` milliseconds with full nanosecond precision."""
    start_ns = pc.if_else(pc.greater(start_ns, 0), start_ns, None)
    end_ns = pc.if_else(pc.greater(end_ns, 0), end_ns, None)
    ts = pa.timestamp("us", tz="UTC")
    start = pc.divide(start_ns, 1000).cast(pa.int64()).cast(ts)
    end = pc.divide(end_ns, 1000).cast(pa.int64()).cast(ts)
    duration = pc.divide(pc.subtract(end_ns, start_ns).cast(pa.float64(), safe=False), 1e6)
    return start, end, duration


def code_names(codes: pa.Array, names: tuple[str, ...]) -> pa.Array:
    """Canonical names of integer codes (NULL -> names[0]; an unknown code -> NULL, rejected)."""
    codes = codes.fill_null(0)
    known = pc.and_(pc.greater_equal(codes, 0), pc.less(codes, len(names)))
    return pa.array(names, pa.string()).take(pc.if_else(known, codes, None))


def invalid_rows(spans: pa.Table) -> np.ndarray:
    """Boolean mask of rows :func:`~forensics.loaders.core.semconv.finalize_spans_sql` would reject: ids that are not
    lowercase hex of full width or are all zero, a parent id that is not 16 hex digits, no start
    time, a kind or status that is not canonical (NULL)."""
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(spans["trace_id"], _TRACE_RE), False))
    bad = pc.or_(bad, pc.fill_null(pc.equal(spans["trace_id"], "0" * TRACE_ID_HEX), False))
    bad = pc.or_(bad, pc.invert(pc.fill_null(pc.match_substring_regex(spans["span_id"], _SPAN_RE), False)))
    bad = pc.or_(bad, pc.fill_null(pc.equal(spans["span_id"], "0" * SPAN_ID_HEX), False))
    if "parent_span_id" in spans.column_names:
        bad = pc.or_(bad, pc.invert(pc.fill_null(pc.match_substring_regex(spans["parent_span_id"], _SPAN_RE), True)))
    for col in ("start_time", "kind", "status"):
        bad = pc.or_(bad, pc.is_null(spans[col]))
    return np.asarray(pc.fill_null(bad, True).to_numpy(zero_copy_only=False), dtype=bool)


class _TempFile:
    """A temporary file removed when the last object holding this one is garbage collected (or
    at :meth:`remove`)."""

    def __init__(self, prefix: str, suffix: str) -> None:
        fd, self.path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
        os.close(fd)
        self._finalizer = weakref.finalize(self, _remove_quietly, self.path)

    def remove(self) -> None:
        self._finalizer()


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


@dataclass(frozen=True)
class Staged:
    """An Arrow table on its way to :func:`insert_spans`, its MAP columns (``maps``) moved to a
    Parquet file (``table``: the other columns, same rows in the same order).

    DuckDB checks every MAP it imports from Arrow for NULL and duplicate keys, building a value
    per key (about 0.7 µs per entry: with ~20 attributes per span, more than all the rest of
    storing it); its Parquet reader does not. The fast paths establish those rules themselves
    (:func:`bad_key_rows`, :class:`~forensics.loaders.traces.jaeger_zipkin.arrow.Entries`), so their MAPs travel as
    Parquet (uncompressed, written in the fast path's worker thread) and DuckDB joins them back
    by position. Tables under :data:`STAGE_MIN_ROWS` rows, or when the file cannot be written,
    go through Arrow whole.

    ``invalid``: whether a row of a span table fails :func:`invalid_rows`, checked when staged
    (by the fast path's worker thread, off the thread that stores); None for a table without
    span ids.
    """

    table: pa.Table
    maps: tuple[str, ...] = ()
    file: _TempFile | None = None
    invalid: bool | None = None

    @classmethod
    def of(cls, table: pa.Table, invalid: bool | None = None) -> Staged:
        """``table`` staged: its MAP columns written to a temporary Parquet file, its span rows
        checked (``invalid``; given by a caller that has just applied :func:`invalid_rows` to
        these rows)."""
        if invalid is None and "trace_id" in table.column_names:
            invalid = bool(invalid_rows(table).any())
        maps = tuple(f.name for f in table.schema if pa.types.is_map(f.type))
        if not maps or table.num_rows < STAGE_MIN_ROWS or len(maps) == table.num_columns:
            return cls(table, invalid=invalid)
        try:
            file = _TempFile("forensics-maps-", ".parquet")
        except OSError:
            return cls(table, invalid=invalid)
        try:
            pq.write_table(table.select(list(maps)), file.path, compression="none", use_dictionary=False,
                           write_statistics=False)
        except (OSError, pa.ArrowException):  # e.g. no space left in the temporary directory
            file.remove()
            return cls(table, invalid=invalid)
        return cls(table.drop_columns(list(maps)), maps, file, invalid)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def names(self) -> list[str]:
        return self.table.column_names + list(self.maps)

    def with_table(self, table: pa.Table) -> Staged:
        """The same staged MAPs with other columns (``table``: the same rows, in order, with the
        same span columns: ``invalid`` still holds)."""
        return Staged(table, self.maps, self.file, self.invalid)

    def relation(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
        """All the columns as a DuckDB relation on ``con``."""
        rel = con.from_arrow(self.table)
        if self.file is None:
            return rel
        return rel.join(con.read_parquet(self.file.path), how="positional")

    def remove(self) -> None:
        """Remove the Parquet file now (it is removed anyway once no object refers to it)."""
        if self.file is not None:
            self.file.remove()


def with_resources(spans: pa.Table, resources: pa.Table) -> pa.Table:
    """``spans`` with the columns of its resource (``rid``: the ``rid`` of a row of
    ``resources``) copied into each span row, ``rid`` dropped; a column the span rows have
    already is theirs. Copying a resource's MAP in Arrow (on the fast path's worker thread)
    costs less than DuckDB joining it per span in the thread that stores (about 2 µs per span
    with a dozen resource attributes)."""
    take = pc.index_in(spans.column("rid"), value_set=resources.column("rid"))  # NULL: no such resource
    out = spans.drop_columns(["rid"])
    for name in resources.column_names:
        if name != "rid" and name not in out.column_names:
            out = out.append_column(name, resources.column(name).take(take))
    return out


def _select_list(columns: list[str]) -> list[str]:
    """One SELECT expression per column of the spans table, in table order, from the input's
    ``columns``; NULL of the column's type where the input has nothing."""
    have = set(columns)
    types = {c.name: c.type for c in schema.TABLES["spans"]}
    exprs = []
    for col in schema.column_names("spans"):
        pre = PRECOMPUTED_PREFIX + col
        if col in have:
            expr = f'"{col}"'
        elif pre in have:
            expr = f'"{pre}"'
            if col in INTEGER_COLUMNS:
                expr = f"TRY_CAST(TRY_CAST({expr} AS DOUBLE) AS INTEGER)"
        else:
            expr = f"CAST(NULL AS {types[col]})"
        exprs.append(f'{expr} AS "{col}"')
    return exprs


def insert_spans(ctx: LoadContext, spans: pa.Table | Staged) -> int:
    """Insert valid canonical span rows; return how many.

    ``spans`` holds canonical span columns with the Arrow types of
    :func:`forensics.schema.arrow_schema` (any subset; the others are NULL; ``format`` and
    ``source_file`` are filled in), promoted columns either as such or as text ``_p_<column>``
    (converted like the SQL path); resource columns copied per span (:func:`with_resources`).
    Every row must pass :func:`invalid_rows`, and every MAP must have unique, non-NULL keys
    (they are not checked again: see :class:`Staged`; a table not staged yet is staged here).

    The table goes to DuckDB as a relation (``from_arrow``), not a registered view: a view
    registered inside the file's transaction would keep each block alive until COMMIT.
    """
    spans = spans if isinstance(spans, Staged) else Staged.of(spans)
    try:
        n = spans.num_rows
        if not n:
            return 0
        table = spans.table
        if (spans.invalid if spans.invalid is not None else invalid_rows(table).any()):
            raise AssertionError("insert_spans: a row that the span rules reject was passed in (a fast path bug)")
        table = table.drop_columns([c for c in ("format", "source_file") if c in table.column_names])
        table = table.append_column("format", pa.repeat(pa.scalar(ctx.format, pa.string()), n))
        table = table.append_column("source_file", pa.repeat(pa.scalar(ctx.path, pa.string()), n))
        spans = spans.with_table(table)
        spans.relation(ctx.con).project(", ".join(_select_list(spans.names))).insert_into("spans")
    finally:
        spans.remove()
    ctx.loaded["spans"] += n
    return n
