"""Format detection: the registered format whose sniff function is the most confident."""
from __future__ import annotations

from forensics._spelling import option as spelled
from forensics.errors import UnknownFormatError

from .head import Head, head_of, head_of_records
from .io import compression_of
from .registry import formats

__all__ = ["Head", "head_of", "sniff"]


def sniff(path: str) -> str:
    """Name of the format of ``path``; raises UnknownFormatError naming the file otherwise."""
    head = head_of(path)
    if not head.data.strip():
        raise UnknownFormatError("file is empty", path=path, expected="an export file with at least one record", found="0 bytes of data")
    scores = _scores(head)
    if not scores and not head.complete and b"\n" not in head.data.lstrip():  # a first record longer than the head
        whole = head_of_records(path)
        if whole is not None:
            head, scores = whole, _scores(whole)
    if not scores:
        kind = compression_of(path) or "uncompressed"
        preview = (head.stripped[:60] if head.text is not None else repr(head.data[:24]))
        raise UnknownFormatError(
            "cannot tell which export format this is",
            path=path,
            expected="one of: " + ", ".join(sorted(formats())),
            found=f"{kind} content starting {preview!r}",
            hint=f"pass {spelled('format', shown='NAME')}; `forensics formats` lists them",
            offset=0,
        )
    scores.sort(key=lambda s: (-s[0], s[1]))
    return scores[0][1]


def _scores(head: Head) -> list[tuple[float, str]]:
    """(confidence, format) of every format whose sniff function says yes."""
    scores = []
    for spec in formats().values():
        try:
            score = float(spec.sniff(head))
        except Exception:  # a sniff function must never break detection of other formats (RecursionError included)
            score = 0.0
        if score > 0:
            scores.append((score, spec.name))
    return scores
