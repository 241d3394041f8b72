"""SQL fragments shared by the metrics and events loaders: CSV field splitting, flexible times,
label maps and option parsing.

Every function returns a DuckDB SQL *expression* over another expression; none of them splice
values into SQL (values always travel as bind parameters).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator

import pyarrow as pa

from forensics.errors import UsageError

if TYPE_CHECKING:
    from .context import LoadContext

#: one CSV field after a leading comma: a quoted field ("" escapes a quote) or an unquoted one
_CSV_FIELD = r',("(?:[^"]|"")*"|[^,]*)'


def csv_fields_sql(expr: str) -> str:
    """``VARCHAR[]`` of the RFC 4180 fields of one CSV line (quotes removed, ``""`` unescaped,
    unquoted fields trimmed). Lines never hold embedded newlines here."""
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


def csv_batches(ctx: "LoadContext") -> Iterator[tuple[list[str], int, pa.Table]]:
    """``(header names, header line, batch)`` for every line batch of a CSV file with a header.

    The header is the first non-blank line; it is removed from the first batch.
    """
    header: list[str] | None = None
    header_line = 0
    for batch in ctx.line_batches():
        if header is None:
            header_line = batch.column("line")[0].as_py()
            header = split_header(batch.column("raw")[0].as_py())
            batch = batch.slice(1)
        if batch.num_rows:
            yield header, header_line, batch


def pick(names: list[str], candidates: tuple[str, ...]) -> int | None:
    """0-based index of the first column (case-insensitive) named one of ``candidates``."""
    lower = [n.lower() for n in names]
    for cand in candidates:
        if cand in lower:
            return lower.index(cand)
    return None
