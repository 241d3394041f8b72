"""Duplicate span rows: the same span loaded twice from overlapping exports.

Per-minute dumps, overlapping trace downloads and re-exports repeat spans: the same
(trace_id, span_id, service, kind) appears in several rows (with other ``source_file`` /
``source_line``). A load keeps the spans of one file only when another file (of this load or
an earlier one) holds the same records to the microsecond (:data:`SAME_RECORD`; the copies count
as merged: loaded + merged + rejected = read); rows of one span that differ (a partial flush
beside the complete span, a re-export after an update) and copies inside one file all stay, so the analyses see each span once through :func:`unique_spans`: while it is active, ``spans`` on the case's
connection names a TEMP view of the table without its repeated rows, so every query of the
detectors and analyses (which all read ``spans``) counts a span once. Zipkin's shared
client/server halves have one span id and two kinds: they are two spans, not duplicates.

Which row of a repeated span is kept: the one with an end time, then the longest, then the
first loaded (source file, line, offset), so a partial flush loses to the complete span.
"""
from __future__ import annotations

import itertools
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ._db import run, scalar

if TYPE_CHECKING:
    from .case import Case

#: what makes two span rows the same span
SPAN_IDENTITY = ("trace_id", "span_id", "service", "kind")
#: what makes two span rows copies of one record: the span and what was recorded of it
SAME_RECORD = SPAN_IDENTITY + ("parent_span_id", "name", "start_time", "end_time", "status")
#: which row of a repeated span is kept (the first in this order), over a span aliased ``s``
KEEP_ORDER = ("s.end_time IS NULL, s.duration_ms DESC NULLS LAST, s.source_file NULLS LAST, "
              "s.source_line NULLS LAST, s.source_offset NULLS LAST")

_active: set[int] = set()
_counter = itertools.count()


def duplicate_rows_sql(table: str = "spans") -> str:
    """SELECT of the span rows of ``table`` that repeat an earlier row of the same span
    (columns: ``rid``, the row id, and the four identity columns; DuckDB). Grouping runs on a
    64-bit hash of the identity first, so the exact comparison touches only the candidates."""
    ident = ", ".join(SPAN_IDENTITY)
    s_ident = ", ".join(f"s.{c}" for c in SPAN_IDENTITY)
    return f"""
WITH cand AS (SELECT hash({ident}) AS h FROM {table} GROUP BY 1 HAVING count(*) > 1)
SELECT rid, {ident} FROM (
  SELECT s.rowid AS rid, {s_ident},
    row_number() OVER (PARTITION BY {s_ident} ORDER BY {KEEP_ORDER}, s.rowid) AS k
  FROM {table} s WHERE hash({s_ident}) IN (SELECT h FROM cand))
WHERE k > 1"""


def repeated_records_sql(files_table: str, *, few: bool = False) -> str:
    """SELECT (``rid``, ``source_file``) of the span rows of the files named in ``files_table``
    (a table with ``path`` and ``ord``, the file's place in the load) that copy a row
    (:data:`SAME_RECORD`) of another file. The file kept is one of an earlier load, else the
    first in load order, so the rows kept do not depend on the order they were inserted in;
    copies inside one file all stay (:func:`unique_spans` hides them from the analyses).

    One aggregation over the record hashes finds those held by more than one file; only their
    rows are compared exactly (2M rows: ~1.5 s on a loaded 2-core host). ``few``: those files
    hold few of the table's rows (a small load into a large case): only the traces they have
    are aggregated (2M rows, 50k of them loaded: 2.8 s -> 1.0 s)."""
    key = ", ".join(SAME_RECORD)
    s_key = ", ".join(f"s.{c}" for c in SAME_RECORD)
    scope = (f"WHERE trace_id IN (SELECT DISTINCT trace_id FROM spans WHERE source_file IN (SELECT path FROM {files_table}))"
             if few else "")
    return f"""
WITH shared AS (SELECT hash({key}) AS h FROM spans {scope} GROUP BY 1
                HAVING min(hash(source_file)) <> max(hash(source_file)))
SELECT rid, source_file FROM (
  SELECT s.rowid AS rid, s.source_file, f.ord,
    first_value(s.source_file) OVER (PARTITION BY {s_key} ORDER BY f.ord NULLS FIRST, s.rowid) AS keeper
  FROM spans s LEFT JOIN {files_table} f ON s.source_file = f.path WHERE hash({s_key}) IN (SELECT h FROM shared))
WHERE ord IS NOT NULL AND source_file IS DISTINCT FROM keeper"""


def count_duplicate_rows(case: "Case") -> int:
    """Number of span rows that repeat another row of the same span (0 when every span is unique)."""
    return int(scalar(case.con, f"SELECT count(*) FROM ({duplicate_rows_sql()})") or 0)


@contextmanager
def unique_spans(case: "Case") -> Iterator[int]:
    """Inside the ``with`` block, ``spans`` on ``case``'s connection holds each span once.

    Yields the number of repeated rows hidden (0: nothing was changed, the table is used as
    is). Nested use is free (the outer block's view stays). On DuckDB the view is the table
    minus the repeated rows' ``rowid`` (no copy of the spans); a case that offers its own
    ``unique_spans()`` (the Spark engine) is handed to it.
    """
    hook = getattr(case, "unique_spans", None)
    if hook is not None:
        with hook() as hidden:
            yield hidden
        return
    key = id(case.con)
    if key in _active:
        yield 0
        return
    if not scalar(case.con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'spans' AND NOT temporary"):
        yield 0
        return
    catalog = scalar(case.con, "SELECT database_name FROM duckdb_tables() WHERE table_name = 'spans' "
                               "AND schema_name = 'main' AND NOT temporary LIMIT 1")
    base = '"' + str(catalog).replace('"', '""') + '".main.spans'
    dups = f"_fx_dup_spans_{os.getpid()}_{next(_counter)}"
    run(case.con, f"CREATE TEMP TABLE {dups} AS SELECT rid FROM ({duplicate_rows_sql(base)})")
    _active.add(key)
    shadowed = False
    try:
        hidden = int(scalar(case.con, f"SELECT count(*) FROM {dups}"))
        if hidden:
            run(case.con, f"CREATE TEMP VIEW spans AS SELECT s.* FROM {base} s "
                          f"WHERE s.rowid NOT IN (SELECT rid FROM {dups})")
            shadowed = True
        yield hidden
    finally:
        _active.discard(key)
        if shadowed:
            run(case.con, "DROP VIEW IF EXISTS temp.main.spans")
        run(case.con, f"DROP TABLE IF EXISTS {dups}")
