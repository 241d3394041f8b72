"""forensics.load: expand paths, sniff, load each file atomically, record provenance."""
from __future__ import annotations

import errno
import fnmatch
import os
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import duckdb
import orjson
import pyarrow as pa

from forensics import _progress
from forensics._db import one, run
from forensics._text import printable
from forensics._spelling import option as spelled
from forensics.errors import CaseError, ForensicsError, LoadError, Reason, UnknownFormatError, UsageError

from .context import LoadContext
from .io import ByteMeter, estimated_text_bytes, sha256_and_size
from .options import OPTIONS, check_options
from .read_ahead import FILES_AHEAD, ReadAhead
from .registry import formats
from .sniff import sniff

if TYPE_CHECKING:
    from forensics.case import Case

#: DuckDB memory limit while loading into a case file opened without one: inserted rows are
#: written to the file as they come, so DuckDB need not cache them; with the readers' batches
#: this keeps a load's peak memory under 1 GB whatever the file size (``bench/scale.py``)
LOAD_MEMORY_LIMIT = OPTIONS["memory_limit"].default

#: DuckDB's checkpoint threshold while loading into a case file: each file commits on its own,
#: and a checkpoint rewrites the table's last, partly filled row group, so DuckDB's default
#: (16 MiB of WAL) makes a directory of small exports checkpoint every few files
LOAD_CHECKPOINT_THRESHOLD = "256MB"

#: small files (at most GROUP_FILE_BYTES on disk) load in shared transactions of up to GROUP_BYTES
#: or GROUP_FILES files: a COMMIT per small file writes its rows to the WAL (about 12 times their
#: size in the case file, ~0.1 s per 5,000 spans), then again at the checkpoint, where a group fills
#: row groups that DuckDB writes to the case file once, compressed (see :class:`_Group`)
GROUP_FILE_BYTES = 32 << 20
GROUP_BYTES = 512 << 20
GROUP_FILES = 256
#: most files / bytes of text converted at once by a format's ``load_batch`` (see :class:`_Batch`)
BATCH_FILES = 256
BATCH_BYTES = 64 << 20

#: files a directory walk skips (matched case-insensitively): documentation, licences, checksums,
#: pictures and ground truth next to exports, and cases themselves; named on the command line
#: they are still read
IGNORED = ("*.md", "*.rst", "*.adoc", "*.html", "*.ipynb", "*.py", "*.pdf", "*.png", "*.jpg",
           "*.jpeg", "*.gif", "*.svg", "*.sha256", "*.sha512", "*.md5", "*sums", "*.sig", "*.asc",
           "truth.json", "*.duckdb", "*.duckdb.wal",
           "files.parquet", "rejects.parquet")  # the last two: provenance `forensics export` writes beside the tables
#: the usual documentation files, skipped without an extension or with a text one (``LICENSE``,
#: ``README.txt``, ``LICENSE-MIT``, ``CHANGES``), but not data named alike (``changes.csv`` is a deploy log)
DOC_NAMES = ("readme", "license", "licence", "copying", "notice", "authors", "changelog", "changes", "contributing")
DOC_SUFFIXES = ("", ".txt", ".text")


@dataclass
class FileReport:
    path: str
    format: str | None
    status: str  # loaded | skipped_duplicate | ignored | unknown (no format fits: one reject)
    records_read: int = 0  # = rows_loaded + rows_merged + rows_rejected
    rows_loaded: int = 0
    rows_rejected: int = 0
    by_table: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    #: records merged into another row (a Zipkin partial flush, an exact duplicate of a span)
    rows_merged: int = 0


@dataclass
class LoadReport:
    """What a load did, per file and per table. ``str(report)`` is the CLI summary."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def rows_merged(self) -> int:
        return sum(f.rows_merged for f in self.files)

    @property
    def records_read(self) -> int:
        return sum(f.records_read for f in self.files)

    def by_table(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for t, n in f.by_table.items():
                out[t] = out.get(t, 0) + n
        return out

    @property
    def no_exports(self) -> bool:
        """True when files were given but none was an export (every one unknown or ignored)."""
        return bool(self.files) and not any(f.status == "loaded" or f.status == "skipped_duplicate" and f.format
                                            for f in self.files)

    @property
    def warnings(self) -> list[str]:
        return [f"{f.path}: {w}" for f in self.files for w in f.warnings]

    def __str__(self) -> str:
        lines = [f"{'file':<60} {'format':<16} {'read':>9} {'loaded':>9} {'rejected':>9}  status"]
        for f in self.files:
            name = f.path if len(f.path) <= 60 else "..." + f.path[-57:]
            lines.append(f"{name:<60} {f.format or '-':<16} {f.records_read:>9} {f.rows_loaded:>9} {f.rows_rejected:>9}  {f.status}"
                         + (f" ({f.message})" if f.message else ""))
        lines.append("")
        lines.append(f"{'table':<10} {'loaded':>10}")
        tables = self.by_table()
        for t in ("spans", "logs", "metrics", "events"):
            lines.append(f"{t:<10} {tables.get(t, 0):>10}")
        if self.rows_merged:
            lines.append(f"{'merged':<10} {self.rows_merged:>10}")
        lines.append(f"{'rejects':<10} {self.rows_rejected:>10}")
        merged = f", merged {self.rows_merged}" if self.rows_merged else ""
        lines.append(f"total: read {self.records_read}, loaded {self.rows_loaded}{merged}, rejected {self.rows_rejected}")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"


def _not_a_file(path: str) -> str | None:
    """Why ``path`` cannot be read as an export file (a FIFO, a device, a dangling symlink, a
    symlink loop...), or None for a regular file. Reading a FIFO or a device would wait forever or
    never end."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if os.path.islink(path):
            return f"a dangling symlink (to {os.readlink(path)})"
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(st.st_mode):
        return None
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")]
    kind = next((name for test, name in kinds if test(st.st_mode)), "not a regular file")
    via = f" (through a symlink to {os.readlink(path)})" if os.path.islink(path) else ""
    return f"{kind}{via}, not a regular file: reading it could wait forever; copy what it holds into a file"


@dataclass(frozen=True)
class _Entry:
    path: str
    named: bool  # given as such, not found in a directory
    skip: str | None  # why it is skipped (ignored), or None to load it


def _ignored(name: str) -> bool:
    low = name.lower()
    stem, dot, suffix = low.partition(".")
    if (dot + suffix) in DOC_SUFFIXES and any(stem == n or stem.startswith((n + "-", n + "_")) for n in DOC_NAMES):
        return True
    return any(fnmatch.fnmatch(low, pattern) for pattern in IGNORED)


def _expand(paths: Iterable[str | os.PathLike]) -> list[_Entry]:
    """Every file under ``paths``, sorted within directories. In a directory, files that are not
    exports (:data:`IGNORED`) and anything that is not a regular file (a FIFO, a device, a
    dangling symlink, a symlink loop: :func:`_not_a_file`) are entries to skip, with the reason;
    named directly, the latter are a usage error saying exactly why."""
    out: list[_Entry] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    path = os.path.join(root, name)
                    problem = _not_a_file(path)
                    skip = problem or ("not an export: documentation, licence, checksum, picture or case"
                                       if _ignored(name) else None)
                    out.append(_Entry(path, False, skip))
        elif os.path.lexists(p):
            problem = _not_a_file(p)
            if problem is not None:
                raise UsageError(f"{p}: {problem}")
            out.append(_Entry(p, True, None))
        else:
            raise UsageError(f"{p}: no such file or directory")
    return out


def load(case: "Case", *paths: str | os.PathLike, strict: bool = False, format: str | None = None,
         force: bool = False, progress: bool | None = None,
         on_file: Callable[[FileReport], None] | None = None, **options: Any) -> LoadReport:
    """Load export files and directories (recursively) into ``case``.

    Each file's format is sniffed unless ``format`` is given; ``.gz``/``.zst`` are read
    transparently. Each file loads atomically: an error leaves the case as it was before that
    file (small files share a transaction, replayed one file per transaction should one of them
    fail; a SIGKILL can lose the last group of small files, never part of one). A file already
    loaded (same sha256) is skipped unless ``force``. The next file is read and converted while
    the current one is stored (:mod:`.read_ahead`).

    Parameters
    ----------
    strict:
        Raise :class:`~forensics.errors.StrictModeError` at the first bad record instead of
        recording it in ``rejects``.
    format:
        Force a format name (see :func:`forensics.formats`).
    options:
        Passed to loaders (e.g. ``tz="Asia/Shanghai"`` for logs in local time);
        ``memory_limit`` (default :data:`LOAD_MEMORY_LIMIT`; None for DuckDB's own) bounds
        DuckDB's memory while loading into a case file opened without a limit;
        ``templates=False`` skips mining log templates (see :mod:`forensics.templates`);
        ``read_ahead=False`` and ``group_small_files=False`` turn those off (for comparison).
    """
    if format is not None and format not in formats():
        raise UsageError(f"unknown format {format!r}; choose one of: {', '.join(sorted(formats()))}")
    options = check_options(options)
    report = LoadReport()
    entries = _expand(paths)
    bounded = _bounded_memory(case, options.pop("memory_limit", LOAD_MEMORY_LIMIT))
    ignored = [entry.skip is not None for entry in entries]
    read_ahead = options.pop("read_ahead", True)
    grouping = options.pop("group_small_files", True) and len(entries) > 1
    batching = options.pop("batch_small_files", True) and grouping
    threshold = ahead = None
    kw = dict(strict=strict, format=format, force=force, options=options)

    def alone(path: str) -> FileReport:
        """Load one file in its own transaction (a file that needs more than the loading limit,
        one huge document, gets the case's own limit; the failed attempt was rolled back)."""
        try:
            return _load_one(case, path, ahead=ahead, **kw)
        except LoadError as exc:
            if bounded is None or not isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                raise
            run(case.con, "RESET memory_limit")
            fr = _load_one(case, path, **kw)
            run(case.con, "SET memory_limit = ?", [bounded])
            return fr

    group = _Group(case, report, on_file, alone)
    batch = _Batch(case, group, strict=strict, options=options)
    shown = _progress.bar(desc="load", total=_bytes_of(entries), unit="B", progress=progress)
    meter = ByteMeter(shown.update, [e.path for e in entries if e.skip is None]) if _progress.enabled(progress) else None
    try:
        if meter is not None:
            meter.start()
        threshold = _checkpoint_threshold(case, LOAD_CHECKPOINT_THRESHOLD)
        if read_ahead and len(entries) > 1:
            ahead = ReadAhead(strict=strict, format=format, options=options, workers=FILES_AHEAD,
                              skip=_batched if batching else None)
        for i, entry in _shown(entries, meter, shown):
            path = entry.path
            if entry.skip is not None:
                batch.flush()
                group.done(FileReport(os.path.abspath(path), None, "ignored", message=entry.skip))
                continue
            if ahead is not None:
                coming = [os.path.abspath(entries[j].path) for j in range(i, min(len(entries), i + 1 + 4 * FILES_AHEAD))
                          if not ignored[j]]
                ahead.schedule(coming[: 1 + FILES_AHEAD])
            size = estimated_text_bytes(path)
            if not grouping or size is None or size > GROUP_FILE_BYTES:
                batch.flush()
                group.commit()
                group.done(alone(path))
                continue
            group.begin()
            try:
                file = _admit(case, path, strict=strict, format=format, force=force, taken=batch.taken)
                if isinstance(file, _Admitted) and batching and _batched(file.path, file.fmt):
                    batch.add(file, size)
                    continue
                if not batch.flush():  # the batch failed and its files were loaded one by one: this one too
                    group.done(alone(path))
                    continue
                fr = file if isinstance(file, FileReport) else _load_one(
                    case, path, ahead=ahead, transaction=False, admitted=file, **kw)
            except BaseException as exc:
                group.rollback()
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                group.redo([f.path for f, _ in batch.drop()] + [path])  # one transaction each: the error again, at its file
                continue
            group.add(path, fr, size)
            if group.full():
                group.commit()
        batch.flush()
        group.commit()
        _merge_repeated_spans(case, report)
    finally:
        if group.open:
            group.rollback()
        if ahead is not None:
            ahead.close()
        if meter is not None:
            meter.stop()
        shown.close()
        if bounded is not None:
            run(case.con, "RESET memory_limit")
        if threshold is not None:
            run(case.con, "SET checkpoint_threshold = ?", [threshold])
    return report


def _shown(entries: "list[_Entry]", meter: ByteMeter | None, shown: Any) -> Iterator[tuple[int, "_Entry"]]:
    """``enumerate(entries)``, with the file each step is on beside the bar and, once the step is
    done (loaded, ignored, failed: whatever the loop body did), the bytes of it not read counted."""
    for i, entry in enumerate(entries):
        if meter is None:
            yield i, entry
            continue
        shown.set_postfix_str(printable(f"{i + 1}/{len(entries)} {os.path.basename(entry.path)}"))
        yield i, entry
        meter.finish(entry.path)


def _bytes_of(entries: "list[_Entry]") -> int | None:
    """Bytes on disk of the files a load reads (the total of its progress bar); None if unknown."""
    total = 0
    for entry in entries:
        if entry.skip is None:
            try:
                total += os.path.getsize(entry.path)
            except OSError:
                return None
    return total


def _merge_repeated_spans(case: "Case", report: LoadReport) -> None:
    """Keep one row of spans loaded more than once (overlapping exports, the same spans in two
    formats): the rows this load added that copy a row of another file to the microsecond
    (:data:`forensics._duplicates.SAME_RECORD`, see :func:`~forensics._duplicates.repeated_records_sql`)
    are removed and counted as merged in ``files`` and the report. One pass over ``spans`` after the files committed, in its own transaction."""
    from forensics._duplicates import repeated_records_sql

    files = [f for f in report.files if f.status == "loaded" and f.by_table.get("spans")]
    if not files:
        return
    if len(files) == 1 and one(case.con, "SELECT 1 FROM spans WHERE source_file <> ? LIMIT 1", [files[0].path]) is None:
        return  # every span is of one file: nothing can repeat another file's records
    paths = pa.table({"path": [f.path for f in files], "ord": list(range(len(files)))})
    names, repeated = f"_load_files_{id(report)}", f"_load_repeated_{id(report)}"
    case.con.register(names, paths)
    run(case.con, "BEGIN TRANSACTION")
    try:
        added = sum(f.by_table["spans"] for f in files)
        few = added < 0.5 * (one(case.con, "SELECT count(*) FROM spans") or (0,))[0]
        run(case.con, f"CREATE TEMP TABLE {repeated} AS {repeated_records_sql(names, few=few)}")
        counts = dict(run(case.con, f"SELECT source_file, count(*) FROM {repeated} GROUP BY 1"))
        if counts:
            run(case.con, f"DELETE FROM spans WHERE rowid IN (SELECT rid FROM {repeated})")
            run(case.con, f"""
                UPDATE files SET rows_loaded = files.rows_loaded - r.n, rows_merged = coalesce(files.rows_merged, 0) + r.n,
                  loaded_rows_by_table = json_merge_patch(files.loaded_rows_by_table,
                    json_object('spans', CAST(files.loaded_rows_by_table->>'$.spans' AS BIGINT) - r.n))
                FROM (SELECT source_file, count(*) AS n FROM {repeated} GROUP BY 1) r
                WHERE files.path = r.source_file
                  AND files.loaded_at = (SELECT max(loaded_at) FROM files f WHERE f.path = r.source_file)""")
        run(case.con, f"DROP TABLE {repeated}")
        run(case.con, "COMMIT")
    except BaseException:
        run(case.con, "ROLLBACK")
        raise
    finally:
        case.con.unregister(names)
    for f in files:
        n = counts.get(f.path, 0)
        if n:
            f.rows_loaded -= n
            f.rows_merged += n
            f.by_table["spans"] -= n
            f.warnings.append(f"{n} span(s) already in the case (the same records from another file) were kept "
                              "once and counted as merged")


class _Group:
    """Small files loaded in one shared transaction (see :data:`GROUP_BYTES`), their reports
    held back until it commits. Should a file of the group fail (or the COMMIT), the group is
    rolled back and its files are loaded again one transaction each, which reproduces the
    error at its file with the files before it loaded: the case ends as if every file had had
    its own transaction."""

    def __init__(self, case: "Case", report: LoadReport, on_file: Callable[[FileReport], None] | None,
                 alone: Callable[[str], FileReport]) -> None:
        """``alone(path)`` loads one file in its own transaction."""
        self.case, self.report, self.on_file, self.alone = case, report, on_file, alone
        self.open = False
        self.files: list[tuple[str | None, FileReport]] = []  # (path to redo, report) in load order
        self.bytes = 0

    def begin(self) -> None:
        if not self.open:
            run(self.case.con, "BEGIN TRANSACTION")
            self.open = True

    def add(self, path: str, fr: FileReport, size: int) -> None:
        self.files.append((path, fr))
        self.bytes += size

    def full(self) -> bool:
        return self.bytes >= GROUP_BYTES or len(self.files) >= GROUP_FILES

    def done(self, fr: FileReport) -> None:
        """A file's final report: held back while a group is open, so reports keep load order."""
        if self.open:
            self.files.append((None, fr))
        else:
            self._emit(fr)

    def _emit(self, fr: FileReport) -> None:
        self.report.files.append(fr)
        if self.on_file:
            self.on_file(fr)

    def rollback(self) -> None:
        if self.open:
            self.open = False
            try:
                run(self.case.con, "ROLLBACK")
            except duckdb.Error:  # DuckDB already ended the transaction (a COMMIT that failed)
                pass

    def commit(self) -> None:
        """Commit the open group and publish its reports (on failure: :meth:`redo`)."""
        if not self.open:
            return
        try:
            run(self.case.con, "COMMIT")
        except BaseException as exc:
            self.rollback()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.redo()
            return
        self.open = False
        files, self.files, self.bytes = self.files, [], 0
        for _, fr in files:
            self._emit(fr)

    def redo(self, failed: list[str] | None = None) -> None:
        """After a rollback: load the group's files (and the ``failed`` ones) one transaction each."""
        files, self.files, self.bytes = self.files, [], 0
        for path, fr in files + [(p, None) for p in failed or []]:
            self._emit(self.alone(path) if path is not None else fr)


class _Batch:
    """Small files of a format that converts many at once (``load_batch``) waiting, in load order,
    for one conversion in the open group's transaction (see :func:`_load_batch`): a run of them
    ends at the first other file, or at :data:`BATCH_FILES` files / :data:`BATCH_BYTES` bytes.
    Should the conversion fail, the group is rolled back and every file loaded alone. Waiting
    files have written nothing to the case yet."""

    def __init__(self, case: "Case", group: _Group, *, strict: bool, options: dict[str, Any]) -> None:
        self.case, self.group, self.strict, self.options = case, group, strict, options
        self.files: list[tuple[_Admitted, int]] = []  # (file, estimated text bytes)
        #: sha256 -> (path, format) of the waiting files (a later copy is a duplicate of them)
        self.taken: dict[str, tuple[str, str]] = {}

    def add(self, file: _Admitted, size: int) -> None:
        if self.files and self.files[0][0].fmt != file.fmt:
            self.flush()
        self.group.begin()
        self.files.append((file, size))
        self.taken[file.sha] = (file.path, file.fmt)
        if len(self.files) >= BATCH_FILES or sum(n for _, n in self.files) >= BATCH_BYTES:
            if self.flush() and self.group.full():
                self.group.commit()

    def drop(self) -> list[tuple[_Admitted, int]]:
        """Forget the waiting files (returned)."""
        files, self.files, self.taken = self.files, [], {}
        return files

    def flush(self) -> bool:
        """Convert the waiting files and add their reports to the group; False when that failed
        (the group was then rolled back and its files, these included, loaded one transaction
        each)."""
        if not self.files:
            return True
        files = self.drop()
        try:
            reports = _load_batch(self.case, [f for f, _ in files], strict=self.strict, options=self.options)
        except BaseException as exc:
            self.group.rollback()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.group.redo([f.path for f, _ in files])
            return False
        for (file, size), fr in zip(files, reports):
            self.group.add(file.path, fr, size)
        return True


def _bounded_memory(case: "Case", limit: str | None) -> str | None:
    """Lower DuckDB's memory limit to ``limit`` for a load into a case file opened without a
    limit of its own (``RESET memory_limit`` restores DuckDB's default); return the limit set,
    or None when nothing was changed."""
    if not limit or case.path is None or getattr(case, "memory_limit", None):
        return None
    try:
        run(case.con, "SET memory_limit = ?", [str(limit)])
    except duckdb.Error as exc:
        raise UsageError(f"memory_limit={limit!r} is not a memory size DuckDB understands (e.g. 512MB, 2GB): {exc}") from exc
    return str(limit)


def _checkpoint_threshold(case: "Case", size: str) -> str | None:
    """Set DuckDB's checkpoint threshold to ``size`` for a load into a case file; return the
    previous value to restore, or None when nothing was changed (an in-memory case)."""
    if case.path is None:
        return None
    before = one(case.con, "SELECT current_setting('checkpoint_threshold')")[0]
    run(case.con, "SET checkpoint_threshold = ?", [size])
    return str(before)


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that failed for lack of space (ENOSPC, EDQUOT, EFBIG)."""
    codes = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if isinstance(exc, OSError) and exc.errno in codes:
        return True
    text = str(exc)
    return isinstance(exc, duckdb.Error) and any(os.strerror(c) in text for c in codes)


def _record_file(con: duckdb.DuckDBPyConnection, path: str, size: int, sha: str, fmt: str | None, loaded: int,
                 rejected: int, by_table: dict[str, int], merged: int = 0) -> None:
    """The file's row in ``files``, the chain of custody (also for a file no format could read)."""
    from forensics._version import __version__

    run(con, "INSERT INTO files (path, size_bytes, sha256, format, records_read, rows_loaded, rows_rejected, "
             "loaded_rows_by_table, loaded_at, tool_version, rows_merged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
        [path, size, sha, fmt, loaded + merged + rejected, loaded, rejected, orjson.dumps(by_table).decode(), __version__,
         merged])


def _unknown(con: duckdb.DuckDBPyConnection, path: str, size: int, sha: str, exc: UnknownFormatError,
             transaction: bool) -> FileReport:
    """A file that is no known format: one ``unknown_format`` reject and its ``files`` row (format
    NULL), so it is in the chain of custody and loading it again is skipped as a duplicate."""
    reason = exc.message + (f" (found {exc.found})" if exc.found else "")
    if transaction:
        run(con, "BEGIN TRANSACTION")
    try:
        run(con, "INSERT INTO rejects VALUES (?, NULL, 0, NULL, NULL, ?, ?, NULL)", [path, Reason.UNKNOWN_FORMAT.value, reason])
        _record_file(con, path, size, sha, None, 0, 1, {})
        if transaction:
            run(con, "COMMIT")
    except BaseException:
        if transaction:
            run(con, "ROLLBACK")
        raise
    return FileReport(path, None, "unknown", records_read=1, rows_rejected=1, message=str(exc.message))


@dataclass(frozen=True)
class _Admitted:
    """A file that is to be loaded: not a duplicate, its format known."""

    path: str  # absolute
    fmt: str
    sha: str
    size: int
    t0: float


def _admit(case: "Case", path: str, *, strict: bool, format: str | None, force: bool,
           taken: dict[str, tuple[str, str]] | None = None, transaction: bool = False) -> _Admitted | FileReport:
    """Hash and sniff ``path``: the file to load, or its final report (a duplicate of a file in
    the case or of one in ``taken``, sha256 -> (path, format), not yet in it; no known format: one
    reject and its ``files`` row, in a transaction of its own if ``transaction``)."""
    abspath = os.path.abspath(path)
    con = case.con
    t0 = time.perf_counter()
    sha, size = sha256_and_size(abspath)
    if not force:
        prior = one(con, "SELECT path, format FROM files WHERE sha256 = ? ORDER BY format NULLS LAST LIMIT 1", [sha])
        prior = prior or (taken[sha] if taken and sha in taken else None)
        if prior:
            return FileReport(abspath, prior[1], "skipped_duplicate",
                              message=f"same sha256 as {prior[0]} ({spelled('force')} to load again)")
    try:
        fmt = format or sniff(abspath)
    except UnknownFormatError as exc:
        if strict:
            raise
        return _unknown(con, abspath, size, sha, exc, transaction)
    return _Admitted(abspath, fmt, sha, size, t0)


def _context(case: "Case", file: _Admitted, *, strict: bool, options: dict[str, Any],
             ahead: ReadAhead | None = None) -> LoadContext:
    return LoadContext(file.path, file.fmt, case.con, strict=strict, options=dict(options),
                       ahead=None if ahead is None else ahead.take(file.path, file.fmt))


def _finish_file(case: "Case", file: _Admitted, ctx: LoadContext, options: dict[str, Any]) -> FileReport:
    """After the loader: templates of the logs it added and the file's ``files`` row (in the
    file's transaction)."""
    con = case.con
    ctx.finish()
    if ctx.loaded.get("logs") and options.get("templates", True):
        from forensics.templates import mine_new_logs  # drain3 templates for the rows this file added

        mine_new_logs(con, file.path)
    loaded, merged = sum(ctx.loaded.values()), sum(ctx.merged.values())
    _record_file(con, file.path, file.size, file.sha, file.fmt, loaded, ctx.rejected, dict(ctx.loaded), merged)
    return FileReport(file.path, file.fmt, "loaded", records_read=loaded + merged + ctx.rejected, rows_loaded=loaded,
                      rows_rejected=ctx.rejected, by_table=dict(ctx.loaded), seconds=time.perf_counter() - file.t0,
                      warnings=list(ctx.warnings), rows_merged=merged)


def _load_one(case: "Case", path: str, *, strict: bool, format: str | None, force: bool,
              options: dict[str, Any], ahead: ReadAhead | None = None, transaction: bool = True,
              admitted: _Admitted | None = None) -> FileReport:
    """Load one file; in its own transaction unless ``transaction`` is false (the caller's
    transaction: an exception is then raised as it is, the caller rolls back). ``admitted``:
    the file already hashed and sniffed."""
    file = admitted or _admit(case, path, strict=strict, format=format, force=force, transaction=transaction)
    if isinstance(file, FileReport):
        return file
    con = case.con
    ctx = _context(case, file, strict=strict, options=options, ahead=ahead)
    if transaction:
        run(con, "BEGIN TRANSACTION")
    try:
        formats()[file.fmt].load(ctx)
        report = _finish_file(case, file, ctx, options)
        if transaction:
            run(con, "COMMIT")
    except BaseException as exc:
        if not transaction:
            raise
        try:
            run(con, "ROLLBACK")
        except duckdb.Error:  # DuckDB already ended the transaction (a COMMIT that failed, e.g. disk full)
            pass
        error = _load_error(case, file, exc)
        if error is exc:
            raise
        raise error from exc
    return report


def _load_error(case: "Case", file: _Admitted, exc: BaseException) -> BaseException:
    """What a failed file load raises: forensics' own errors and interruptions as they are, a
    full disk as a CaseError, anything else as an internal LoadError naming the file."""
    if isinstance(exc, (ForensicsError, KeyboardInterrupt, SystemExit)):
        return exc
    if _disk_full(exc):
        return CaseError(f"{case.path or ':memory:'}: cannot write to the case file ({exc}); {file.path} was not "
                         "loaded and the case is as it was before that file; free disk space or use a case "
                         "path on another disk, then load again")
    return LoadError(f"internal error while loading as {file.fmt}: {type(exc).__name__}: {exc}", path=file.path,
                     hint="this is a bug in forensics; please report it with the file")


def _batched(path: str, fmt: str) -> bool:
    """Whether the file ``path`` in format ``fmt`` goes to its format's ``load_batch`` when a
    load batches small files (see :class:`_Batch`)."""
    spec = formats()[fmt]
    if spec.load_batch is None or (spec.batchable is not None and not spec.batchable(path)):
        return False
    size = estimated_text_bytes(path)
    return size is not None and size <= GROUP_FILE_BYTES


def _load_batch(case: "Case", files: list[_Admitted], *, strict: bool, options: dict[str, Any]) -> list[FileReport]:
    """Load small files of one format that converts many files at once (``load_batch``, see
    :class:`~.registry.FormatSpec`) in the caller's transaction: one conversion for all, each
    file's rows, rejects, counts and ``files`` row its own, as if loaded one by one. An
    exception is raised as it is (the caller rolls back and loads the files one by one)."""
    ctxs = [_context(case, f, strict=strict, options=options) for f in files]
    formats()[files[0].fmt].load_batch(ctxs)
    return [_finish_file(case, f, ctx, options) for f, ctx in zip(files, ctxs)]
