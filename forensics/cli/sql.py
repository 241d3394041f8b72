"""forensics sql CASE_OR_PATH "SELECT ..." [--format table|csv|json|parquet] [-o FILE] [--write]"""
from __future__ import annotations

import io
import sys

import click
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._text import csv_formulas_inert, printable
from ..errors import QueryError, UsageError
from ._common import open_case_or_paths


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@click.command("sql")
@click.argument("case_or_path", nargs=-1, required=True)
@click.option("--query", "-q", "query_opt", default=None, help="the query (alternative to the last argument)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True)
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="write to FILE instead of stdout")
@click.option("--param", "-p", "params", multiple=True, help="bind parameter for ? placeholders (repeatable, in order)")
@click.option("--escape-formulas/--no-escape-formulas", "escape_formulas", default=None,
              help="CSV: prefix ' to cells starting with = + - @ so a spreadsheet shows them instead of running them "
                   "(default: on when -o names a .csv file, off otherwise)")
@click.option("--write", is_flag=True, help="open the case for writing (without it the case is read-only: "
              "the evidence and its chain of custody cannot be changed by a query)")
def command(case_or_path: tuple[str, ...], query_opt: str | None, fmt: str, output: str | None, params: tuple[str, ...],
            escape_formulas: bool | None, write: bool) -> None:
    """Run SQL over a case file, read-only unless --write (or over export files loaded into a temporary case)."""
    items = list(case_or_path)
    if query_opt is None:
        if len(items) < 2:
            raise click.UsageError('give CASE_OR_PATH and a query: forensics sql case.duckdb "select ..."')
        query = items.pop()
    else:
        query = query_opt
    case = open_case_or_paths(tuple(items), write=write, progress=False)
    try:
        table = _unique_names(case.sql(query, list(params) or None).to_arrow())
    except QueryError as exc:
        if case.read_only and "read-only mode" in str(exc):
            raise UsageError(f"{case.path} is open read-only, so this statement cannot change it; "
                             "pass --write to change the case (its rows and chain of custody are evidence)") from exc
        raise
    finally:
        case.close()
    if fmt == "parquet":
        if not output:
            raise click.UsageError("--format parquet needs -o FILE")
        pq.write_table(table, output)
        return
    if fmt == "csv":
        if escape_formulas is None:
            escape_formulas = bool(output) and output.lower().endswith(".csv")
        table = _csv_safe(table)
        buf = io.BytesIO()
        pacsv.write_csv(csv_formulas_inert(table) if escape_formulas else table, buf)
        data = buf.getvalue().decode()
    elif fmt == "json":
        data = orjson.dumps(table.to_pylist(), default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode() + "\n"
    else:
        data = _render_table(table)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(data)
    else:
        sys.stdout.write(data)


def _unique_names(table: pa.Table) -> pa.Table:
    """Rename repeated column names (``select a.x, b.x``) to ``x``, ``x_1``, ... so no column is lost."""
    seen: dict[str, int] = {}
    names = []
    for name in table.column_names:
        if name in seen:
            seen[name] += 1
            candidate = f"{name}_{seen[name]}"
            while candidate in table.column_names or candidate in seen:
                seen[name] += 1
                candidate = f"{name}_{seen[name]}"
            names.append(candidate)
            seen[candidate] = 0
        else:
            seen[name] = 0
            names.append(name)
    return table.rename_columns(names) if names != table.column_names else table


def _csv_safe(table: pa.Table) -> pa.Table:
    """CSV cannot hold maps/lists/structs: render those columns as JSON text."""
    cols = []
    for field, col in zip(table.schema, table.columns):
        if pa.types.is_nested(field.type):
            col = pa.array([None if v is None else orjson.dumps(v, default=_json_default).decode() for v in col.to_pylist()], pa.string())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _render_table(table: pa.Table, max_rows: int = 200, max_width: int = 60) -> str:
    """A text table for a terminal: control characters from telemetry are shown as escapes, not sent."""
    names = [printable(n) for n in table.column_names]
    rows = [["" if v is None else printable(v) for v in r.values()] for r in table.slice(0, max_rows).to_pylist()]
    rows = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    out = [" | ".join(n.ljust(w) for n, w in zip(names, widths)), "-+-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    more = table.num_rows - len(rows)
    out.append(f"({table.num_rows} rows{'; ' + str(more) + ' not shown, use --format csv' if more > 0 else ''})")
    return "\n".join(out) + "\n"
