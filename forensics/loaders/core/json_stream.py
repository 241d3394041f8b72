"""Stream the elements of one large JSON array out of a (possibly compressed) document, without
parsing it in Python and without holding the whole document in memory.

Used by the Jaeger and Zipkin loaders for ``[span, span, ...]``, ``[[trace], [trace]]`` and
``{"data": [trace, trace, ...], ...}``: the bytes are scanned with numpy (quotes, backslash runs,
brackets) to find the commas that separate the array's elements, and each batch of elements
becomes an Arrow string column sliced straight out of the read buffer. DuckDB then parses the
elements. Every buffer starts at an element boundary, where the scanner state is known
(outside strings, at the array's depth), so no state needs to be carried between buffers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .io import StreamTruncated

_DELTA = np.zeros(256, dtype=np.int64)
_DELTA[[ord("{"), ord("[")]] = 1
_DELTA[[ord("}"), ord("]")]] = -1

#: where the streamed array starts: a top-level array, or the "data" array of a Jaeger envelope
ARRAY_START = re.compile(rb'^(?:\xef\xbb\xbf)?\s*\[')
ENVELOPE_START = re.compile(rb'^(?:\xef\xbb\xbf)?\s*\{\s*"data"\s*:\s*\[')


@dataclass
class ElementBatch:
    """Complete array elements: ``table`` is ``(element BIGINT 0-based, offset BIGINT byte offset
    of the element in the decompressed document, raw VARCHAR)``; elements that are not valid
    UTF-8 are left out of it and listed in ``bad_utf8`` as (element, offset, raw bytes)."""

    table: pa.Table
    bad_utf8: list[tuple[int, int, bytes]]


@dataclass
class Truncated:
    """The document ended inside the array: ``offset`` is where the unfinished element starts."""

    element: int
    offset: int
    raw: bytes


#: bytes scanned at a time (bounds the scanner's temporary arrays)
_SCAN_BYTES = 4 << 20


def unescaped_quotes(buf: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Positions of the ``"`` in ``buf[lo:hi]`` not escaped by an odd run of backslashes (only the
    quotes right after a backslash have their run counted; a run may start before ``lo``)."""
    quotes = np.flatnonzero(buf[lo:hi] == 34) + lo
    escaped = np.flatnonzero(buf[np.maximum(quotes - 1, 0)] == 92)
    escaped = escaped[quotes[escaped] > 0]
    if not len(escaped):
        return quotes
    run = np.ones(len(escaped), dtype=np.int64)
    alive = np.arange(len(escaped))
    while len(alive):
        at = quotes[escaped[alive]] - run[alive] - 1
        alive = alive[(at >= 0) & (buf[np.maximum(at, 0)] == 92)]
        run[alive] += 1
    return np.delete(quotes, escaped[run % 2 == 1])


def _structurals(buf: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per :data:`_SCAN_BYTES` of a buffer that starts outside any string, at depth 0: the
    positions of ``{}[],`` outside JSON strings, the depth before and after each (the caller
    keeps only what it needs, so memory stays bounded by a slice)."""
    parity, depth = 0, 0
    for lo in range(0, len(buf), _SCAN_BYTES):
        piece = buf[lo: lo + _SCAN_BYTES]
        quotes = unescaped_quotes(buf, lo, lo + len(piece))
        folded = piece | 0x20  # [ ] -> { }: fewer passes than a lookup table
        structural = np.flatnonzero((folded == 0x7B) | (folded == 0x7D) | (piece == 0x2C)) + lo
        del folded
        inside = (np.searchsorted(quotes, structural) + parity) % 2 == 1  # an odd number of quotes before
        parity = (parity + len(quotes)) % 2
        structural = structural[~inside]
        delta = _DELTA[buf[structural]]
        after = depth + np.cumsum(delta)
        if len(after):
            depth = int(after[-1])
        yield structural, after - delta, after


@dataclass
class ArrayRuns:
    """A large JSON text seen as ``prefix`` + runs of the elements of one of its arrays +
    ``suffix`` (byte ranges of the text): :meth:`piece` ``k`` is the text with only run ``k``
    left in that array; ``firsts[k]`` is the index of the run's first element."""

    text: memoryview
    prefix: int
    suffix: int
    starts: np.ndarray
    ends: np.ndarray
    firsts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def piece(self, k: int) -> bytes:
        return b"".join((self.text[: self.prefix], self.text[self.starts[k]: self.ends[k]], self.text[self.suffix:]))


def split_array(text: memoryview, key: bytes | None, max_bytes: int) -> ArrayRuns | None:
    """Cut a large JSON text around runs (about ``max_bytes`` each) of the elements of one of its
    arrays: the text itself (``key`` None) or the array value of ``key`` in the text's
    top-level object; None when the text does not have that shape (also: the key twice, an
    empty element, or more than a quarter of ``max_bytes`` outside the array, which every piece
    copies)."""
    arr = np.frombuffer(text, dtype=np.uint8)
    head = np.flatnonzero(~_TRIM[arr[:1 << 16]])
    first = int(head[0]) if len(head) else -1
    if first < 0 or arr[first] != (0x5B if key is None else 0x7B):
        return None
    named = re.compile(rb'(?<!\\)"' + re.escape(key or b"") + rb'"\s*:\s*$')  # "key": right before, quote not escaped
    opens, commas, close, inner = [], [], None, 1
    for pos, before, after in _structurals(arr):
        if not opens:  # looking for the array
            if key is None:
                at = np.zeros(1, dtype=np.int64)
            else:
                at = [int(i) for i in np.flatnonzero((arr[pos] == 0x5B) & (after == 2))
                      if named.search(bytes(text[max(0, int(pos[i]) - len(key) - 64): int(pos[i])]))]
            if not len(at):
                continue
            opens.append(int(pos[at[0]]))
            inner = int(after[at[0]])
            pos, before, after = pos[at[0] + 1:], before[at[0] + 1:], after[at[0] + 1:]
        if close is None:
            ends = np.flatnonzero(after == inner - 1)
            stop = int(ends[0]) if len(ends) else len(pos)
            commas.append(pos[:stop][(arr[pos[:stop]] == 0x2C) & (before[:stop] == inner)])
            if not len(ends):
                continue
            close = int(pos[stop])
            pos, after = pos[stop + 1:], after[stop + 1:]
        if key is not None:  # the same key a second time: leave the text whole
            opens += [int(pos[i]) for i in np.flatnonzero((arr[pos] == 0x5B) & (after == 2))
                      if named.search(bytes(text[max(0, int(pos[i]) - len(key) - 64): int(pos[i])]))]
    if len(opens) != 1 or close is None:
        return None
    separators = np.concatenate(commas)
    starts = np.concatenate(([opens[0] + 1], separators + 1))
    ends = np.append(separators, close)
    lo, hi = _trimmed(arr, starts, ends)
    prefix, suffix = opens[0] + 1, close
    if (lo >= hi).any() or prefix + len(arr) - suffix > max_bytes // 4:
        return None
    group = (np.cumsum(hi - lo) - 1) // max(max_bytes, 1)
    firsts = np.flatnonzero(np.diff(group, prepend=-1) != 0)
    lasts = np.append(firsts[1:], len(lo)) - 1
    return ArrayRuns(text, prefix, suffix, lo[firsts], hi[lasts], firsts)


@dataclass
class Tail:
    """What follows the array's closing bracket (at most 1 MiB, or the rest of the read buffer
    with ``keep_rest``), e.g. the rest of a Jaeger envelope: ``, "total": 0, "limit": 0,
    "offset": 0, "errors": null}``; ``count`` is the number of elements of the array, blank ones
    (``[]``, a trailing comma) included; ``offset`` the byte offset in the stream where ``data``
    starts."""

    data: bytes
    count: int = field(default=0, compare=False)
    offset: int = field(default=0, compare=False)


def _split(buf: bytes) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Element (start, end) offsets of complete elements in ``buf`` (which starts right after the
    array's ``[`` or a separating comma) and the position of the closing ``]`` if present."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    found, end = [], None
    for pos, before, after in _structurals(arr):  # depths relative to the array's own (0)
        closing = np.flatnonzero(after < 0)
        stop = int(closing[0]) if len(closing) else len(pos)
        found.append(pos[:stop][(arr[pos[:stop]] == 44) & (before[:stop] == 0)])
        if len(closing):
            end = int(pos[stop])
            break
    commas = np.concatenate(found) if found else np.zeros(0, np.int64)
    ends = np.append(commas, end) if end is not None else commas
    starts = np.concatenate(([0], commas + 1))[: len(ends)]
    return starts.astype(np.int64), ends.astype(np.int64), end


def _decode(raw: pa.Array, numbers: np.ndarray, offsets: np.ndarray) -> tuple[pa.Array, pa.Array, list]:
    """Text of the elements; on invalid UTF-8 (rare) a per-element check of this batch finds the
    bad ones, which become empty strings masked out by ``good``."""
    try:
        return raw.cast(pa.large_string()), pa.array(np.ones(len(raw), bool)), []
    except pa.ArrowInvalid:
        pass
    values, good, bad = raw.to_pylist(), np.ones(len(raw), bool), []
    for i, value in enumerate(values):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            good[i] = False
            bad.append((int(numbers[i]), int(offsets[i]), value.strip()))
            values[i] = b""
    return pa.array(values, pa.large_binary()).cast(pa.large_string()), pa.array(good), bad


#: what ``pc.utf8_trim_whitespace`` removes among ASCII bytes
_TRIM = np.zeros(256, dtype=bool)
_TRIM[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def _trimmed(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[starts, ends)`` without leading and trailing ASCII whitespace."""
    starts, ends = starts.copy(), ends.copy()
    todo = np.flatnonzero((starts < ends) & _TRIM[buf[np.minimum(starts, len(buf) - 1)]])
    while len(todo):
        starts[todo] += 1
        todo = todo[(starts[todo] < ends[todo]) & _TRIM[buf[np.minimum(starts[todo], len(buf) - 1)]]]
    todo = np.flatnonzero((ends > starts) & _TRIM[buf[np.maximum(ends - 1, 0)]])
    while len(todo):
        ends[todo] -= 1
        todo = todo[(ends[todo] > starts[todo]) & _TRIM[buf[np.maximum(ends[todo] - 1, 0)]]]
    return starts, ends


def _batch(buf: bytes, starts: np.ndarray, ends: np.ndarray, first: int, at: int) -> ElementBatch:
    """The elements ``buf[starts:ends]`` (numbered from ``first``; ``buf`` starts at byte ``at``
    of the document), trimmed as ``pc.utf8_trim_whitespace`` trims, blank ones left out."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    lo, hi = _trimmed(arr, starts, ends)
    offsets = np.empty(len(lo) * 2, dtype=np.int64)  # pieces: element, separator, element...
    offsets[0::2], offsets[1::2] = lo, hi
    pieces = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                              [None, pa.py_buffer(np.append(offsets, hi[-1])), pa.py_buffer(buf)])
    # one element (a huge trace): a view of the read buffer, no copy
    raw = pieces.slice(0, 1) if len(lo) == 1 else pieces.take(pa.array(np.arange(0, len(offsets) - 1, 2)))
    del pieces
    numbers = np.arange(first, first + len(lo), dtype=np.int64)
    text, good, bad = _decode(raw, numbers, at + starts)
    del raw
    edge = (lo < hi) & ((arr[np.minimum(lo, len(arr) - 1)] >= 0x80) | (arr[np.maximum(hi - 1, 0)] >= 0x80))
    if edge.any():  # may start or end with non-ASCII whitespace (rare)
        text = pc.utf8_trim_whitespace(text)
    table = pa.table({"element": pa.array(numbers), "offset": pa.array(at + starts), "raw": text})
    keep = pc.and_(good, pc.greater(pc.binary_length(table.column("raw")), 0))
    return ElementBatch(table if pc.all(keep).as_py() else table.filter(keep), bad)


def _reader(fh: BinaryIO) -> Callable[[int], bytes]:
    """``fh.read`` that turns decompression failures into :class:`StreamTruncated` (with the
    number of decompressed bytes read before it)."""
    done = 0

    def read(size: int) -> bytes:
        nonlocal done
        try:
            data = fh.read(size)
        except Exception as exc:  # EOFError, OSError, zlib.error, zstandard.ZstdError...
            raise StreamTruncated(done, exc) from exc
        done += len(data)
        return data

    return read


def iter_elements(fh: BinaryIO, start: int, read_bytes: int = 16 << 20, *,
                  keep_rest: bool = False) -> Iterator[ElementBatch | Truncated | Tail]:
    """Batches of the elements of the array whose ``[`` ends at byte ``start`` of ``fh``.

    Stops after the array's closing bracket, yielding what follows it as a final :class:`Tail`
    (the rest of a large document is not read); yields a final :class:`Truncated` instead when
    the stream ends inside the array. A failing ``fh.read`` (a truncated compressed stream)
    raises :class:`forensics.loaders.core.io.StreamTruncated` after the complete elements before it.

    Parameters
    ----------
    fh:
        The decompressed document, positioned at its start.
    start:
        Byte offset just after the array's opening ``[`` (see :func:`array_start`).
    read_bytes:
        Bytes read per step (a batch holds the complete elements of one step; an element
        larger than that doubles the step until it fits).
    keep_rest:
        The :class:`Tail` is everything read after the closing bracket, and nothing more is
        read: a caller that goes on reading ``fh`` puts it back in front (several arrays, or
        several documents, in one stream).
    """
    read = _reader(fh)
    skipped = 0
    while skipped < start:
        got = read(min(start - skipped, 1 << 20))
        if not got:
            return
        skipped += len(got)
    carry, carry_at, element, want = b"", start, 0, read_bytes
    while True:
        chunk = read(want)
        eof = not chunk
        buf = carry + chunk if carry else chunk
        del chunk
        if not buf:
            return
        starts, ends, end = _split(buf)
        batch = _batch(buf, starts, ends, element, carry_at) if len(starts) else None
        element += len(starts)
        if end is not None:
            tail = buf[end + 1:] if keep_rest else buf[end + 1: end + 1 + (1 << 20)]
            tail_at = carry_at + end + 1
        else:
            rest = int(ends[-1]) + 1 if len(ends) else 0
            carry, carry_at = buf[rest:], carry_at + rest
        del buf  # only the batch's own copy of its elements stays alive while it is used
        if batch is not None:
            yield batch
        if end is not None:
            yield Tail(tail if keep_rest else tail + read(max(0, (1 << 20) - len(tail))), element, tail_at)
            return
        if eof:  # end of stream inside the array
            yield Truncated(element, carry_at, carry)
            return
        want = read_bytes if len(starts) else want * 2  # one element larger than the buffer: read more


def array_start(head: bytes, envelope: bool) -> int | None:
    """Byte offset just after the ``[`` of the array to stream, from the document's first bytes
    (``envelope``: the ``"data"`` array of a ``{"data": [...]}`` object), or None."""
    m = (ENVELOPE_START if envelope else ARRAY_START).match(head)
    return m.end() if m else None
