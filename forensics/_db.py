"""The one place where forensics talks to DuckDB's Python result API.

DuckDB 2.0 dropped some 1.x result methods and refuses new work on a connection while an
``execute()`` result is unfinished (e.g. after a single ``fetchone()``), so every call goes
through these helpers, which always drain the result.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import duckdb
import pyarrow as pa

from .errors import UsageError

Params = Sequence[Any] | dict | None

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """Validate and double-quote a SQL identifier (table or column name)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise UsageError(f"not a valid table or column name: {name!r} (letters, digits and _ only)")
    return f'"{name}"'


def query_arrow(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> pa.Table:
    """Run ``query`` with bind ``params`` and return an Arrow table (empty for statements)."""
    rel = con.sql(query, params=params) if params else con.sql(query)
    if rel is None:  # a statement (INSERT, CREATE...) returns no relation
        return pa.table({})
    return rel.to_arrow_table()


def run(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> list[tuple]:
    """Execute a statement or query and return all rows (draining the result)."""
    return con.execute(query, params or []).fetchall()


def one(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> tuple | None:
    """The first row of a query (the rest are drained), or None."""
    rows = run(con, query, params)
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, query: str, params: Params = None) -> Any:
    row = one(con, query, params)
    return None if row is None else row[0]


@contextmanager
def setting(con: duckdb.DuckDBPyConnection, name: str, value: Any) -> Iterator[None]:
    """DuckDB setting ``name`` at ``value`` inside the ``with`` block, as it was after it."""
    old = scalar(con, "SELECT current_setting(?)", [name])
    run(con, f"SET {quote_ident(name)} = ?", [value])
    try:
        yield
    finally:
        run(con, f"SET {quote_ident(name)} = ?", [old])
