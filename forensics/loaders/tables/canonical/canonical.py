"""Parquet and Arrow IPC files holding a canonical table (``spans``, ``logs``, ``metrics`` or
``events``): a ``forensics export`` lake, a table saved from a notebook, a colleague's extract.

The table is the one whose required columns the file has (spans: trace_id, span_id,
parent_span_id, start_time, end_time; other span dumps are :mod:`~forensics.loaders.tables.spans_table`'s; logs: time and body; metrics: time, name, value; events: time and kind). Columns
are matched by name and cast to the canonical types (others are left out); canonical columns the
file lacks are NULL. Rows keep their values as they are (ids are not rewritten: they were
canonical when written) but are checked like any load: a row whose required column is NULL or
does not cast (a spans row with an id that is not lowercase hex) is rejected with its row
number. ``format``/``source_file`` name the file loaded and ``source_offset`` the row's 0-based
index in it; where the row came from before (its ``source_file:source_line``) is kept in the
``forensics.original_source`` attribute (spans, logs, events).

``forensics export`` also writes ``rejects.parquet`` and ``files.parquet``: the provenance of the
case exported, not telemetry; a directory load skips them.
"""
from __future__ import annotations

import pyarrow as pa

from forensics import schema
from forensics.loaders.core.columnar import COLUMNAR_MAGIC, column_sql, raw_json_sql, row_batches, schema_of
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format
from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX

#: table -> columns a file must have to be that table, most specific first
REQUIRED: dict[str, tuple[str, ...]] = {
    "spans": ("trace_id", "span_id", "parent_span_id", "start_time", "end_time"),
    "metrics": ("time", "name", "value"),
    "logs": ("time", "body"),
    "events": ("time", "kind"),
}
#: table -> columns no row may lack
NOT_NULL: dict[str, tuple[str, ...]] = {"spans": ("trace_id", "span_id", "start_time"), "metrics": ("time", "name", "value"),
                                        "logs": ("time",), "events": ("time", "kind")}


def table_of(names: list[str]) -> str | None:
    """The canonical table whose required columns ``names`` has (None if none)."""
    have = set(names)
    return next((t for t, need in REQUIRED.items() if set(need) <= have), None)


def _sniff(head: Head) -> float:
    if not head.data.startswith(COLUMNAR_MAGIC):
        return 0.0
    found = schema_of(head.path)
    return 0.95 if found is not None and table_of(found.names) else 0.0


def _checks(table: str) -> list[tuple[str, str]]:
    """(condition for a bad row, reason) of ``table``'s rows, over the cast columns."""
    out = [(f"{c} IS NULL", f"{c} is missing or does not cast to {_type(table, c)}") for c in NOT_NULL[table]]
    if table == "spans":
        out += [(f"NOT regexp_full_match(trace_id, '[0-9a-f]{{{TRACE_ID_HEX}}}')",
                 f"trace_id is not {TRACE_ID_HEX} lowercase hex digits"),
                (f"NOT regexp_full_match(span_id, '[0-9a-f]{{{SPAN_ID_HEX}}}')",
                 f"span_id is not {SPAN_ID_HEX} lowercase hex digits")]
    return out


def _type(table: str, column: str) -> str:
    return next(c.type for c in schema.TABLES[table] if c.name == column)


def _select(src: str, table: str, names: list[str]) -> str:
    """Canonical rows (and rejects) of a :func:`row_batches` batch whose file columns are ``names``."""
    at = {n: i for i, n in reversed(list(enumerate(names)))}  # a repeated name: its first column
    kept = [c for c in schema.TABLES[table] if c.name in at and c.name not in _OWN]
    cast = ", ".join(f'TRY_CAST({column_sql(at[c.name])} AS {c.type}) AS "{c.name}"' for c in kept)
    checks = _checks(table)
    code = " ".join(f"WHEN {cond} THEN 'bad_value'" for cond, _ in checks)
    reason = " ".join(f"WHEN {cond} THEN '{why}'" for cond, why in checks)
    keep_origin = "attributes" in at and "source_file" in at
    line = f"CAST({column_sql(at['source_line'])} AS VARCHAR)" if "source_line" in at else "NULL"
    origin = (f", CAST({column_sql(at['source_file'])} AS VARCHAR) AS _orig_file, {line} AS _orig_line"
              if keep_origin else "")
    attrs = ("REPLACE (map_concat(coalesce(attributes, MAP {}), CASE WHEN _orig_file IS NOT NULL THEN "
             "MAP {'forensics.original_source': _orig_file || coalesce(':' || _orig_line, '')} ELSE MAP {} END) "
             "AS attributes)" if keep_origin else "")
    raw, _ = raw_json_sql(names)
    return f"""
SELECT * {attrs}, CASE {code} END AS _reject_code, CASE {reason} END AS _reject_reason
FROM (SELECT {cast}, t._row AS source_offset{origin}, {raw} AS _raw FROM {src} t)"""


#: columns a load sets itself
_OWN = ("format", "source_file", "source_line", "source_offset")


@register_format("canonical_table", signal="mixed", sniff=_sniff, extensions=(".parquet", ".arrow", ".feather", ".ipc"),
                 description="Parquet or Arrow IPC file of a canonical table (spans, logs, metrics, events), "
                             "e.g. forensics export output")
def load_canonical(ctx: LoadContext) -> None:
    """Load a Parquet/Arrow file of a canonical table as it is (see the module docstring)."""
    found = schema_of(ctx.path)
    table = table_of(found.names) if found is not None else None
    if table is None:
        ctx.fail("not a Parquet or Arrow file of a canonical table",
                 expected="columns " + "; or ".join(", ".join(need) for need in REQUIRED.values()),
                 found=", ".join(found.names[:20]) if found is not None else "no Parquet/Arrow schema")
    names = list(found.names)
    sql, params = _select("_SRC_", table, names), raw_json_sql(names)[1]
    for _, batch in row_batches(ctx):
        src = ctx.register(batch)
        try:
            ctx.emit(table, sql.replace("_SRC_", src), params)
        finally:
            ctx.unregister(src)
