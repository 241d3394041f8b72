"""Read the next files of a load ahead, on worker threads, while the current one is stored.

A load of many small files (a directory of per-query Jaeger or Zipkin exports) would otherwise
alternate between reading and converting a file (CPU in pyarrow and a scratch DuckDB) and
storing it (the case's connection: insert, COMMIT), each waiting for the other. A format that
supports it registers ``read_ahead(path, format, strict, options, scratch)``: it reads and
converts the file with a :class:`RecordingContext` (no access to the case) and returns what the
loader replays later, in the file's own transaction; None when it declines (the file is then
loaded as usual). Nothing of the case is touched ahead: rejects and warnings are recorded and
replayed in order, so strict mode fails at the same record and the rows and rejects are those of
a load without read-ahead.

The next :data:`FILES_AHEAD` files are read ahead, on as many worker threads, each only if it
holds at most :data:`READ_AHEAD_BYTES` of text (estimated before reading: a larger file streams
in batches and pipelines within itself). A file that changed between its reading ahead and its
turn (size or modification time) is read again.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import duckdb

from forensics.errors import Reason

from .context import LoadContext
from .io import estimated_text_bytes
from .registry import formats
from .sniff import sniff

#: largest file read ahead (:func:`~.io.estimated_text_bytes`)
READ_AHEAD_BYTES = 32 << 20
#: most text a format's ``read_ahead`` holds for one file before it declines (a compressed file
#: larger than it looked); with :data:`FILES_AHEAD` files this bounds the memory read ahead
READ_AHEAD_TEXT = 64 << 20
#: files read ahead at the same time (with the load's own thread: one per core on 2 cores, the
#: reading and converting being about twice the work of storing)
FILES_AHEAD = 2


@dataclass
class RecordingContext(LoadContext):
    """A :class:`LoadContext` for reading ahead: ``con`` is a scratch connection (not the case's);
    :meth:`reject` and :meth:`warn` are recorded in ``events`` as ``("reject", args, kwargs)``
    and ``("warn", message)`` (never raised: the replay does that, in strict mode)."""

    events: list[tuple] = field(default_factory=list)

    def reject(self, code: Reason | str, reason: str, **kwargs: Any) -> None:
        self.events.append(("reject", (code, reason), kwargs))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def record(self, kind: str, items: Iterable[Any], size: Callable[[Any], int],
               convert: Callable[[Any], Any]) -> RecordingContext | None:
        """Record each of ``items`` (read through this context) with ``convert(item)`` as a
        ``(kind, item, converted)`` event; None (declined) once the items' ``size`` passes
        :data:`READ_AHEAD_TEXT`."""
        text = 0
        for item in items:
            text += size(item)
            if text > READ_AHEAD_TEXT:
                return None
            self.events.append((kind, item, convert(item)))
        return self

    def replay(self, ctx: LoadContext) -> Iterator[tuple[Any, Any]]:
        """The recorded ``(item, converted)`` pairs, in order, the recorded rejects and
        warnings applied to the real context ``ctx`` between them as they came."""
        for event in self.events:
            if event[0] == "reject":
                ctx.reject(*event[1], **event[2])
            elif event[0] == "warn":
                ctx.warn(event[1])
            else:
                yield event[1], event[2]
        ctx.limit_hits.extend(self.limit_hits)  # a decompression limit met by a reader of its own


def take_recorded(ctx: LoadContext) -> RecordingContext | None:
    """What was recorded for ``ctx``'s file ahead of its turn (handed out once), or None."""
    recorded, ctx.ahead = ctx.ahead, None
    return recorded if isinstance(recorded, RecordingContext) else None


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class _Pending:
    path: str
    stat: tuple[int, int]
    future: Future


class ReadAhead:
    """Reads files ahead of the load (see the module docstring): :meth:`schedule` the files
    coming next, :meth:`take` a file's result when its turn comes; :meth:`close` at the end.
    ``workers`` files are read at the same time (each worker with a scratch connection)."""

    def __init__(self, *, strict: bool, format: str | None, options: dict[str, Any], workers: int = 2,
                 skip: Callable[[str, str], bool] | None = None) -> None:
        """``skip(path, format)``: files not to read ahead (they load another way, in a batch)."""
        self._strict, self._format, self._options, self._skip = strict, format, dict(options), skip
        formats()  # every loader imported here, not by two threads at once
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forensics-read-ahead")
        self._local = threading.local()
        self._scratches: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []

    def schedule(self, paths: list[str]) -> None:
        """``paths``: the files whose turn comes next, in order (the one about to load first):
        start reading those not read yet that are small enough; drop results of other files."""
        for pending in [p for p in self._pending if p.path not in paths]:
            self._pending.remove(pending)
            self._drop(pending)
        for path in paths:
            stat = _stat(path)
            if stat is None or any(p.path == path for p in self._pending):
                continue
            size = estimated_text_bytes(path)
            if size is not None and size <= READ_AHEAD_BYTES:
                self._pending.append(_Pending(path, stat, self._pool.submit(self._read, path)))

    def _scratch(self) -> duckdb.DuckDBPyConnection:
        """This worker thread's scratch connection."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = duckdb.connect(config={"threads": 1})
            with self._lock:
                self._scratches.append(con)
        return con

    def _read(self, path: str) -> tuple[str, Any] | None:
        """(format, the format's read-ahead result) on the worker thread; None when the format
        does not read ahead, declines, or anything goes wrong (the file then loads as usual,
        which reports the problem itself)."""
        try:
            fmt = self._format or sniff(path)
            spec = formats()[fmt]
            if spec.read_ahead is None or (self._skip is not None and self._skip(path, fmt)):
                return None
            result = spec.read_ahead(path, fmt, self._strict, self._options, self._scratch())
        except Exception:  # noqa: BLE001 - the load itself reproduces and reports it
            return None
        return None if result is None else (fmt, result)

    def take(self, path: str, fmt: str) -> Any | None:
        """The read-ahead result for ``path`` loaded as ``fmt``, if it was read ahead in that
        format and has not changed since (waits for the worker to finish it); None otherwise."""
        for i, pending in enumerate(self._pending):
            if pending.path == path:
                del self._pending[i]
                got = pending.future.result()
                if got is None or got[0] != fmt or _stat(path) != pending.stat:
                    return None
                return got[1]
        return None

    @staticmethod
    def _drop(pending: _Pending) -> None:
        pending.future.cancel()
        try:
            pending.future.result()
        except BaseException:  # noqa: BLE001 - a cancelled read-ahead is simply not used
            pass

    def close(self) -> None:
        for pending in self._pending:
            self._drop(pending)
        self._pending = []
        self._pool.shutdown(wait=True, cancel_futures=True)
        for con in self._scratches:
            con.close()
        self._scratches = []
