"""Positions in a (possibly compressed) text file for reject messages, without holding it:
bytes read again from an offset, the first byte that is not UTF-8, a byte offset as the
character offset, line and column Python's ``json`` reports, and the file offset of a
character of a text pieced together from parts of the file."""
from __future__ import annotations

from typing import BinaryIO

import numpy as np

from . import io as fio


def first_bad_utf8(path: str, near: int) -> int:
    """File offset of the first byte at or after ``near`` that is not valid UTF-8."""
    carry, at = b"", near
    with fio.open_binary(path) as fh:
        skip(fh, near)
        while True:
            try:
                chunk = fh.read(1 << 20)
            except Exception:  # a broken compressed stream
                chunk = b""
            data = carry + chunk
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as exc:
                if chunk and exc.reason == "unexpected end of data":  # a character cut by the read
                    carry = data[exc.start:]
                else:
                    return at + exc.start
            if not chunk:
                return at + len(data)
            at += len(data) - len(carry)


def skip(fh: BinaryIO, n: int) -> None:
    """Read and drop ``n`` bytes of ``fh`` (fewer at its end)."""
    while n > 0:
        got = fh.read(min(n, 1 << 24))
        if not got:
            return
        n -= len(got)


def joined(segments: list[tuple[bytes, int | None]]) -> tuple[str, list[int]]:
    """The segments as one text, and the character offset where each starts."""
    texts = [seg.decode("utf-8", "replace") for seg, _ in segments]
    starts = np.cumsum([0] + [len(t) for t in texts[:-1]]).tolist()
    return "".join(texts), starts


def byte_at(segments: list[tuple[bytes, int | None]], starts: list[int], text: str, pos: int) -> int:
    """File byte offset of character ``pos`` of the joined segments (a placeholder maps to the
    next real segment)."""
    k = int(np.searchsorted(starts, pos, side="right")) - 1
    while segments[k][1] is None and k + 1 < len(segments):
        k, pos = k + 1, starts[k + 1]
    seg, at = segments[k]
    return int(at) + len(text[starts[k]: pos].encode("utf-8", "replace"))


def read_at(path: str, offset: int, size: int) -> bytes:
    """``size`` decompressed bytes of the file from ``offset`` (fewer at its end, or where a
    broken compressed stream ends)."""
    out = b""
    try:
        with fio.open_binary(path) as fh:
            skip(fh, offset)
            while len(out) < size:
                got = fh.read(size - len(out))
                if not got:
                    break
                out += got
    except Exception:  # a broken compressed stream: what came before it
        pass
    return out


def locate_byte(path: str, byte: int, bom: bool) -> tuple[int, int, int]:
    """(character offset, 1-based line, 1-based column) of file byte ``byte``, counted as
    Python counts them in the decoded text (a byte-order mark is not a character)."""
    chars, lines, last_nl, done = 0, 1, -1, 0
    with fio.open_binary(path) as fh:
        while done < byte:
            got = fh.read(min(byte - done, 1 << 24))
            if not got:
                break
            arr = np.frombuffer(got, dtype=np.uint8)
            starts = (arr & 0xC0) != 0x80  # bytes that start a character
            nl = np.flatnonzero(arr == 10)
            if len(nl):
                last_nl = chars + int(np.count_nonzero(starts[: nl[-1]]))
                lines += len(nl)
            chars += int(np.count_nonzero(starts))
            done += len(got)
    skip = 1 if bom else 0
    chars, last_nl = chars - skip, (last_nl - skip if last_nl >= 0 else -1)
    return chars, lines, chars - last_nl
