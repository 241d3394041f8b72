"""What a format's sniff function sees: the path and the first bytes of the (decompressed) file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from .io import open_binary, read_head

HEAD_BYTES = 65536
#: a first record up to this long is kept whole for sniffing; a longer one is skipped and the
#: records after it are sniffed
RECORD_BYTES = 16 << 20
#: how far a first record is followed to its end (the default ``max_line_bytes``: a longer line
#: is rejected by every loader anyway)
SCAN_BYTES = 128 << 20


@dataclass
class Head:
    """What a sniff function sees: the path, its extension and the first decompressed bytes."""

    path: str
    data: bytes
    complete: bool  # True when ``data`` is the whole file

    @cached_property
    def ext(self) -> str:
        """Lowercase extension without compression suffix, e.g. '.json' for 'x.json.gz'."""
        name = os.path.basename(self.path).lower()
        for suffix in (".gz", ".gzip", ".zst", ".zstd"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        return os.path.splitext(name)[1]

    @cached_property
    def text(self) -> str | None:
        """The head decoded as UTF-8, or None for binary content."""
        data = self.data
        for cut in range(4):  # a multi-byte char may be split at the end of the head
            try:
                return (data[: len(data) - cut] if cut else data).decode("utf-8")
            except UnicodeDecodeError:
                continue
        return None

    @cached_property
    def stripped(self) -> str:
        return (self.text or "").lstrip("\ufeff \t\r\n")

    @cached_property
    def lines(self) -> list[str]:
        """Complete non-blank lines of the head (the last partial line dropped unless complete)."""
        text = self.text or ""
        parts = text.split("\n")
        if not self.complete and len(parts) > 1:
            parts = parts[:-1]
        return [p.rstrip("\r") for p in parts if p.strip()]

    @cached_property
    def first_json(self) -> Any:
        """The first line parsed as JSON if it is a complete JSON value, else the whole head if it
        parses, else None."""
        for candidate in (self.lines[0] if self.lines else None, self.text if self.complete else None):
            if not candidate:
                continue
            try:
                return orjson.loads(candidate)
            except orjson.JSONDecodeError:
                continue
        return None

    def has(self, pattern: str) -> bool:
        return re.search(pattern, self.text or "") is not None


def head_of(path: str) -> Head:
    """The first :data:`HEAD_BYTES` decompressed bytes of ``path``."""
    data = read_head(path, HEAD_BYTES + 1)
    return Head(path, data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES)


def head_of_records(path: str) -> Head | None:
    """A head of complete records for a file whose first record is longer than :data:`HEAD_BYTES`
    (a stack trace on line 1): that record whole (a record longer than :data:`RECORD_BYTES` is
    skipped, not kept) and :data:`HEAD_BYTES` of the records after it. None when the first record
    does not end within :data:`SCAN_BYTES` or nothing follows a skipped one (one huge document:
    its first bytes are all there is to sniff). Memory: :data:`RECORD_BYTES` at most."""
    try:
        with open_binary(path) as fh:
            first = fh.readline(RECORD_BYTES + 1)
            while first and not first.strip():  # blank lines before the first record
                first = fh.readline(RECORD_BYTES + 1)
            scanned, line = len(first), first
            while line and not line.endswith(b"\n") and len(first) > RECORD_BYTES:  # skip to its end
                first = b""
                if scanned > SCAN_BYTES:
                    return None
                line = fh.readline(1 << 20)
                scanned += len(line)
            rest = fh.read(HEAD_BYTES + 1)
    except Exception:  # a truncated stream: the loader reports it; sniff with the first bytes
        return None
    if not first and not rest:
        return None
    return Head(path, first + rest[:HEAD_BYTES], complete=len(rest) <= HEAD_BYTES)