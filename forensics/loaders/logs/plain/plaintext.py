"""Plain-text logs: one record per line that starts with a timestamp, continuation lines (stack
traces) appended to the record before them.

A regular expression with named groups reads each record's first line: ``pattern=`` gives
yours (``format="plain_logs"`` must then be passed too, since sniffing cannot know it), else
the built-in pattern that matches most of the file's first lines is used (see
:data:`BUILTIN_PATTERNS`). Group names: ``time`` (required), ``level`` (or ``severity``),
``msg`` (or ``message``/``body``; without it the whole line is the body), ``service``,
``trace_id``, ``span_id``, ``pri`` (a syslog priority, giving the level when there is no
``level`` group) (without id groups, ``trace_id=<hex>``/``span_id=<hex>`` written in
the line is used); other groups become attributes. An empty group or a lone ``-`` (syslog's nil
value) is absent. Patterns use the syntax shared by
Python's ``re`` and RE2 (DuckDB), e.g. ``(?P<name>...)``.

A line that does not match the pattern is a continuation of the record before it (Java and
Python stack traces) and is appended to its body with a newline; lines before the first
matching line are rejected (``unparsed_line``). Sniffing claims a file only when a built-in
pattern matches its first line and at least half of its first lines -- it never guesses.

Matching, grouping continuation lines (a running count of matching lines over line numbers) and
field extraction are DuckDB SQL over each batch of lines; a record cut by a batch boundary is
carried to the next batch.
"""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from forensics._db import scalar
from forensics.errors import UsageError
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from ..common import CONTINUATION, Binder, LogOptions, emit_logs, finish_logs, text_batches

TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
LEVEL = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|SEVERE|PANIC)"

#: name -> pattern, most specific first (a tie in matched lines goes to the earlier one)
BUILTIN_PATTERNS: dict[str, str] = {
    # Spring Boot: 2026-02-18T10:12:33.123+08:00  INFO 12345 --- [catalog] [nio-8080-exec-1] c.e.Catalog : msg
    "spring_boot": (rf"^(?P<time>{TS})\s+(?P<level>{LEVEL})\s+(?P<pid>\d+)\s+---\s+(?:\[(?P<service>[^\]]*)\]\s+)?"
                    r"\[\s*(?P<thread>[^\]]*)\]\s+(?P<class>\S+)\s*:\s(?P<msg>.*)$"),
    # log4j / logback: 2026-02-18 10:12:33,123 [main] WARN  com.shop.Catalog - msg
    "log4j": rf"^(?P<time>{TS})\s+\[(?P<thread>[^\]]*)\]\s+(?P<level>{LEVEL})\s+(?P<class>\S+)\s+-\s(?P<msg>.*)$",
    # Python logging '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
    "python_logging": rf"^(?P<time>{TS})\s+-\s+(?P<logger>\S+)\s+-\s+(?P<level>{LEVEL})\s+-\s(?P<msg>.*)$",
    # 2026-02-18T10:12:33.123Z ERROR [catalog-service] msg / 2026-02-18 10:12:33,123 WARN msg
    "iso_level": rf"^(?P<time>{TS})\s+\[?(?P<level>{LEVEL})\]?:?\s+(?:\[(?P<service>[^\]]*)\]:?\s+)?(?P<msg>.*)$",
    # RFC 5424 syslog: <PRI>1 TIME HOST APP PROCID MSGID [SD] MSG (the level is PRI mod 8)
    "syslog_rfc5424": (rf"^<(?P<pri>\d{{1,3}})>1 (?P<time>{TS}) (?P<host>\S+) (?P<service>\S+) (?P<pid>\S+) "
                       r"(?P<msgid>\S+) (?:-|(?P<structured_data>\[.*?\]))(?: (?P<msg>.*))?$"),
    # journalctl -o short-iso / syslog with ISO times: TIME HOST APP[PID]: MSG (no level)
    "short_iso": rf"^(?P<time>{TS})\s+(?P<host>\S+)\s+(?P<service>[^\[:\s]+)(?:\[(?P<pid>\d+)\])?:\s(?P<msg>.*)$",
}
#: syslog severity (PRI mod 8) -> canonical severity
SYSLOG_SEVERITY = ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")
_BUILTIN_RE = {name: re.compile(p) for name, p in BUILTIN_PATTERNS.items()}
_CONTINUATION = re.compile(CONTINUATION)
#: ids found in the message when the pattern has no group for them
ID_IN_TEXT = {
    "trace_id": r"(?i)\btrace[_.\-]?id[=:]\s*\"?([0-9a-f]{16,32})\b",
    "span_id": r"(?i)\bspan[_.\-]?id[=:]\s*\"?([0-9a-f]{16})\b",
}
_ALIASES = {"severity": "level", "message": "msg", "body": "msg"}


def _best_builtin(lines: list[str]) -> tuple[str | None, int]:
    """The built-in pattern matching most of ``lines`` and how many it matched."""
    best, hits = None, 0
    for name, rx in _BUILTIN_RE.items():
        n = sum(1 for line in lines if rx.match(line))
        if n > hits:
            best, hits = name, n
    return best, hits


def _groups(pattern: str) -> dict[str, int]:
    """Canonical group name -> group number of a user pattern (validated)."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"pattern= is not a valid regular expression ({exc}): {pattern!r}") from exc
    groups: dict[str, int] = {}
    for name, index in rx.groupindex.items():
        groups.setdefault(_ALIASES.get(name, name), index)
    if "time" not in groups:
        raise UsageError(f"pattern= needs a named group 'time', e.g. r'^(?P<time>\\S+ \\S+) (?P<level>\\w+) "
                         f"(?P<msg>.*)$'; got {pattern!r}")
    return groups


def plain_fields_sql(source: str, b: Binder, pattern: str, groups: dict[str, int]) -> str:
    """Inner SELECT (see :mod:`forensics.loaders.logs.common`): one row per record (a matching line and
    its continuation lines), one reject row per line before the first record."""
    pat = b(pattern)
    extracts = ", ".join(
        f"{{'key': {b(name)}, 'value': nullif(nullif(regexp_extract(head, {pat}, {index}), ''), '-')}}"
        for name, index in groups.items() if name != "msg")
    if "pri" in groups and "level" not in groups:
        words = "[" + ", ".join(f"'{w}'" for w in SYSLOG_SEVERITY) + "]"
        extracts += (f", {{'key': 'level', 'value': {words}[TRY_CAST(regexp_extract(head, {pat}, {groups['pri']}) "
                     f"AS INTEGER) % 8 + 1]}}")
    for name, rx in ID_IN_TEXT.items():
        if name not in groups:
            extracts += f", {{'key': {b(name)}, 'value': nullif(regexp_extract(head, {b(rx)}, 1), '')}}"
    msg = f"regexp_extract(head, {pat}, {groups['msg']})" if "msg" in groups else "head"
    return f"""
WITH m AS (
  SELECT line, raw, regexp_matches(raw, {pat}) AS hit FROM {source}
), g AS (
  SELECT *, sum(CAST(hit AS INTEGER)) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING) AS grp FROM m
), rec AS (
  SELECT min(line) AS source_line, arg_min(raw, line) AS head,
    string_agg(raw, chr(10) ORDER BY line) AS _raw,
    string_agg(CASE WHEN NOT hit THEN raw END, chr(10) ORDER BY line) AS cont
  FROM g WHERE grp > 0 GROUP BY grp
), fields AS (
  SELECT source_line, _raw,
    list_filter([{extracts}], lambda e: e.value IS NOT NULL) AS e,
    {msg} || coalesce(chr(10) || cont, '') AS body
  FROM rec
), recs AS (
  SELECT source_line, _raw, NULL AS _pre_code, NULL AS _pre_reason,
    map_from_entries(list_append(e, {{'key': 'msg', 'value': body}})) AS top
  FROM fields
)
SELECT source_line, _raw, _pre_code, _pre_reason, top, MAP {{}}::MAP(VARCHAR, VARCHAR) AS nested, top AS f FROM recs
UNION ALL
SELECT line, raw, 'unparsed_line', 'line does not match the log line pattern and comes before the first line that does',
  MAP {{}}::MAP(VARCHAR, VARCHAR), MAP {{}}::MAP(VARCHAR, VARCHAR), MAP {{}}::MAP(VARCHAR, VARCHAR)
FROM g WHERE grp = 0
"""


def _head_lines(head: Head, n: int) -> list[str]:
    return [line.lstrip("\ufeff") for line in head.lines[:n]]


def _sniff(head: Head) -> float:
    lines = _head_lines(head, 50)
    name, hits = _best_builtin(lines)
    if name is None or not any(_BUILTIN_RE[name].match(line) for line in lines[:5]):
        return 0.0
    # stack-trace lines are expected between records: they count for neither side
    others = sum(1 for line in lines if not _BUILTIN_RE[name].match(line) and not _CONTINUATION.match(line))
    return 0.5 if hits >= others else 0.0


def _pattern_for(ctx: LoadContext) -> tuple[str, dict[str, int]]:
    pattern = ctx.options.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise UsageError(f"pattern= must be a regular expression string, not {pattern!r}")
        return pattern, _groups(pattern)
    from forensics.loaders.core.head import head_of

    lines = _head_lines(head_of(ctx.path), 200)
    name, _ = _best_builtin(lines)
    if name is None and not lines:  # an empty or blank file: no record to read, nothing to refuse
        name = next(iter(BUILTIN_PATTERNS))
    if name is None:
        ctx.fail("no line matches a built-in log line pattern (ISO timestamp + level, log4j, Python logging, "
                 "Spring Boot, syslog RFC 5424, journald short-iso)", expected="lines like '2026-02-18T10:12:33.123Z ERROR [service] message'",
                 found=repr(lines[0][:80]) if lines else "no text",
                 hint="pass pattern=r'^(?P<time>...) (?P<level>...) (?P<msg>.*)$' with named groups")
    return BUILTIN_PATTERNS[name], _groups(BUILTIN_PATTERNS[name])


@register_format("plain_logs", signal="logs",
                 description="plain-text log lines (ISO timestamp + level, log4j, Python logging, Spring Boot, "
                             "syslog RFC 5424, journald, or pattern=) with stack-trace continuation lines",
                 sniff=_sniff, extensions=(".log", ".txt"))
def load_plain_logs(ctx: LoadContext) -> None:
    """Load plain-text logs; options ``pattern=``, ``mapping=`` and ``tz=``."""
    opts = LogOptions.from_options(ctx.options)
    pattern, groups = _pattern_for(ctx)

    def fields(source: str, b: Binder) -> str:
        return plain_fields_sql(source, b, pattern, groups)

    carry: pa.Table | None = None
    for batch in text_batches(ctx):
        table = batch if carry is None else pa.concat_tables([carry, batch])
        name = ctx.register(table)
        try:
            cut = scalar(ctx.con, f"SELECT max(line) FROM {name} WHERE regexp_matches(raw, ?)", [pattern])
        finally:
            ctx.unregister(name)
        if cut is None:  # no record starts in this batch
            if carry is not None:
                carry = table  # all continuation lines of the carried record
                continue
            emit_logs(ctx, table, fields, opts)  # all before the first record: rejects
            continue
        # the last record may go on in the next batch: keep it for then
        done = table.filter(pc.less(table.column("line"), cut))
        carry = table.filter(pc.greater_equal(table.column("line"), cut))
        if done.num_rows:
            emit_logs(ctx, done, fields, opts)
    if carry is not None and carry.num_rows:
        emit_logs(ctx, carry, fields, opts)
    finish_logs(ctx)

