"""Byte-level input: transparent gzip/zstd, sha256, and vectorized line splitting into Arrow."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import queue
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_T = TypeVar("_T")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def compression_of(path: str) -> str | None:
    """'gzip', 'zstd' or None, from the file's magic bytes (not its name)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


#: text a compressed file is assumed to hold, per byte on disk (for size limits decided before reading)
COMPRESSED_RATIO = 8


def estimated_text_bytes(path: str) -> int | None:
    """Bytes of text ``path`` holds, estimated before reading it: its size on disk, times
    :data:`COMPRESSED_RATIO` when it is compressed (magic bytes); None when it cannot be read."""
    try:
        size = os.path.getsize(path)
        return size * COMPRESSED_RATIO if compression_of(path) else size
    except OSError:
        return None


@dataclass(frozen=True)
class Limits:
    """How far a compressed file is decompressed (options ``max_compression_ratio`` and
    ``max_decompressed_bytes``): past :data:`RATIO_FLOOR` bytes, no more than ``ratio`` bytes per
    compressed byte read, and never more than ``max_bytes`` in all."""

    ratio: float = 200.0
    max_bytes: int = 1 << 40

    @classmethod
    def of(cls, options: "dict | None") -> "Limits":
        from .options import option_value

        options = options or {}
        return cls(float(option_value(options, "max_compression_ratio")), int(option_value(options, "max_decompressed_bytes")))


#: decompressed bytes below which the ratio is not checked (small, very repetitive files are fine)
RATIO_FLOOR = 16 << 20


@dataclass
class LimitHit:
    """Where decompression stopped: ``offset`` decompressed bytes, and why."""

    offset: int
    reason: str


class _Capped(io.RawIOBase):
    """A decompressing stream that ends (reads give ``b""``) once :class:`Limits` are passed,
    telling ``on_limit`` where and why. Memory stays that of the reads: nothing is held here."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO, limits: Limits, on_limit: "Callable[[LimitHit], None] | None") -> None:
        self._stream, self._raw, self._limits, self._on_limit = stream, raw, limits, on_limit
        self._out = 0
        self.hit: LimitHit | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        if self.hit is not None:
            return 0
        n = self._stream.readinto(buffer)
        self._out += n
        compressed = max(1, self._raw.tell())
        if self._out > self._limits.max_bytes:
            self._stop(f"decompressed more than {self._limits.max_bytes} bytes (max_decompressed_bytes)")
        elif self._out > RATIO_FLOOR and self._out > self._limits.ratio * compressed:
            self._stop(f"{self._out} bytes decompressed from {compressed} compressed, more than "
                       f"{self._limits.ratio:g} times (max_compression_ratio): a decompression bomb, or a file "
                       "that needs a higher limit")
        return n

    def _stop(self, reason: str) -> None:
        self.hit = LimitHit(self._out, reason)
        if self._on_limit is not None:
            self._on_limit(self.hit)

    def close(self) -> None:
        try:
            self._stream.close()
            self._raw.close()
        finally:
            super().close()


class ByteMeter:
    """How far into each file of a load reading has got, in bytes on disk (compressed bytes for a
    compressed file), told to ``on_bytes(n)`` as ``n`` new bytes. A file read twice (sniffing,
    then loading; a replay) counts once: only a position past the furthest seen counts. Reads in
    any thread (read-ahead workers) report here; ``on_bytes`` is called under a lock.

    Active between :meth:`start` and :meth:`stop` (or inside ``with meter:``), and only for
    ``paths``: other reads (another load, a test) are not wrapped and cost nothing."""

    def __init__(self, on_bytes: "Callable[[int], None]", paths: "Iterable[str]") -> None:
        self._on_bytes = on_bytes
        self._far: dict[str, int] = {os.path.abspath(p): 0 for p in paths}  # the files watched
        self._lock = threading.Lock()

    def watches(self, path: str) -> bool:
        return os.path.abspath(path) in self._far

    def seen(self, path: str, position: int) -> None:
        """Reading of ``path`` got to ``position`` bytes."""
        key = os.path.abspath(path)
        with self._lock:
            far = self._far.get(key)
            if far is None or position <= far:
                return
            self._far[key] = position
            self._on_bytes(position - far)

    def finish(self, path: str) -> None:
        """``path`` is done (loaded, skipped or failed): whatever of it was not read counts now."""
        try:
            size = os.path.getsize(path)
        except OSError:
            return
        self.seen(path, size)

    def start(self) -> None:
        """Begin watching: reads of the expected files from now on are metered."""
        with _METERS_LOCK:
            _METERS.append(self)

    def stop(self) -> None:
        with _METERS_LOCK:
            if self in _METERS:
                _METERS.remove(self)

    def __enter__(self) -> "ByteMeter":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_METERS: list[ByteMeter] = []
_METERS_LOCK = threading.Lock()


def _meter_of(path: str) -> ByteMeter | None:
    if not _METERS:
        return None
    with _METERS_LOCK:
        return next((m for m in _METERS if m.watches(path)), None)


class _Metered(io.RawIOBase):
    """A raw file whose reads tell a :class:`ByteMeter` the position they reached."""

    def __init__(self, raw: io.FileIO, path: str, meter: ByteMeter) -> None:
        self._raw, self._path, self._meter = raw, path, meter
        self.name = raw.name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)
        if n:
            self._meter.seen(self._path, self._raw.tell())
        return n or 0

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _open_raw(path: str) -> BinaryIO:
    """``open(path, "rb")``, metered when a :class:`ByteMeter` watches ``path``."""
    meter = _meter_of(path)
    if meter is None:
        return open(path, "rb")
    return io.BufferedReader(_Metered(io.FileIO(path, "rb"), path, meter), buffer_size=1 << 16)  # type: ignore[return-value]


def open_binary(path: str, limits: Limits | None = None,
                on_limit: "Callable[[LimitHit], None] | None" = None) -> BinaryIO:
    """Open a file for reading, decompressing gzip and zstd transparently (streaming).

    A compressed file ends early (reads give ``b""``) once it passes ``limits`` (default:
    :class:`Limits`' defaults); ``on_limit`` is told where. Uncompressed files are read as they are.
    Reads report their position to the :class:`ByteMeter` watching ``path``, if any (load progress).
    """
    kind = compression_of(path)
    if kind is None:
        return _open_raw(path)
    raw = _open_raw(path)
    if kind == "gzip":
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    else:
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)  # type: ignore[assignment]
    return io.BufferedReader(_Capped(stream, raw, limits or Limits(), on_limit), buffer_size=1 << 16)  # type: ignore[return-value]


def sha256_and_size(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest(), os.path.getsize(path)


def read_head(path: str, size: int = 65536) -> bytes:
    """First ``size`` decompressed bytes (may be shorter; a truncated stream gives what it has)."""
    with open_binary(path) as fh:
        out = b""
        try:
            while len(out) < size:  # small reads: a broken stream still yields what came before
                chunk = fh.read(min(4096, size - len(out)))
                if not chunk:
                    break
                out += chunk
        except Exception:  # truncated compressed stream (EOFError, zstd errors): sniff what we have
            pass
    return out


@dataclass
class LineBatch:
    """A batch of non-blank lines: ``table`` has columns ``line`` (1-based) and ``raw``.

    ``bad_utf8`` lists (line, raw bytes) of lines that are not valid UTF-8; they are not in
    ``table``.
    """

    table: pa.Table
    bad_utf8: list[tuple[int, bytes]]
    lines_seen: int


@dataclass
class Block:
    """Whole lines of a file as bytes: ``first_line`` is the 1-based number of the first.

    ``too_long`` lists the lines longer than the limit that were cut out, each as ``(line,
    length in bytes, first bytes)``; their line breaks stay in ``data``, so the lines after them
    keep their numbers (an empty line is skipped but counted)."""

    first_line: int
    data: bytes
    too_long: tuple[tuple[int, int, bytes], ...] = ()


#: bytes of an over-long line kept to show in its reject
_PREFIX_BYTES = 1000


def _without_long_lines(first_line: int, data: bytes, max_line_bytes: int) -> Block:
    """``data`` as a Block with the lines longer than ``max_line_bytes`` emptied (vectorized;
    a block no longer than the limit is returned as it is, without looking)."""
    if len(data) <= max_line_bytes:
        return Block(first_line, data)
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(data)]))
    long = np.flatnonzero(ends - starts > max_line_bytes)
    if not len(long):
        return Block(first_line, data)
    pieces, at, too_long = [], 0, []
    for i in long.tolist():  # per over-long line (rare), never per line
        start, end = int(starts[i]), int(ends[i])
        pieces.append(data[at:start])
        too_long.append((first_line + i, end - start, data[start:start + _PREFIX_BYTES]))
        at = end
    pieces.append(data[at:])
    return Block(first_line, b"".join(pieces), tuple(too_long))


class StreamTruncated(Exception):
    def __init__(self, offset: int, cause: BaseException) -> None:
        self.offset = offset
        self.cause = cause
        super().__init__(f"compressed stream ends early after {offset} decompressed bytes: {cause}")


class RecordTooLarge(Exception):
    def __init__(self, line: int, size: int) -> None:
        self.line = line
        self.size = size
        super().__init__(f"line {line} is longer than {size} bytes")


def split_lines(buf: bytes, first_line: int) -> LineBatch:
    """Split ``buf`` (complete lines, no final newline needed) into a LineBatch, vectorized."""
    data = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(data == 10)
    starts = np.concatenate(([0], nl + 1)).astype(np.int64)
    ends = np.concatenate((nl, [len(buf)])).astype(np.int64)
    if ends[-1] == starts[-1] and len(starts) > 1:  # buffer ended with a newline
        starts, ends = starts[:-1], ends[:-1]
    n = len(starts)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:-1] = starts
    offsets[-1] = len(buf)
    # each value spans start..next start (includes its '\n'); trimmed below
    binary = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)])
    line_no = pa.array(np.arange(first_line, first_line + n, dtype=np.int64))
    bad: list[tuple[int, bytes]] = []
    try:
        text = binary.cast(pa.large_string())
    except pa.ArrowInvalid:
        values = binary.to_pylist()
        good = np.ones(n, dtype=bool)
        for i, value in enumerate(values):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                good[i] = False
                bad.append((first_line + i, value.rstrip(b"\r\n")))
        mask = pa.array(good)
        text = binary.filter(mask).cast(pa.large_string())
        line_no = line_no.filter(mask)
    text = pc.utf8_rtrim(text, characters="\r\n")
    table = pa.table({"line": line_no, "raw": text})
    # blank lines are skipped: a line starting with a printable ASCII byte is not blank, so
    # only the others (usually none) need the Unicode whitespace trim
    first = pc.utf8_slice_codeunits(text, 0, 1)
    sure = pc.and_(pc.greater(first, " "), pc.less(first, "\x7f"))
    if not pc.all(sure).as_py():
        keep = pc.or_(sure, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0))
        table = table.filter(keep)
    return LineBatch(table, bad, n)


def iter_blocks(path: str, batch_bytes: int = 32 << 20, max_line_bytes: int = 128 << 20, limits: Limits | None = None,
                on_limit: Callable[[LimitHit], None] | None = None) -> Iterator[Block]:
    """Stream a (possibly compressed) text file as :class:`Block` s of whole lines (each block but
    the last ends with a newline), about ``batch_bytes`` each.

    A line longer than ``max_line_bytes`` is cut out (listed in its block's ``too_long``) and
    reading goes on after it; memory stays about ``batch_bytes`` whatever the line's length.
    Raises :class:`StreamTruncated` after yielding everything before a broken compressed stream;
    a compressed file past ``limits`` ends there (``on_limit`` is told, see :func:`open_binary`).
    """
    line = 1
    carry = b""
    consumed = 0
    skipping: tuple[int, int, bytes] | None = None  # (line, bytes so far, first bytes) of an over-long line
    with open_binary(path, limits, on_limit) as fh:
        while True:
            try:
                chunk = fh.read(batch_bytes)
            except Exception as exc:  # EOFError/OSError from gzip, zstandard.ZstdError and friends
                if skipping is not None:
                    yield Block(line, b"", (skipping,))
                elif carry:
                    yield _without_long_lines(line, carry, max_line_bytes)
                raise StreamTruncated(consumed + len(carry), exc) from exc
            if not chunk:
                if skipping is not None:
                    yield Block(line, b"", (skipping,))
                elif carry:
                    yield _without_long_lines(line, carry, max_line_bytes)
                return
            if skipping is not None:  # the rest of an over-long line: up to its end, not kept
                cut = chunk.find(b"\n")
                if cut < 0:
                    skipping = (skipping[0], skipping[1] + len(chunk), skipping[2])
                    consumed += len(chunk)
                    continue
                yield Block(line, b"", ((skipping[0], skipping[1] + cut, skipping[2]),))
                skipping, line, consumed, chunk = None, line + 1, consumed + cut + 1, chunk[cut + 1:]
                if not chunk:
                    continue
            cut = chunk.rfind(b"\n")
            if cut < 0:
                carry += chunk
                if len(carry) > max_line_bytes:
                    skipping, consumed, carry = (line, len(carry), carry[:_PREFIX_BYTES]), consumed + len(carry), b""
                continue
            # one copy of the block's bytes (not the whole buffer and then the block)
            block, carry = (carry + chunk[: cut + 1] if carry else chunk[: cut + 1]), chunk[cut + 1:]
            del chunk
            consumed += len(block)
            yield _without_long_lines(line, block, max_line_bytes)
            line += block.count(b"\n")


def read_in_background(items: Iterator[_T], name: str = "forensics-read", ahead: int = 1) -> Iterator[_T]:
    """``items`` as they are, each read on a thread of their own while the caller works on the
    one before: the reading (file I/O, decompression, copying, counting lines) overlaps with the
    caller's work, and at most ``ahead`` items are read before they are asked for (memory: the
    caller's item plus ``ahead``). An exception of ``items`` is raised here, in the caller's
    thread, after the items before it, as without the thread. ``items`` must not touch anything
    the caller uses meanwhile (a case's connection): it runs concurrently. Closing this iterator
    early stops the thread and closes ``items``."""
    done = object()
    handoff: queue.Queue = queue.Queue()
    wanted = threading.Semaphore(ahead)  # items the producer may read before the caller takes one
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                wanted.acquire()
                if stop.is_set():
                    return
                item = next(items, done)
                handoff.put((item, None))
                if item is done:
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, exc = handoff.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            wanted.release()  # read the next one while the caller works on this one
            yield item
    finally:
        stop.set()
        wanted.release()  # wake a producer waiting for its turn: it sees ``stop``
        worker.join()


def iter_line_batches(path: str, batch_bytes: int = 32 << 20, max_line_bytes: int = 128 << 20) -> Iterator[LineBatch]:
    """Stream a (possibly compressed) text file as batches of lines (:func:`iter_blocks`, split).

    Blank lines are skipped but counted, so ``line`` numbers match the file (an over-long line is
    left out). Raises :class:`StreamTruncated` after yielding everything before a broken
    compressed stream.
    """
    for block in iter_blocks(path, batch_bytes, max_line_bytes):
        yield split_lines(block.data, block.first_line)


def read_all(path: str, max_bytes: int = 4 << 30, limits: Limits | None = None,
             on_limit: Callable[[LimitHit], None] | None = None) -> bytes:
    """The whole decompressed content (for single-document formats); a compressed file past
    ``limits`` ends there (``on_limit`` is told)."""
    out = io.BytesIO()
    with open_binary(path, limits, on_limit) as fh:
        while True:
            try:
                chunk = fh.read(1 << 24)
            except Exception as exc:
                raise StreamTruncated(out.tell(), exc) from exc
            if not chunk:
                break
            out.write(chunk)
            if out.tell() > max_bytes:
                raise RecordTooLarge(1, max_bytes)
    return out.getvalue()
