"""Walk OTLP/JSON request documents in bounded memory (``otlp_json``'s document mode).

A pretty-printed request (``jq . export.json``), several of them one after the other, or a JSON
array of them (``jq -s``) is read as bytes, 16 MiB at a time. The envelope of each request
(``{``, its keys, ``:``, ``,``, ``}``; the ``[``, ``,``, ``]`` of a ``jq -s`` array) is walked with
small regular-expression steps; the elements of each ``resourceSpans`` / ``resourceLogs`` /
``resourceMetrics`` array are cut out with the numpy scanner of ``json_stream``
(:func:`~forensics.loaders.core.json_stream.iter_elements`), about ``batch_bytes`` of them at a time, and
come out as :class:`Elements` for the caller to wrap back into requests. A member the walk does
not stream (any other key, a resource key whose value is not an array) is decoded with Python's
``json`` in a window of at most :data:`MAX_VALUE_BYTES` and kept; a request with such members,
or a document that is not an object, comes out whole as :class:`Whole` (its streamed arrays
emptied), so that the SQL rejects it as it rejects any request text.

The first problem stops the walk with a :class:`Problem` (the caller emits what came before):
invalid JSON is located as Python's ``json`` locates it when it decodes the file whole (the
enclosing request, its streamed arrays elided, plus the text from the bad element on: same
message, character offset, line and column), text that is not UTF-8 at its first bad byte.
Validity follows DuckDB's parser (which the whole-file path asks first): trailing commas and
``NaN`` pass.

Memory: the 16 MiB read buffer, one batch of elements (``batch_bytes``, the scanner's
temporaries: a few times that) and the caller's pending batches. Reads start at 64 KiB for each
array and double, so small requests (``jq .`` of a collector file) cost no large scans. One
resource element larger than ``batch_bytes`` is held whole (the scanner doubles its buffer
until the element fits): a single resource of N MB holding all the spans costs about 4 N MB
here (buffer, element copy, request text, its copy without whitespace) plus DuckDB's parse of
a request of that size; splitting deeper (``scopeSpans``/``spans``) is not done.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np
import pyarrow as pa

from forensics.loaders.core.file_positions import byte_at, first_bad_utf8, joined, locate_byte, read_at
from forensics.loaders.core.io import StreamTruncated
from forensics.loaders.core.json_stream import ElementBatch, Tail, Truncated, iter_elements

KEYS = (b"resourceSpans", b"resourceLogs", b"resourceMetrics")
BOM = b"\xef\xbb\xbf"
#: largest member value that is not streamed (decoded with Python's json), and largest window
#: read to locate a JSON error
MAX_VALUE_BYTES = 16 << 20
_READ_BYTES = 1 << 24  # fio.read_all's step: a broken compressed stream fails at the same offset
_WS = re.compile(rb"[ \t\n\r]*")
_TOP_WS = re.compile(rb"\s*")  # between documents (the whole-file path skips str.isspace)
_DECODER = json.JSONDecoder()


@dataclass
class Elements:
    """Complete elements of the ``key`` array of document ``doc`` (0-based), in file order:
    ``table`` as :class:`~forensics.loaders.core.json_stream.ElementBatch` has it (element, offset, raw).
    ``head``: the first 1000 characters of the document, None inside a ``jq -s`` array (the
    whole-file path shows those documents re-serialized by DuckDB)."""

    doc: int
    key: str
    table: pa.Table
    head: str | None
    #: ``locate(element, offset)``: the Problem of ``element`` of this batch (``offset`` as in
    #: ``table``), when the caller finds it is not valid JSON (the walk has gone on by then)
    locate: Callable[[int, int], "Problem"]


@dataclass
class Whole:
    """Document ``doc`` as one text (a request with members that were not streamed, or not a
    request at all); ``head`` as for :class:`Elements`."""

    doc: int
    text: str
    head: str | None


@dataclass
class Problem:
    """What stopped the walk: a reject for ``ctx.reject``."""

    code: str  # "invalid_json" | "invalid_utf8"
    reason: str
    line: int | None
    offset: int
    raw: str


class ByteStream:
    """The decompressed file, read :data:`_READ_BYTES` at a time, with push-back.

    ``pos`` is the file offset of the next byte; ``read`` is what ``iter_elements`` reads
    through. A failing read raises :class:`~.io.StreamTruncated` with the decompressed bytes read
    before it.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._buf = b""
        self._at = 0  # index of the next byte in _buf
        self.pos = 0
        self._done = 0
        self.eof = False

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            data = self._fh.read(_READ_BYTES)
        except Exception as exc:  # EOFError, zlib.error, zstandard.ZstdError...
            raise StreamTruncated(self._done, exc) from exc
        if not data:
            self.eof = True
            return False
        self._done += len(data)
        self._buf = self._buf[self._at:] + data if self._at < len(self._buf) else data
        self._at = 0
        return True

    def available(self, size: int) -> int:
        """Make ``size`` bytes available (fewer at the end) and return how many are."""
        while len(self._buf) - self._at < size and self._more():
            pass
        return min(size, len(self._buf) - self._at)

    def peek(self, size: int) -> bytes:
        self.available(size)
        return self._buf[self._at: self._at + size]

    def read(self, size: int) -> bytes:
        if self._at >= len(self._buf):
            self._more()
        out = self._buf[self._at: self._at + size]
        self._at += len(out)
        self.pos += len(out)
        return out

    def push(self, data: bytes) -> None:
        """Put back ``data``, the last bytes read."""
        n = len(data)
        if n <= self._at and self._buf[self._at - n: self._at] == data:  # still in the buffer
            self._at -= n
        else:
            self._buf = data + self._buf[self._at:]
            self._at = 0
        self.pos -= n

    def skip(self, pattern: re.Pattern) -> None:
        """Consume a run of bytes matching ``pattern`` (whitespace), however long."""
        while True:
            self.available(1)
            m = pattern.match(self._buf, self._at)
            self.pos += m.end() - self._at
            self._at = m.end()
            if self._at < len(self._buf) or not self._more():
                return


class _Growing:
    """Reads of ``stream`` that start at 64 KiB and double up to what the scanner asks for: a
    small array (a small request of ``jq .`` output) is not scanned, and put back, 4 MiB at a
    time."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream, self.budget = stream, 1 << 16

    def read(self, size: int) -> bytes:
        out = self.stream.read(min(size, self.budget))
        self.budget *= 2
        return out


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class DocumentWalker:
    """Walks the documents of one file (see the module docstring); iterate :meth:`events`.

    The elements are not checked here: the caller checks them with DuckDB's parser, a batch of
    them at a time, and stops at the first invalid one with its :attr:`Elements.locate`.
    """

    def __init__(self, path: str, fh: BinaryIO, batch_bytes: int = 4 << 20) -> None:
        self.path = path
        self.stream = ByteStream(fh)
        self.batch_bytes = batch_bytes
        self.docs = 0
        self.in_array = False  # the documents are the elements of a jq -s array
        self.bom = False
        self._top = 0  # where the value being decoded (a document, or a jq -s array) starts
        self._skeleton: list[tuple[bytes, int | None]] = []  # its text, streamed arrays elided

    # -- walking ----------------------------------------------------------------------------------
    def events(self) -> Iterator[Elements | Whole | Problem]:
        """Elements and whole documents in file order, then a Problem if one stopped the walk."""
        try:
            yield from self._file()
        except _Stop as stop:
            yield stop.problem

    def _file(self) -> Iterator[Elements | Whole]:
        s = self.stream
        if s.peek(3) == BOM:
            self.bom = True
            s.read(3)
        s.skip(_TOP_WS)
        if s.peek(1) == b"[":
            yield from self._array_of_documents()
            return
        while s.available(1):
            self._top, self._skeleton = s.pos, []
            yield from self._document()
            s.skip(_TOP_WS)

    def _array_of_documents(self) -> Iterator[Elements | Whole]:
        """``jq -s`` output: the documents are the array's elements."""
        s = self.stream
        self._top, self.in_array = s.pos, True
        self._take(1)
        s.skip(_WS)
        while s.peek(1) != b"]":
            yield from self._document()
            self._skeleton[1:] = [(b"0", None)]  # the decoder's state after any finished element
            s.skip(_WS)
            if s.peek(1) == b"]":
                break
            self._expect(b",")
            s.skip(_WS)  # then a document, or "]" after a trailing comma (DuckDB's parser allows it)
        self._take(1)
        s.skip(_TOP_WS)
        if s.available(1):
            self._fail_json(s.pos, "Extra data")

    def _document(self) -> Iterator[Elements | Whole]:
        s = self.stream
        doc, first = self.docs, len(self._skeleton)
        head = None if self.in_array else _head(s.peek(4000))
        self.docs += 1
        if s.peek(1) != b"{":
            self._value()
            yield Whole(doc, self._text(first), head)
            return
        self._take(1)
        streamed, other = 0, False
        s.skip(_WS)
        while s.peek(1) != b"}":
            key = self._key()
            s.skip(_WS)
            self._expect(b":")
            s.skip(_WS)
            if key in KEYS and s.peek(1) == b"[":
                self._take(1)
                yield from self._elements(doc, key.decode(), head)
                streamed += 1
            else:
                self._value()
                other = True
            s.skip(_WS)
            if s.peek(1) == b"}":
                break
            self._expect(b",")
            s.skip(_WS)  # then a key, or "}" after a trailing comma
        self._take(1)
        if other or not streamed:
            yield Whole(doc, self._text(first), head)

    def _elements(self, doc: int, key: str, head: str | None) -> Iterator[Elements]:
        """The elements of the array whose ``[`` was just read, batch by batch."""
        s, start, seen = self.stream, self.stream.pos, 0
        last = start  # offset of the last element seen
        try:
            for item in iter_elements(_Growing(s), 0, self.batch_bytes, keep_rest=True):
                if isinstance(item, Tail):
                    s.push(item.data)
                    if item.count > seen and not (item.count == seen + 1 and (seen or item.count == 1)):
                        self._fail_in_array(max(seen - 1, 0), last, start)  # blanks: "[,", ",,"
                    self._skeleton.append((b"]", s.pos - 1))
                    return
                if isinstance(item, Truncated):
                    self._fail_in_array(item.element, start + item.offset, start)
                table, stop = self._good_prefix(item, seen, last, start)
                if table.num_rows:
                    offsets = table.column("offset").to_numpy()
                    seen, last = seen + table.num_rows, start + int(offsets[-1])
                    locate = functools.partial(self._problem_at, list(self._skeleton), self._top, start)
                    yield Elements(doc, key, table, head, locate)
                if stop is not None:
                    stop()
        except StreamTruncated as exc:
            while isinstance(exc.cause, StreamTruncated):  # raised by our stream, wrapped by the scanner's reader
                exc = exc.cause
            raise exc

    def _good_prefix(self, batch: ElementBatch, seen: int, last: int,
                     start: int) -> tuple[pa.Table, Callable[[], None] | None]:
        """The elements of ``batch`` before its first problem, and how to report that problem
        (``seen`` elements came before, the last one at byte ``last``; the array's content
        starts at byte ``start``)."""
        table = batch.table
        numbers = table.column("element").to_numpy()
        offsets = table.column("offset").to_numpy()
        gap = np.flatnonzero(numbers != np.arange(seen, seen + len(numbers)))
        cut = int(gap[0]) if len(gap) else len(numbers)  # elements are numbered with blank and non-UTF-8 ones
        stop = None
        if batch.bad_utf8 and batch.bad_utf8[0][0] == seen + cut:
            stop = functools.partial(self._fail_utf8, start + batch.bad_utf8[0][1])
        elif len(gap):  # a blank element before a real one: "[,", ",,"
            before = (seen + cut - 1, start + int(offsets[cut - 1])) if cut else (seen - 1, last)
            stop = functools.partial(self._fail_in_array, max(before[0], 0), before[1] if before[0] >= 0 else start, start)
        return table.slice(0, cut), stop

    # -- envelope tokens ------------------------------------------------------------------------
    def _take(self, n: int) -> ByteStream:
        """Consume ``n`` bytes into the skeleton."""
        s = self.stream
        at = s.pos
        self._skeleton.append((s.read(n), at))
        return s

    def _expect(self, token: bytes) -> None:
        if self.stream.peek(len(token)) != token:
            self._fail_json(self.stream.pos)
        self._take(len(token))

    def _key(self) -> bytes:
        """A member name (its JSON text decoded, as UTF-8 bytes)."""
        if self.stream.peek(1) != b'"':
            self._fail_json(self.stream.pos)
        text = self._value()
        return json.loads(text).encode("utf-8", "surrogatepass")

    def _value(self) -> bytes:
        """Consume one JSON value (at most :data:`MAX_VALUE_BYTES`) into the skeleton."""
        s, size = self.stream, 1 << 10
        while True:
            have = s.available(size)
            data = s.peek(have)
            text = data.decode("utf-8", "surrogateescape")
            try:
                _, end = _DECODER.raw_decode(text)
                n = len(text[:end].encode("utf-8", "surrogateescape"))
                if n < have or s.eof:
                    self._take(n)
                    return self._skeleton[-1][0]
            except json.JSONDecodeError:
                if have < size:
                    self._fail_json(s.pos)
            if size >= MAX_VALUE_BYTES:
                raise _Stop(Problem("too_large", f"a member value larger than {MAX_VALUE_BYTES} bytes that is not a "
                                    "resource array (only those are streamed): the rest of the file was not read",
                                    None, s.pos, s.peek(1000).decode("utf-8", "replace")))
            size *= 4

    def _text(self, first: int) -> str:
        """The document from skeleton segment ``first`` on (streamed arrays empty), as text."""
        data = b"".join(seg for seg, at in self._skeleton[first:] if at is not None)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = next(at for seg, at in self._skeleton[first:] if at is not None)
            self._fail_utf8(at + exc.start)  # approximate: segments are not contiguous
            raise AssertionError("unreachable")

    # -- problems ---------------------------------------------------------------------------------
    def _fail_in_array(self, element: int, offset: int, start: int) -> None:
        raise _Stop(self._problem_in_array(self._skeleton, self._top, start, element, offset))

    def _problem_at(self, skeleton: list, top: int, start: int, element: int, relative: int) -> Problem:
        return self._problem_in_array(skeleton, top, start, element, start + relative)

    def _problem_in_array(self, skeleton: list, top: int, start: int, element: int, offset: int) -> Problem:
        """JSON error in (or right after) element ``element``, at byte ``offset``, of the array
        whose content starts at byte ``start`` (``skeleton`` ends with its ``[``)."""
        context = [(b"0", None), (b",", offset - 1)] if element else []
        return self._json_problem(skeleton + context, top, offset)

    def _fail_json(self, offset: int, message: str | None = None) -> None:
        raise _Stop(self._json_problem(self._skeleton, self._top, offset, message))

    def _json_problem(self, skeleton: list, top: int, offset: int, message: str | None = None) -> Problem:
        """Locate the JSON error in ``skeleton`` (the value starting at byte ``top`` so far)
        plus the file from ``offset`` on, as Python's decoder reports it over the whole file."""
        size = 1 << 16
        while True:  # a window that grows until the error is inside it
            window = read_at(self.path, offset, size)
            segments = skeleton + [(window, offset)]
            text, starts = joined(segments)
            err = None
            try:
                _, end = _DECODER.raw_decode(text)
                if message is not None:
                    err = json.JSONDecodeError(message, text, end)
            except json.JSONDecodeError as exc:
                err = exc
            short = len(window) == size and size < MAX_VALUE_BYTES
            if short and (err is None or err.pos >= len(text) - 64 or err.msg.startswith("Unterminated")):
                size *= 4
                continue
            at = offset if err is None else byte_at(segments, starts, text, err.pos)
            break
        char, line, col = locate_byte(self.path, at, self.bom)
        msg = err.msg if err is not None else "not accepted by DuckDB's JSON parser"
        raw = read_at(self.path, top, 4000).decode("utf-8", "replace")[:1000]
        return Problem("invalid_json", f"not valid JSON at character {char} (line {line}, column {col}): {msg}; "
                       "expected an OTLP ExportServiceRequest document", line, char, raw)

    def _fail_utf8(self, near: int) -> None:
        """Stop at the first byte that is not UTF-8 at or after ``near`` (as the whole-file
        decode reports it: offset without the byte-order mark, raw around it)."""
        bad = first_bad_utf8(self.path, near)
        start = bad - (3 if self.bom else 0)
        raw = read_at(self.path, max(0, start - 40), start - max(0, start - 40) + 40)
        raise _Stop(Problem("invalid_utf8", f"not valid UTF-8 at byte {start}", None, start,
                            raw.decode("utf-8", "backslashreplace")))


def _head(data: bytes) -> str:
    """The first 1000 characters of the document that ``data`` starts with (less if it ends
    before)."""
    text = data.decode("utf-8", "replace")
    try:
        text = text[: _DECODER.raw_decode(text)[1]]
    except json.JSONDecodeError:  # longer than data (or not JSON: the walk stops on it)
        pass
    return text[:1000]
