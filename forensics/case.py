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
        create: bool = True,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = None if path is None else str(Path(path))
        self.memory_limit = memory_limit
        self.read_only = read_only
        if connection is not None:
            self.con = connection
        else:
            if self.path is not None and not os.path.exists(self.path) and (read_only or not create):
                raise CaseError(f"{self.path}: no such case file; `forensics load EXPORTS --case {self.path}` creates one")
            config: dict[str, Any] = {}
            if memory_limit:
                config["memory_limit"] = memory_limit
            if threads:
                config["threads"] = int(threads)
            try:
                self.con = duckdb.connect(self.path or ":memory:", read_only=read_only, config=config)
            except duckdb.Error as exc:
                raise CaseError(_open_error(self.path, exc)) from exc
            if self.path is not None:
                self._refuse_non_case(create=create and not read_only)
        # DuckDB draws a progress bar on stdout for queries over ~2 s, which would corrupt
        # `forensics detect --format json` and notebook output
        run(self.con, "SET TimeZone = 'UTC'")
        run(self.con, "SET enable_progress_bar = false")
        if not read_only:
            for table in schema.TABLES:
                run(self.con, schema.ddl(table))
                have = {r[0] for r in run(self.con, "SELECT column_name FROM information_schema.columns "
                                                    "WHERE table_name = ? AND table_schema = 'main'", [table])}
                for statement in schema.missing_columns_ddl(table, have):  # a case from an older version
                    run(self.con, statement)

    def _refuse_non_case(self, *, create: bool) -> None:
        """Close and raise unless the database is a case (or empty, and ``create`` allows making it one):
        forensics never adds its tables to somebody else's database."""
        names = sorted(r[0] for r in run(self.con, "SELECT table_name FROM information_schema.tables "
                                                   "WHERE table_catalog = current_database()"))
        if schema.CASE_MARKER in names or (create and not names):
            return
        self.con.close()
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise CaseError(f"{self.path}: a DuckDB database but not a forensics case (it holds {shown}, no "
                            f"`{schema.CASE_MARKER}` table); forensics does not add its tables to other databases: "
                            "load the exports into a new case file with `forensics load EXPORTS --case NEW.duckdb`")
        raise CaseError(f"{self.path}: an empty DuckDB database, not a forensics case; "
                        f"`forensics load EXPORTS --case {self.path}` makes it one")

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
    def checkpoint(self) -> None:
        """Move every committed row into the case file itself.

        DuckDB first writes commits to ``CASE.duckdb.wal`` and folds them into ``CASE.duckdb`` at a
        checkpoint; until then, copying or archiving the ``.duckdb`` alone loses them. Raises
        :class:`~forensics.errors.CaseError` when the checkpoint fails (e.g. the disk is full): the rows
        are then still safe in the ``.wal`` file, and the next writable open checkpoints them.
        """
        if self.path is None or self.read_only:
            return
        try:
            run(self.con, "CHECKPOINT")
        except duckdb.Error as exc:
            raise CaseError(
                f"{self.path}: cannot write to the case file while checkpointing ({exc}); the loaded rows are "
                f"committed but only in {self.path}.wal, so keep that file beside the case (copying or archiving "
                f"{Path(self.path).name} alone loses them); free disk space, then run the load again (files already "
                "in the case are skipped) to write them into the case file") from exc

    def close(self) -> None:
        """Checkpoint a case file opened for writing (see :meth:`checkpoint`), then close it."""
        try:
            self.checkpoint()
        finally:
            self.con.close()

    def __enter__(self) -> "Case":
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the error on its way out says more than a checkpoint that may fail after it
            self.con.close()

    def __repr__(self) -> str:
        where = self.path or "memory"
        counts = ", ".join(f"{t}={n}" for t, n in self.tables().items() if t in schema.CANONICAL)
        return f"<Case {where}: {counts}>"


def open_case(path: str | os.PathLike | None = None, **kwargs: Any) -> Case:
    """Open (or create) a case. ``path=None`` gives an in-memory case. See :class:`Case`."""
    return Case(path, **kwargs)


def is_database_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DuckDB database file (by its header, whatever its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def as_case(case_or_paths: "Case | str | os.PathLike | Iterable[str | os.PathLike]", *, read_only: bool = True,
            **load_options: Any) -> Case:
    """A Case from a Case, a case file, or export files/directories (loaded into a case in memory).

    A case file (``.duckdb``, or any DuckDB database) opens read-only unless ``read_only=False``; it
    must exist and be a case (:class:`Case` refuses other databases).
    """
    if isinstance(case_or_paths, Case):
        return case_or_paths
    items = [case_or_paths] if isinstance(case_or_paths, (str, os.PathLike)) else list(case_or_paths)
    if len(items) == 1 and (str(items[0]).endswith(".duckdb") or is_database_file(items[0])):
        return Case(items[0], read_only=read_only, create=False)
    case = Case()
    case.load(*items, **load_options)
    return case


_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def _open_error(path: str | None, exc: duckdb.Error) -> str:
    """The one-line message for a case file DuckDB would not open."""
    held = _LOCK.search(str(exc))
    if held:
        return (f"{path}: in use by another process (PID {held.group(2)}, {held.group(1)}); DuckDB lets one process "
                "write a case file or several processes read it, not both at once: wait until it finishes "
                "(a load, or `forensics sql --write`), then run this again")
    if "different configuration" in str(exc):
        return (f"{path}: already open in this process with other settings (e.g. writable, or another memory "
                "limit); pass that Case object instead of the path")
    return f"{path}: cannot open case file: {exc}"
