"""SQL fragments shared by the metrics and events loaders: CSV field splitting, flexible times,
label maps and option parsing.

Every function returns a DuckDB SQL *expression* over another expression; none of them splice
values into SQL (values always travel as bind parameters).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.errors import Reason, UsageError

if TYPE_CHECKING:
    from .context import LoadContext

#: one CSV field after a leading comma: a quoted field ("" escapes a quote) or an unquoted one
_CSV_FIELD = r',("(?:[^"]|"")*"|[^,]*)'


def csv_fields_sql(expr: str) -> str:
    """``VARCHAR[]`` of the RFC 4180 fields of one CSV record (quotes removed, ``""`` unescaped,
    unquoted fields trimmed; a quoted field may hold newlines, see :func:`csv_records`)."""
    return (f"list_transform(regexp_extract_all(',' || {expr}, '{_CSV_FIELD}', 1), "
            "lambda f: CASE WHEN f LIKE '\"%\"' AND length(f) >= 2 THEN replace(substr(f, 2, length(f) - 2), '\"\"', '\"') "
            "ELSE trim(f) END)")


def csv_map_sql(fields: str = "f") -> str:
    """MAP of the CSV fields at 1-based positions ``$idx`` under the names ``$names`` (bind
    parameters), leaving out empty cells."""
    return (f"map_from_entries(list_filter(map_entries(map($names, list_transform($idx, lambda i: {fields}[i]))), "
            "lambda e: coalesce(e.value, '') <> ''))")


#: |epoch µs| below this (year 5138) become timestamps; larger values are not times
MAX_EPOCH_US = 10**17


def epoch_us_sql(expr: str) -> str:
    """TIMESTAMPTZ from a numeric expression of epoch microseconds (NULL when out of range)."""
    return (f"(CASE WHEN abs({expr}) < {MAX_EPOCH_US} "
            f"THEN timezone('UTC', make_timestamp(TRY_CAST(round({expr}) AS BIGINT))) END)")


def epoch_seconds_sql(expr: str) -> str:
    """TIMESTAMPTZ from a text holding (fractional) epoch seconds, exact to the microsecond."""
    return epoch_us_sql(f"(TRY_CAST({expr} AS DECIMAL(38, 9)) * 1000000)")


def epoch_ms_sql(expr: str) -> str:
    """TIMESTAMPTZ from a text holding integer epoch milliseconds (NULL when not an integer)."""
    return (f"(CASE WHEN regexp_full_match({expr}, '[-+]?[0-9]{{1,18}}') "
            f"THEN {epoch_us_sql(f'(TRY_CAST({expr} AS DECIMAL(38, 0)) * 1000)')} END)")


_NUMBER = r"[-+]?[0-9]+(\.[0-9]*)?"


def flexible_time_sql(expr: str) -> str:
    """TIMESTAMPTZ from ISO 8601 text (no zone = UTC; ``,`` as decimal mark and a trailing
    `` UTC`` accepted) or epoch numbers.

    Epoch units are chosen by magnitude: below 1e11 seconds, below 1e14 milliseconds, below
    1e17 microseconds, otherwise nanoseconds (the rule of the log loaders: nanoseconds truncate to
    the microsecond, fractions round). NULL when the text is neither.
    """
    x = f"trim(CAST({expr} AS VARCHAR))"
    dec = f"TRY_CAST({x} AS DECIMAL(38, 9))"
    us = (f"CASE WHEN abs({dec}) < 1e11 THEN {dec} * 1000000 WHEN abs({dec}) < 1e14 THEN {dec} * 1000 "
          f"WHEN abs({dec}) < 1e17 THEN {dec} ELSE trunc({dec} / 1000) END")
    return (f"(CASE WHEN regexp_full_match({x}, '{_NUMBER}') "
            f"THEN {epoch_us_sql(f'({us})')} "
            f"ELSE TRY_CAST(regexp_replace(replace({x}, ' UTC', 'Z'), '(:[0-9][0-9]),([0-9])', '\\1.\\2') AS TIMESTAMPTZ) END)")


def json_map_sql(expr: str) -> str:
    """``MAP(VARCHAR, VARCHAR)`` of a JSON object (nested values as JSON text); NULL stays NULL."""
    return f"TRY_CAST(CAST({expr} AS JSON) AS MAP(VARCHAR, VARCHAR))"


def scrape_time(option: Any, path: str) -> tuple[datetime, bool]:
    """The time to give samples that carry none: the ``scrape_time`` option or the file's mtime.

    Returns ``(time, from_mtime)``. ``option`` may be a datetime (naive = UTC), ISO 8601 text or
    epoch seconds.
    """
    if option is None:
        return datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc), True
    if isinstance(option, datetime):
        value = option
    elif isinstance(option, (int, float)):
        value = datetime.fromtimestamp(float(option), tz=timezone.utc)
    else:
        try:
            value = datetime.fromisoformat(str(option).replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"scrape_time={option!r} is not a time; pass ISO 8601 text "
                             "(2026-02-18T10:00:00Z), epoch seconds or a datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc), False


def split_header(line: str) -> list[str]:
    """Column names of a CSV header line (quotes removed, surrounding blanks and a BOM stripped)."""
    import csv

    return [c.strip() for c in next(csv.reader([line.lstrip("\ufeff")]))]


def _quotes(raw: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Number of ``"`` characters of each line."""
    n = pc.utf8_length(raw)
    return (pc.subtract(n, pc.utf8_length(pc.replace_substring(raw, '"', "")))).to_numpy(zero_copy_only=False)


def csv_records(batch: pa.Table, open_tail: pa.Table | None = None) -> tuple[pa.Table, pa.Table | None]:
    """The CSV records of a batch of lines (``line``, ``raw``): lines inside a quoted field that
    spans lines (an odd number of ``"`` opens or closes one) join the line that opened it, with
    their newlines; ``line`` is the record's first line. Returns ``(records, open_tail)``: the lines of a
    record still open at the end of the batch, to pass back with the next batch (None if none).
    """
    if open_tail is not None:
        batch = pa.concat_tables([open_tail, batch])
    odd = _quotes(batch.column("raw")) % 2
    if not odd.any():
        return batch, None
    inside_before = (np.cumsum(odd) - odd) % 2  # the line starts inside a quoted field
    starts = inside_before == 0
    record = np.cumsum(starts)
    tail = None
    if (np.cumsum(odd)[-1] % 2) == 1:  # the last record's quote is still open: wait for more lines
        last_start = int(np.flatnonzero(starts)[-1])
        tail, batch, record = batch.slice(last_start), batch.slice(0, last_start), record[:last_start]
        if batch.num_rows == 0:
            return batch, tail
    text = _joined(batch.column("line").to_numpy(), batch.column("raw"), starts[: batch.num_rows])
    grouped = (pa.table({"_record": record, "line": batch.column("line"), "raw": text})
               .group_by("_record", use_threads=False).aggregate([("line", "min"), ("raw", "list")]))
    records = pa.table({"line": grouped.column("line_min"), "raw": pc.binary_join(grouped.column("raw_list"), "")})
    return records.sort_by("line"), tail


def _joined(lines: np.ndarray, raw: pa.ChunkedArray, starts: np.ndarray) -> pa.Array:
    """Each line prefixed with the newlines between it and the line before in its record (blank
    lines inside a quoted field are not among the lines read)."""
    gaps = np.where(starts, 0, np.diff(lines, prepend=lines[:1]))
    raw = raw.cast(pa.string()) if isinstance(raw, pa.Array) else raw.combine_chunks().cast(pa.string())
    return pc.binary_join_element_wise(pc.binary_repeat(pa.scalar("\n"), pa.array(gaps)), raw, "")


def csv_batches(ctx: "LoadContext") -> Iterator[tuple[list[str], int, pa.Table]]:
    """``(header names, header line, batch of records)`` for a CSV file with a header.

    The header is the first non-blank line; it is removed from the first batch. A record whose
    quoted field spans lines is one row (see :func:`csv_records`); one whose quote never closes
    is rejected (``wrong_shape``, at its first line) with every line after it.
    """
    header: list[str] | None = None
    header_line = 0
    tail: pa.Table | None = None
    for batch in ctx.line_batches():
        if header is None:
            header_line = batch.column("line")[0].as_py()
            header = split_header(batch.column("raw")[0].as_py())
            batch = batch.slice(1)
        records, tail = csv_records(batch, tail)
        if records.num_rows:
            yield header, header_line, records
    if tail is not None:
        text = "".join(_joined(tail.column("line").to_numpy(), tail.column("raw"), np.arange(tail.num_rows) == 0).to_pylist())
        first, last = tail.column("line")[0].as_py(), tail.column("line")[-1].as_py()
        ctx.reject(Reason.WRONG_SHAPE, f"a quoted field opened on line {first} never closes (the file ends on line "
                   f"{last} inside it)", line=first, raw=text)


def pick(names: list[str], candidates: tuple[str, ...]) -> int | None:
    """0-based index of the first column (case-insensitive) named one of ``candidates``."""
    lower = [n.lower() for n in names]
    for cand in candidates:
        if cand in lower:
            return lower.index(cand)
    return None
