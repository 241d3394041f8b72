"""What a format's sniff function sees: the path and the first bytes of the (decompressed) file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from .io import read_head

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
    """The first :data:`HEAD_BYTES` decompressed bytes of ``path``."""
    data = read_head(path, HEAD_BYTES + 1)
    return Head(path, data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES)
