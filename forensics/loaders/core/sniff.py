"""Format detection from the first bytes of a (decompressed) file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from ..errors import UnknownFormatError
from .io import compression_of, read_head
from .registry import formats

HEAD_BYTES = 65536


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
    data = read_head(path, HEAD_BYTES + 1)
    return Head(path, data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES)


def sniff(path: str) -> str:
    """Name of the format of ``path``; raises UnknownFormatError naming the file otherwise."""
    head = head_of(path)
    if not head.data.strip():
        raise UnknownFormatError("file is empty", path=path, expected="an export file with at least one record", found="0 bytes of data")
    scores = []
    for spec in formats().values():
        try:
            score = float(spec.sniff(head))
        except Exception:  # a sniff function must never break detection of other formats
            score = 0.0
        if score > 0:
            scores.append((score, spec.name))
    if not scores:
        kind = compression_of(path) or "uncompressed"
        preview = (head.stripped[:60] if head.text is not None else repr(head.data[:24]))
        raise UnknownFormatError(
            "cannot tell which export format this is",
            path=path,
            expected="one of: " + ", ".join(sorted(formats())),
            found=f"{kind} content starting {preview!r}",
            hint="pass format=... (CLI: --format-in NAME); `forensics formats` lists them",
        )
    scores.sort(key=lambda s: (-s[0], s[1]))
    return scores[0][1]
