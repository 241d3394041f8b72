"""Loader options: each declared once with its type, default and meaning, and checked before a load.

``forensics.load(case, path, batch_bytes="1MiB", templates="no")`` and ``forensics load -O
batch_bytes=1MiB -O templates=no`` reach the loaders as ``1048576`` and ``False``: text is parsed
by the option's type (sizes take ``KB``/``MB``/``GB`` and ``KiB``/``MiB``/``GiB``; booleans
``true/false``, ``yes/no``, ``on/off``, ``1/0``). An unknown option, or a value its type does not
accept, is a :class:`~forensics.errors.UsageError` naming it, before anything is read.

A format registered outside forensics declares its own options with
``register_format(..., options=(LoadOption(...),))``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from forensics._spelling import option as spelled
from forensics.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
KINDS = ("bool", "size", "count", "ratio", "text", "choice", "time", "mapping", "memory")


@dataclass(frozen=True)
class LoadOption:
    """One loader option.

    ``kind``: ``bool``; ``size`` (bytes, an int or text like ``16MiB``); ``count`` (an int);
    ``ratio`` (a number >= 1); ``text``; ``choice`` (one of ``choices``); ``time`` (ISO 8601
    text, epoch seconds or a datetime, checked by the loader); ``mapping`` (a dict); ``memory`` (a
    DuckDB memory size like ``512MB``, or None).
    """

    name: str
    kind: str
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def parse(self, value: Any) -> Any:
        """``value`` as this option's type, or a UsageError naming the option and what it takes."""
        if value is None and (self.default is None or self.kind == "memory"):
            return None
        parse = getattr(self, f"_{self.kind}")
        try:
            out = parse(value)
        except (TypeError, ValueError):
            out = _BAD
        if out is _BAD:
            raise UsageError(f"{spelled(self.name, value)} is not {self._takes()} ({self.doc})")
        if self.minimum is not None and isinstance(out, (int, float)) and out < self.minimum:
            raise UsageError(f"{spelled(self.name, value)} is below its minimum {self.minimum:g} ({self.doc})")
        return out

    def _takes(self) -> str:
        return {"bool": "a boolean (true/false, yes/no, on/off, 1/0)",
                "size": "a size in bytes (an integer, or e.g. 16MiB, 1GB)",
                "count": "a whole number", "ratio": "a number", "text": "text",
                "choice": "one of: " + ", ".join(self.choices), "time": "a time (ISO 8601 text, epoch seconds)",
                "mapping": "a mapping of field names", "memory": "a memory size like 512MB or 2GB"}[self.kind]

    @staticmethod
    def _bool(value: Any) -> Any:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else _BAD

    @staticmethod
    def _size(value: Any) -> Any:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        m = _SIZE.match(str(value))
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()]) if m else _BAD

    @staticmethod
    def _count(value: Any) -> Any:
        if isinstance(value, bool):
            return _BAD
        return value if isinstance(value, int) else int(str(value).strip())

    @staticmethod
    def _ratio(value: Any) -> Any:
        return _BAD if isinstance(value, bool) else float(value)

    @staticmethod
    def _text(value: Any) -> Any:
        return value if isinstance(value, str) else _BAD

    def _choice(self, value: Any) -> Any:
        return value if isinstance(value, str) and value in self.choices else _BAD

    @staticmethod
    def _time(value: Any) -> Any:
        return value if isinstance(value, (str, int, float, datetime)) and not isinstance(value, bool) else _BAD

    @staticmethod
    def _mapping(value: Any) -> Any:
        return value if isinstance(value, Mapping) else _BAD

    @staticmethod
    def _memory(value: Any) -> Any:
        return value if isinstance(value, str) and _SIZE.match(value) else _BAD


_BAD = object()

#: every option forensics' own loaders understand
OPTIONS: dict[str, LoadOption] = {o.name: o for o in [
    # reading (every format)
    LoadOption("batch_bytes", "size", 16 << 20, "bytes read per block of lines", minimum=1),
    LoadOption("max_line_bytes", "size", 128 << 20,
               "a longer line is skipped and rejected (too_large); the lines after it are read", minimum=1),
    LoadOption("max_document_bytes", "size", 4 << 30, "a larger single-document file is rejected", minimum=1),
    LoadOption("max_compression_ratio", "ratio", 200.0,
               "decompressing stops (a decompression_limit reject) once a .gz/.zst file has given more than this "
               "many bytes per compressed byte, past the first 16 MiB", minimum=1),
    LoadOption("max_decompressed_bytes", "size", 1 << 40,
               "decompressing stops (a decompression_limit reject) after this many bytes", minimum=1),
    # loading into a case
    LoadOption("memory_limit", "memory", "512MB", "DuckDB's memory limit while loading into a case file"),
    LoadOption("read_ahead", "bool", True, "read and convert the next files while the current one is stored"),
    LoadOption("group_small_files", "bool", True, "small files share a transaction"),
    LoadOption("batch_small_files", "bool", True,
               "small files of a format with a large fixed conversion cost (OTLP) are converted together"),
    LoadOption("templates", "bool", True, "mine log templates (drain3) while loading"),
    # formats
    LoadOption("tz", "text", None, "time zone of log times written without an offset"),
    LoadOption("mapping", "mapping", None, "field mapping of logs (canonical field -> key(s)) and of spans tables "
                                           "(canonical field -> column)"),
    LoadOption("year", "count", None, "year of log times written without one (syslog); default: from the case's "
                                      "other data, else the file's modification time", minimum=1),
    LoadOption("time_format", "text", None, "strptime format of log times in a shape not read by default"),
    LoadOption("duration_unit", "choice", None, "unit of a spans table's duration column without one in its name",
               choices=("s", "ms", "us", "ns")),
    LoadOption("pattern", "text", None, "regex with named groups for plain-text logs"),
    LoadOption("scrape_time", "time", None, "time of Prometheus samples without a timestamp"),
    LoadOption("dialect", "choice", None, "Prometheus text dialect", choices=("prometheus", "openmetrics")),
    LoadOption("query", "text", None, "PromQL query a Prometheus API response answered"),
    LoadOption("whole_documents", "bool", False, "parse JSON documents whole instead of streaming them"),
    LoadOption("otlp_fast", "bool", True, "OTLP collector lines through the Arrow fast path"),
    LoadOption("jaeger_fast", "bool", True, "Jaeger spans through the Arrow fast path"),
    LoadOption("zipkin_fast", "bool", True, "Zipkin spans through the Arrow fast path"),
]}


def declared(extra: Iterable[LoadOption] = ()) -> dict[str, LoadOption]:
    """Forensics' options plus those the registered formats declare (and ``extra``)."""
    from .registry import formats

    out = dict(OPTIONS)
    for spec in formats().values():
        out.update({o.name: o for o in spec.options})
    out.update({o.name: o for o in extra})
    return out


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with every value parsed by its option's type; UsageError for an unknown option
    (listing the known ones) or a value its type does not take."""
    known = declared()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"unknown loader option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(spelled(u, shown='...') for u in unknown)}; options: {', '.join(sorted(known))}")
    return {k: known[k].parse(v) for k, v in options.items()}


def option_value(options: Mapping[str, Any], name: str) -> Any:
    """The value of option ``name`` in checked ``options``, or its default."""
    return options[name] if name in options else OPTIONS[name].default
