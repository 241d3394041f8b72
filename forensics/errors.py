"""All exception types of forensics.

Every error that comes from user data names the file, the line (or byte offset / record
index), what was expected, what was found, and how to fix it where a fix is known.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Reason(str, Enum):
    """Reason codes used in ``rejects.reason_code`` and on :class:`LoadError`."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_PROTOBUF = "invalid_protobuf"
    MISSING_FIELD = "missing_field"
    BAD_ID = "bad_id"
    BAD_TIME = "bad_time"
    BAD_VALUE = "bad_value"
    WRONG_SHAPE = "wrong_shape"
    TRUNCATED = "truncated"
    UNPARSED_LINE = "unparsed_line"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    DECOMPRESSION_LIMIT = "decompression_limit"
    UNKNOWN_FORMAT = "unknown_format"


class ForensicsError(Exception):
    """Base class of every error raised by forensics."""


class UsageError(ForensicsError):
    """A caller passed an option or argument that is not valid.

    The message names the parameter, what was passed and what is allowed.
    """


class DetectorFailedWarning(UserWarning):
    """A detector raised while :func:`forensics.detect` ran several: the others' findings are
    still returned, and ``Findings.failures`` records what failed."""


@dataclass
class _Where:
    path: str | None = None
    line: int | None = None
    offset: int | None = None

    def describe(self) -> str:
        parts = [self.path or "<input>"]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        return ":".join(parts[:1]) + ("" if len(parts) == 1 else ", " + ", ".join(parts[1:]))


class LoadError(ForensicsError):
    """A file (or one record of it) could not be loaded.

    Attributes
    ----------
    path, line, offset:
        Where the problem is (line is 1-based; offset is a byte offset or, for
        formats without lines, the 0-based record index).
    expected, found:
        What the loader expected there and what it found instead.
    reason:
        A :class:`Reason` code.
    hint:
        How to fix it, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        offset: int | None = None,
        expected: str | None = None,
        found: str | None = None,
        reason: Reason | str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.offset = offset
        self.expected = expected
        self.found = found
        self.reason = Reason(reason) if isinstance(reason, str) and reason in Reason._value2member_map_ else reason
        self.hint = hint
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = _Where(self.path, self.line, self.offset).describe()
        text = f"{where}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected}"
            text += f", found {self.found})" if self.found is not None else ")"
        if self.hint:
            text += f"; {self.hint}"
        return text


class UnknownFormatError(LoadError):
    """Sniffing could not tell which format a file is in."""


class StrictModeError(LoadError):
    """Raised in strict mode at the first record that cannot be loaded."""


class CaseError(ForensicsError):
    """The case file cannot be opened, or a query over it failed."""


class QueryError(CaseError):
    """A SQL query over a case failed; the message carries DuckDB's explanation."""


__all__ = [
    "CaseError",
    "ForensicsError",
    "LoadError",
    "QueryError",
    "Reason",
    "StrictModeError",
    "UnknownFormatError",
    "UsageError",
]
