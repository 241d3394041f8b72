"""Columnar files: Parquet and Arrow IPC (file and stream), read as Arrow record batches."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from forensics.errors import Reason

if TYPE_CHECKING:
    from .context import LoadContext

#: rows read per Arrow batch
BATCH_ROWS = 256 * 1024
PARQUET_MAGIC, ARROW_MAGIC, STREAM_MAGIC = b"PAR1", b"ARROW1", b"\xff\xff\xff\xff"
#: what a columnar file starts with
COLUMNAR_MAGIC = (PARQUET_MAGIC, ARROW_MAGIC, STREAM_MAGIC)


def schema_of(path: str) -> pa.Schema | None:
    """The Arrow schema of a Parquet or Arrow IPC file, or None when it is neither (or broken)."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
        if magic.startswith(PARQUET_MAGIC):
            return pq.read_schema(path)
        if magic.startswith(ARROW_MAGIC):
            return ipc.open_file(path).schema
        if magic.startswith(STREAM_MAGIC):
            with ipc.open_stream(path) as reader:
                return reader.schema
    except (OSError, pa.ArrowException):
        return None
    return None


def batches(path: str) -> Iterator[pa.RecordBatch]:
    """The file's rows, :data:`BATCH_ROWS` at a time."""
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic.startswith(PARQUET_MAGIC):
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):  # one at a time: a damaged group stops at its first row
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
    elif magic.startswith(ARROW_MAGIC):
        reader = ipc.open_file(path)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        with ipc.open_stream(path) as stream:
            yield from stream


def column_sql(i: int) -> str:
    """SQL of column ``i`` of a batch from :func:`row_batches` (aliased ``t``)."""
    return f"t.c{i}"


def raw_json_sql(names: list[str]) -> tuple[str, dict[str, str]]:
    """``(SQL, bind parameters)`` of a row of a :func:`row_batches` batch as JSON text keyed by
    the file's column names (names are user data: passed as parameters, never spliced)."""
    sql = "CAST(json_object(" + ", ".join(f"$_k{i}, {column_sql(i)}" for i in range(len(names))) + ") AS VARCHAR)"
    return sql, {f"_k{i}": n for i, n in enumerate(names)}


def row_batches(ctx: "LoadContext") -> Iterator[tuple[int, pa.Table]]:
    """``(offset of the first row, rows)`` of the file ``ctx`` loads, columns named by position
    (``c0``, ``c1``...: :func:`column_sql`; a file's own names may be anything, repeated
    included) plus ``_row``, each row's 0-based offset. A file damaged or cut short stops with
    one ``truncated`` reject at the offset of the first row that could not be read (the rows
    before it are loaded)."""
    first = 0
    try:
        for batch in batches(ctx.path):
            table = pa.Table.from_batches([batch])
            table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
            yield first, table.append_column("_row", pa.array(range(first, first + table.num_rows), pa.int64()))
            first += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        ctx.reject(Reason.TRUNCATED, f"the rows from offset {first} on cannot be read, the file is damaged or cut "
                   f"short ({type(exc).__name__}: {str(exc)[:200]})", offset=first)
