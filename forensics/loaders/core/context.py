"""LoadContext: what a loader gets to read one file and emit canonical rows and rejects."""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Sequence

import duckdb
import pyarrow as pa

from forensics import schema
from forensics._db import one, query_arrow, run, scalar
from forensics.errors import LoadError, Reason, StrictModeError

from . import io as fio
from .options import option_value

RAW_LIMIT = 1000
_names = itertools.count()


@dataclass
class LoadContext:
    """Per-file loading state.

    A loader reads ``path`` (use :meth:`line_batches` or :meth:`read_document`) and calls
    :meth:`emit` with a SQL SELECT producing canonical columns plus optional
    ``_reject_code``/``_reject_reason``/``_raw`` columns; rows with a reject code go to
    ``rejects`` instead of the target table. Python-side failures go through :meth:`reject`.
    """

    path: str
    format: str
    con: duckdb.DuckDBPyConnection
    strict: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    loaded: Counter = field(default_factory=Counter)
    rejected: int = 0
    #: records that became part of another row (a partial flush merged into its span, a
    #: duplicate): loaded + merged + rejected = read
    merged: Counter = field(default_factory=Counter)
    #: canonical table -> TEMP table of the rows :meth:`emit` held back (``_hold``)
    held: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: what the format's ``read_ahead`` made of this file before its turn (:mod:`.read_ahead`)
    ahead: Any = None
    #: where decompression stopped at its limits, not yet rejected (see :meth:`finish`)
    limit_hits: list = field(default_factory=list)

    # -- reading --------------------------------------------------------------------------------
    def line_batches(self, batch_bytes: int | None = None) -> Iterator[pa.Table]:
        """Arrow tables ``(line BIGINT, raw VARCHAR)`` of the file's non-blank lines.

        Lines that are not UTF-8, a truncated compressed stream and over-long lines become
        rejects (or errors in strict mode) here, so loaders only see text.
        """
        for block in self.blocks(batch_bytes):
            table = self.lines_of(block)
            if table.num_rows:
                yield table

    def blocks(self, batch_bytes: int | None = None) -> Iterator[fio.Block]:
        """The file as :class:`~.io.Block` s of whole lines (for loaders that parse bytes
        directly); :meth:`lines_of` turns one into lines. A line over ``max_line_bytes`` is
        rejected (the lines after it are read), a truncated compressed stream too (or errors in
        strict mode)."""
        max_line = self.option("max_line_bytes")
        try:
            blocks = fio.iter_blocks(self.path, batch_bytes or self.option("batch_bytes"), max_line, self.limits,
                                     self.limit_hits.append)
            for block in fio.read_in_background(blocks, "forensics-blocks"):  # reads the next block meanwhile
                if block.data:
                    yield block
                for line, size, first in block.too_long:  # after the block: strict mode names the first bad line
                    self.reject(Reason.TOO_LARGE, f"line is {size} bytes, longer than max_line_bytes={max_line}; "
                                f"skipped, the lines after it were read", line=line,
                                raw=first.decode("utf-8", "backslashreplace"))
        except fio.StreamTruncated as exc:
            self.reject(Reason.TRUNCATED, f"compressed stream ends early ({exc.cause}); records before it were loaded",
                        offset=exc.offset)
        self.finish()

    def open(self) -> BinaryIO:
        """The file, decompressed and bounded by the decompression limits (see :meth:`finish`)."""
        return fio.open_binary(self.path, self.limits, self.limit_hits.append)

    def option(self, name: str) -> Any:
        """The value of loader option ``name`` (checked by ``forensics.load``), or its default."""
        return option_value(self.options, name)

    @property
    def limits(self) -> fio.Limits:
        return fio.Limits.of(self.options)

    def finish(self) -> None:
        """After the loader: a decompression that stopped at its limit becomes a reject (the
        records before it were loaded)."""
        hits, self.limit_hits[:] = list(self.limit_hits), []
        for hit in hits:
            self.reject(Reason.DECOMPRESSION_LIMIT, f"decompression stopped: {hit.reason}; the records before it "
                        "were loaded", offset=hit.offset)

    def lines_of(self, block: fio.Block) -> pa.Table:
        """The non-blank lines of ``block`` as ``(line, raw)``; lines that are not UTF-8 are
        rejected (strict mode: an error)."""
        batch = fio.split_lines(block.data, block.first_line)
        for line, raw in batch.bad_utf8:
            self.reject(Reason.INVALID_UTF8, "line is not valid UTF-8 text", line=line,
                        raw=raw.decode("utf-8", "backslashreplace"))
        return batch.table

    def read_document(self) -> str | None:
        """The whole file as text, or None after rejecting it (truncated, not UTF-8, too large)."""
        data = self.read_bytes()
        if data is None:
            return None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.reject(Reason.INVALID_UTF8, f"not valid UTF-8 at byte {exc.start}", offset=exc.start,
                        raw=data[max(0, exc.start - 40): exc.start + 40].decode("utf-8", "backslashreplace"))
            return None

    def read_bytes(self) -> bytes | None:
        """The whole decompressed file, or None after rejecting it (truncated stream, too large,
        past the decompression limits)."""
        before = len(self.limit_hits)
        try:
            data = fio.read_all(self.path, self.option("max_document_bytes"), self.limits, self.limit_hits.append)
            if len(self.limit_hits) == before:
                return data
            del data
            self.finish()  # half a document is not parsed
        except fio.StreamTruncated as exc:
            self.reject(Reason.TRUNCATED, f"compressed stream ends early ({exc.cause})", offset=exc.offset)
        except fio.RecordTooLarge as exc:
            self.reject(Reason.TOO_LARGE, f"document larger than {exc.size} bytes (max_document_bytes)", offset=0)
        return None

    # -- writing --------------------------------------------------------------------------------
    def register(self, table: pa.Table) -> str:
        """Copy an Arrow table into a TEMP table under a fresh name and return the name.

        Not ``con.register``: a view registered inside the file's transaction keeps its Arrow
        table alive until COMMIT even after ``unregister``, so memory would grow with the file; a
        TEMP table is DuckDB memory, which the loading memory limit bounds (it spills).
        """
        name = f"_src_{next(_names)}"
        self.con.from_arrow(table).query("_arrow_in", f"CREATE TEMP TABLE {name} AS SELECT * FROM _arrow_in")
        return name

    def unregister(self, name: str) -> None:
        """Drop a table made by :meth:`register` (or any scratch table of the file's transaction).

        Nothing runs in a transaction an error has aborted, and its ROLLBACK drops the table anyway:
        the error that aborted it must reach the caller, not a TransactionException from this
        cleanup (an out-of-memory error is retried with the case's own memory limit, see
        ``forensics.load``)."""
        try:
            run(self.con, f"DROP TABLE IF EXISTS {name}")
        except duckdb.TransactionException:
            pass

    def emit(self, table: str, select_sql: str, params: Sequence[Any] | dict | None = None, *,
             files: list["LoadContext"] | None = None) -> int:
        """Insert the rows of ``select_sql`` into canonical ``table``; rejects go to ``rejects``.

        ``select_sql`` may produce any subset of the table's columns (others are NULL) plus
        ``_reject_code``, ``_reject_reason`` and ``_raw``. ``format`` and ``source_file`` are
        filled in here. Returns the number of rows loaded.

        Rows with a true ``_hold`` column go to neither: they wait in the TEMP table
        ``self.held[table]`` (all their columns) for the loader to merge them into other rows
        once the whole file is read (counting them with :meth:`count_merged`) or reject them
        (:meth:`reject_held`).

        ``files``: the rows of several files loaded at once (a format's ``load_batch``):
        ``select_sql`` has a ``_file`` column, the 1-based index of each row's file in
        ``files``, whose context counts it and whose path is its ``source_file`` (strict mode:
        the first bad row of the first file that has one raises, naming that file).
        """
        cols = [c for c in schema.column_names(table) if c not in ("format", "source_file")]
        stage = f"_stage_{next(_names)}"
        run(self.con, f"CREATE TEMP TABLE {stage} AS {select_sql}", params)
        paths = f"_paths_{next(_names)}"
        try:
            have = {r[0] for r in run(
                self.con, "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [stage])}
            if files is not None:
                run(self.con, f"CREATE TEMP TABLE {paths} (_file BIGINT, path VARCHAR)")
                run(self.con, f"INSERT INTO {paths} SELECT unnest(range(1, ?)), unnest(?)",
                    [len(files) + 1, [f.path for f in files]])
                source = f"(SELECT s.*, p.path AS _path FROM {stage} s JOIN {paths} p USING (_file))"
            else:
                source = stage
            has_reject = "_reject_code" in have
            if "_hold" in have:
                self._hold(stage, table)
            where_ok = "WHERE _reject_code IS NULL" if has_reject else ""
            if has_reject:
                self._emit_rejects(source, table, have, files)
            use = [c for c in cols if c in have]
            col_list = ", ".join(f'"{c}"' for c in use)
            path_sql = "_path" if files is not None else "?"
            n = scalar(
                self.con,
                f'INSERT INTO "{table}" ("format", "source_file", {col_list}) '
                f"SELECT ?, {path_sql}, {col_list} FROM {source} {where_ok}",
                [self.format] if files is not None else [self.format, self.path],
            )
            if files is not None:
                for k, count in run(self.con, f"SELECT _file, count(*) FROM {stage} {where_ok} GROUP BY 1"):
                    files[k - 1].loaded[table] += count
        finally:
            for name in (stage, paths):
                self.unregister(name)
        if files is None:
            self.loaded[table] += n
        return n

    def insert_clean(self, table: str, select_sql: str) -> int:
        """Insert the rows of ``select_sql`` into canonical ``table`` directly, without the
        staging :meth:`emit` needs to route rejects: for a caller that has established that no
        row can be rejected. A row that is rejected all the same is an internal error (the
        file's transaction rolls back) rather than silently dropped.
        """
        have = set(query_arrow(self.con, f"SELECT * FROM ({select_sql}) LIMIT 0").column_names)
        use = [c for c in schema.column_names(table) if c in have and c not in ("format", "source_file")]
        col_list = ", ".join(f'"{c}"' for c in use)
        check = ("WHERE CASE WHEN _reject_code IS NULL THEN true "
                 "ELSE error('insert_clean: a row was rejected: ' || _reject_reason) END" if "_reject_code" in have else "")
        n = scalar(self.con, f'INSERT INTO "{table}" ("format", "source_file", {col_list}) '
                             f"SELECT ?, ?, {col_list} FROM ({select_sql}) {check}", [self.format, self.path])
        self.loaded[table] += n
        return n

    def _hold(self, stage: str, table: str) -> None:
        """Move the ``_hold`` rows of ``stage`` to the file's held rows of ``table``."""
        held = self.held.get(table)
        if held is None:
            held = self.held[table] = f"_held_{next(_names)}"
            run(self.con, f"CREATE TEMP TABLE {held} AS SELECT * FROM {stage} WHERE _hold")
        else:
            run(self.con, f"INSERT INTO {held} BY NAME SELECT * FROM {stage} WHERE _hold")
        run(self.con, f"DELETE FROM {stage} WHERE _hold")

    def count_merged(self, table: str, n: int) -> None:
        """``n`` records of ``table`` were merged into other rows (not loaded, not rejected)."""
        self.merged[table] += n

    def reject_held(self, table: str) -> None:
        """Reject the held rows of ``table`` still waiting (with their own reject code and
        reason) and drop the held table."""
        held = self.held.pop(table, None)
        if held is None:
            return
        try:
            have = {r[0] for r in run(self.con, "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [held])}
            self._emit_rejects(held, table, have)
        finally:
            run(self.con, f"DROP TABLE IF EXISTS {held}")

    def _emit_rejects(self, stage: str, table: str, have: set[str], files: list["LoadContext"] | None = None) -> None:
        """The rejected rows of ``stage`` into ``rejects`` (``files``: a batch's rows, with their
        ``_file`` and ``_path``, see :meth:`emit`)."""
        line = "source_line" if "source_line" in have else "NULL"
        offset = "source_offset" if "source_offset" in have else "NULL"
        reason = "_reject_reason" if "_reject_reason" in have else "_reject_code"
        raw = f"left(CAST(_raw AS VARCHAR), {RAW_LIMIT})" if "_raw" in have else "NULL"
        order = ", ".join(["_file"] * (files is not None) + [f"{c} NULLS LAST" for c in (line, offset) if c != "NULL"]) or "1"
        path_sql = "_path" if files is not None else "?"
        if self.strict:
            first = one(
                self.con, f"SELECT {line}, {offset}, _reject_code, {reason}, {raw}, {path_sql} FROM {stage} "
                f"WHERE _reject_code IS NOT NULL ORDER BY {order} LIMIT 1", None if files is not None else [self.path])
            if first:
                raise StrictModeError(str(first[3]), path=first[5], line=first[0], offset=first[1], reason=first[2],
                                      hint="run without --strict to load the other records and list this one in rejects")
        n = scalar(
            self.con, f"INSERT INTO rejects SELECT {path_sql}, {line}, {offset}, ?, ?, _reject_code, {reason}, {raw} "
            f"FROM {stage} WHERE _reject_code IS NOT NULL",
            ([] if files is not None else [self.path]) + [self.format, table],
        )
        if files is None:
            self.rejected += n
            return
        for k, count in run(self.con, f"SELECT _file, count(*) FROM {stage} WHERE _reject_code IS NOT NULL GROUP BY 1"):
            files[k - 1].rejected += count

    def reject(self, code: Reason | str, reason: str, *, line: int | None = None, offset: int | None = None,
               raw: str | None = None, table: str | None = None, count: int = 1) -> None:
        """Record one bad record (strict mode: raise a StrictModeError naming file and line)."""
        code_s = code.value if isinstance(code, Reason) else str(code)
        if self.strict:
            raise StrictModeError(reason, path=self.path, line=line, offset=offset, reason=code_s,
                                  hint="run without --strict to load the other records and list this one in rejects")
        run(
            self.con, "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.path, line, offset, self.format, table, code_s, reason, None if raw is None else raw[:RAW_LIMIT]],
        )
        self.rejected += count

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def fail(self, message: str, **kwargs: Any) -> None:
        """Raise a LoadError about this file (for conditions that stop the whole file)."""
        raise LoadError(message, path=self.path, **kwargs)
