"""A case: one DuckDB database holding the canonical tables of an incident and their provenance."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import duckdb

from . import schema
from ._db import query_arrow, quote_ident, run, scalar  # noqa: F401  (quote_ident: forensics.case.quote_ident)
from .errors import CaseError, QueryError, UsageError
from .result import Result

if TYPE_CHECKING:
    from .loaders import LoadReport



class Case:
    """An incident case over a DuckDB database.

    Parameters
    ----------
    path:
        Database file (created if missing). ``None`` keeps the case in memory.
    connection:
        Use an existing DuckDB connection instead of opening ``path``.
    read_only:
        Open an existing case file without allowing writes.
    memory_limit:
        DuckDB memory limit, e.g. ``"4GB"``; DuckDB spills to disk beyond it.
    threads:
        Number of DuckDB threads (default: all cores).

    >>> import forensics
    >>> case = forensics.open_case()
    >>> sorted(case.tables())
    ['events', 'files', 'logs', 'metrics', 'rejects', 'spans']
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        connection: duckdb.DuckDBPyConnection | None = None,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = None if path is None else str(Path(path))
        self.memory_limit = memory_limit
        if connection is not None:
            self.con = connection
        else:
            config: dict[str, Any] = {}
            if memory_limit:
                config["memory_limit"] = memory_limit
            if threads:
                config["threads"] = int(threads)
            try:
                self.con = duckdb.connect(self.path or ":memory:", read_only=read_only, config=config)
            except duckdb.Error as exc:
                raise CaseError(f"{self.path}: cannot open case file: {exc}") from exc
        run(self.con, "SET TimeZone = 'UTC'")
        run(self.con, "SET enable_progress_bar = false")  # DuckDB's bar would print widgets into notebooks
        # DuckDB draws a progress bar on stdout for queries over ~2 s, which would corrupt
        # `forensics detect --format json` and notebook output
        run(self.con, "SET enable_progress_bar = false")
        if not read_only:
            for table in schema.TABLES:
                run(self.con, schema.ddl(table))

    # -- querying ---------------------------------------------------------------------------
    def sql(self, query: str, params: Sequence[Any] | dict | None = None) -> Result:
        """Run SQL over the case with bind parameters and return a :class:`Result`.

        Values must be passed in ``params`` (``?`` or ``$name`` placeholders), never spliced
        into ``query``.
        """
        try:
            return Result(query_arrow(self.con, query, params))
        except duckdb.Error as exc:
            raise QueryError(f"query failed: {exc}") from exc

    def execute(self, query: str, params: Sequence[Any] | dict | None = None) -> None:
        """Run a statement for its effect (no result)."""
        try:
            run(self.con, query, params)
        except duckdb.Error as exc:
            raise QueryError(f"statement failed: {exc}") from exc

    def tables(self) -> dict[str, int]:
        """Row count of every table in the case (canonical tables first)."""
        names = [r[0] for r in run(
            self.con, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name")]
        ordered = [t for t in schema.TABLES if t in names] + [t for t in names if t not in schema.TABLES]
        return {t: scalar(self.con, f"SELECT count(*) FROM {quote_ident(t)}") for t in ordered}

    def table(self, name: str) -> Result:
        """Every row of one table."""
        return self.sql(f"SELECT * FROM {quote_ident(name)}")

    def files(self) -> Result:
        """Chain of custody: every loaded file with size, sha256, format and row counts."""
        return self.sql("SELECT * FROM files ORDER BY loaded_at, path")

    def rejects(self) -> Result:
        """Every record that could not be loaded, with file, line/offset and reason."""
        return self.sql("SELECT * FROM rejects ORDER BY source_file, source_line, source_offset")

    # -- notebook helpers (forensics.queries) ------------------------------------------------
    def logs_for_trace(self, trace_id: str) -> Result:
        """Logs of one trace ordered by time; see :func:`forensics.queries.logs_for_trace`."""
        from . import queries

        return queries.logs_for_trace(self, trace_id)

    def trace(self, trace_id: str) -> Result:
        """Spans of one trace with depth and their logs; see :func:`forensics.queries.trace`."""
        from . import queries

        return queries.trace(self, trace_id)

    def red(self, by: Sequence[str] | str | None = ("service",), every: str | int | float = "1m",
            start: Any = None, end: Any = None) -> Result:
        """Rate, errors and p50/p95/p99 duration per bucket; see :func:`forensics.queries.red`."""
        from . import queries

        return queries.red(self, by=by, every=every, start=start, end=end)

    def exemplars(self, metric: str) -> Result:
        """Exemplar samples of a metric joined to their traces; see :func:`forensics.queries.exemplars`."""
        from . import queries

        return queries.exemplars(self, metric)

    # -- loading ------------------------------------------------------------------------------
    def load(self, *paths: str | os.PathLike, strict: bool = False, format: str | None = None,
             force: bool = False, **options: Any) -> "LoadReport":
        """Load export files or directories into this case; see :func:`forensics.load`."""
        from .loaders import load

        return load(self, *paths, strict=strict, format=format, force=force, **options)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Case":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or "memory"
        counts = ", ".join(f"{t}={n}" for t, n in self.tables().items() if t in schema.CANONICAL)
        return f"<Case {where}: {counts}>"


def open_case(path: str | os.PathLike | None = None, **kwargs: Any) -> Case:
    """Open (or create) a case. ``path=None`` gives an in-memory case. See :class:`Case`."""
    return Case(path, **kwargs)


def as_case(case_or_paths: "Case | str | os.PathLike | Iterable[str | os.PathLike]", **load_options: Any) -> Case:
    """A Case from a Case, a ``.duckdb`` file, or export files/directories (loaded in memory)."""
    if isinstance(case_or_paths, Case):
        return case_or_paths
    items = [case_or_paths] if isinstance(case_or_paths, (str, os.PathLike)) else list(case_or_paths)
    if len(items) == 1 and str(items[0]).endswith(".duckdb") and Path(items[0]).is_file():
        return Case(items[0])
    case = Case()
    case.load(*items, **load_options)
    return case
