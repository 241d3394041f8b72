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
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from forensics._db import scalar
from forensics.errors import UsageError
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head, head_of
from forensics.loaders.core.registry import register_format
from forensics.loaders.core.times import has_year

from ..common import CONTINUATION, Binder, LogOptions, emit_logs, finish_logs, text_batches

TS = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
LEVEL = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|SEVERE|PANIC)"
#: a syslog-style day and time without a year (``Dec 10 06:55:46``, ``Dec  4 06:55:46``)
SYSLOG_TS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]?\d \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?"
#: a Java class or logger name (``org.apache.hadoop.mapred.Task``, ``dfs.DataNode$PacketResponder``)
CLASS = r"[\w$.\-]+"

#: name -> pattern, most specific first (a tie in matched lines goes to the earlier one). The
#: time group's text is read by the logs' time parsing (:func:`forensics.loaders.logs.common.time_sql`),
#: which knows every shape used here.
BUILTIN_PATTERNS: dict[str, str] = {
    # Spring Boot: 2026-02-18T10:12:33.123+08:00  INFO 12345 --- [catalog] [nio-8080-exec-1] c.e.Catalog : msg
    "spring_boot": (rf"^(?P<time>{TS})\s+(?P<level>{LEVEL})\s+(?P<pid>\d+)\s+---\s+(?:\[(?P<service>[^\]]*)\]\s+)?"
                    r"\[\s*(?P<thread>[^\]]*)\]\s+(?P<class>\S+)\s*:\s(?P<msg>.*)$"),
    # log4j / logback: 2026-02-18 10:12:33,123 [main] WARN  com.shop.Catalog - msg
    "log4j": rf"^(?P<time>{TS})\s+\[(?P<thread>[^\]]*)\]\s+(?P<level>{LEVEL})\s+(?P<class>\S+)\s+-\s(?P<msg>.*)$",
    # Hadoop / YARN log4j '%d %p [%t] %c: %m': 2015-10-18 18:01:47,978 INFO [main] org.apache...MRAppMaster: msg
    "log4j_level_thread_class": rf"^(?P<time>{TS})\s+(?P<level>{LEVEL})\s+\[(?P<thread>[^\]]*)\]\s+(?P<class>{CLASS}):\s(?P<msg>.*)$",
    # Zookeeper log4j '%d - %-5p [%t:%C{{1}}@%L] - %m': 2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/...:Learner@107] - msg
    "log4j_dash": rf"^(?P<time>{TS})\s+-\s+(?P<level>{LEVEL})\s+\[(?P<thread>.*?)\]\s+-\s(?P<msg>.*)$",
    # Python logging '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
    "python_logging": rf"^(?P<time>{TS})\s+-\s+(?P<logger>\S+)\s+-\s+(?P<level>{LEVEL})\s+-\s(?P<msg>.*)$",
    # OpenStack (oslo.log), optionally after the log file name as Loghub writes it:
    # nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-...] msg
    "oslo": (rf"^(?:(?P<log_file>\S+\.log\S*)\s+)?(?P<time>{TS})\s+(?P<pid>\d+)\s+(?P<level>{LEVEL})\s+(?P<class>{CLASS})"
             r"\s+(?:\[(?P<request>[^\]]*)\]\s+)?(?P<msg>.*)$"),
    # 2026-02-18T10:12:33.123Z ERROR [catalog-service] msg / 2026-02-18 10:12:33,123 WARN msg
    "iso_level": rf"^(?P<time>{TS})\s+\[?(?P<level>{LEVEL})\]?:?\s+(?:\[(?P<service>[^\]]*)\]:?\s+)?(?P<msg>.*)$",
    # RFC 5424 syslog: <PRI>1 TIME HOST APP PROCID MSGID [SD] MSG (the level is PRI mod 8)
    "syslog_rfc5424": (rf"^<(?P<pri>\d{{1,3}})>1 (?P<time>{TS}) (?P<host>\S+) (?P<service>\S+) (?P<pid>\S+) "
                       r"(?P<msgid>\S+) (?:-|(?P<structured_data>\[.*?\]))(?: (?P<msg>.*))?$"),
    # journalctl -o short-iso / syslog with ISO times: TIME HOST APP[PID]: MSG (no level)
    "short_iso": rf"^(?P<time>{TS})\s+(?P<host>\S+)\s+(?P<service>[^\[:\s]+)(?:\[(?P<pid>\d+)\])?:\s(?P<msg>.*)$",
    # BSD syslog (RFC 3164), OpenSSH, journalctl -o short: Dec 10 06:55:46 LabSZ sshd[24200]: msg (no year)
    "syslog_bsd": (rf"^(?:<(?P<pri>\d{{1,3}})>)?(?P<time>{SYSLOG_TS})\s+(?P<host>\S+)\s+(?P<service>[^\[:\s]+)"
                   r"(?:\[(?P<pid>\d+)\])?:\s?(?P<msg>.*)$"),
    # HDFS: 081109 203615 148 INFO dfs.DataNode$PacketResponder: msg
    "hdfs": rf"^(?P<time>\d{{6}} \d{{6}})\s+(?P<pid>\d+)\s+(?P<level>{LEVEL})\s+(?P<class>{CLASS}):\s(?P<msg>.*)$",
    # Spark / log4j '%d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m': 17/06/09 20:10:40 INFO executor.Executor: msg
    "spark": rf"^(?P<time>\d{{2}}/\d{{2}}/\d{{2}} \d{{2}}:\d{{2}}:\d{{2}})\s+(?P<level>{LEVEL})\s+(?P<class>{CLASS}):\s(?P<msg>.*)$",
    # Apache error log: [Sun Dec 04 04:47:44 2005] [notice] msg; 2.4: [Sun Dec 04 04:47:44.123456 2005] [core:error] [pid 1] msg
    "apache_error": (r"^\[(?P<time>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]?\d \d{2}:\d{2}:\d{2}(?:\.\d{1,6})? \d{4})\]\s+"
                     r"\[(?:(?P<module>[\w-]+):)?(?P<level>\w+)\]\s+(?:\[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\]\s+)?"
                     r"(?:\[client (?P<client>[^\]]+)\]\s+)?(?P<msg>.*)$"),
    # Blue Gene/L RAS: - 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO msg
    "bgl": (r"^(?P<alert>\S+) (?P<epoch>\d{10}) (?P<date>\d{4}\.\d{2}\.\d{2}) (?P<node>\S+) "
            r"(?P<time>\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d{6}) (?P<node_repeat>\S+) (?P<type>[A-Z]+) "
            r"(?P<component>[A-Z_]+) (?P<level>[A-Z]+) (?P<msg>.*)$"),
}
#: built-in patterns whose times carry no year
YEARLESS_PATTERNS = ("syslog_bsd",)
#: syslog severity (PRI mod 8) -> canonical severity
SYSLOG_SEVERITY = ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")
_BUILTIN_RE = {name: re.compile(p) for name, p in BUILTIN_PATTERNS.items()}
_CONTINUATION = re.compile(CONTINUATION)
#: a line that starts with a time (in any shape the built-in patterns read, maybe after ``[`` or a
#: syslog ``<PRI>``) is a record of its own: when the pattern does not match it, it is rejected,
#: never folded into the record before it
TIMESTAMPED = (r"^(?:<\d{1,3}>1? ?)?\[?(?:\d{4}-\d{2}-\d{2}[T \-]\d{2}[:.]\d{2}|\d{6} \d{6}\b|\d{2}/\d{2}/\d{2} \d{2}:\d{2}"
               r"|\d{4}/\d{2}/\d{2} \d{2}:\d{2}|\d{2}[/.]\d{2}[/.]\d{4}[ T]\d{2}:\d{2}|\d{2}-\w{3}-\d{4} \d{2}:\d{2}"
               r"|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]?\d \d{2}:"
               rf"|{SYSLOG_TS}|\d{{2}}/\w{{3}}/\d{{4}}:\d{{2}}:)")
#: names a thread, not a service: what a built-in pattern's ``[...]`` holds in Hadoop/log4j layouts
#: (``main``, ``IPC Server handler 14 on 62270``, ``pool-1-thread-3``, ``http-nio-8080-exec-1``)
THREAD_LIKE = (r"main|.*\s.*|qtp\d+-\d+|(?i:.*(?:thread|worker|exec|pool|handler|dispatcher|executor|schedul|"
               r"event-?loop|epoll|nio|listener|reader|writer|timer|task).*)")
_ALIASES = {"severity": "level", "message": "msg", "body": "msg"}


def _best_builtin(lines: list[str]) -> tuple[str | None, int]:
    """The built-in pattern matching most of ``lines`` and how many it matched."""
    best, hits = None, 0
    for name, rx in _BUILTIN_RE.items():
        n = sum(1 for line in lines if rx.match(line))
        if n > hits:
            best, hits = name, n
    return best, hits


def _groups(pattern: str) -> tuple[dict[str, int], int]:
    """Canonical group name -> group number of a pattern (validated), and its number of groups."""
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
    return groups, rx.groups


@dataclass(frozen=True)
class LinePattern:
    """The pattern a file's records are read with: its text, named groups and where it came from."""

    regex: str
    groups: dict[str, int]
    count: int  # number of groups, named or not
    builtin: str | None  # the name in BUILTIN_PATTERNS, None for a user's pattern

    @classmethod
    def of(cls, regex: str, builtin: str | None = None) -> "LinePattern":
        groups, count = _groups(regex)
        return cls(regex, groups, count, builtin)


def plain_fields_sql(source: str, b: Binder, pattern: LinePattern) -> str:
    """Inner SELECT (see :mod:`forensics.loaders.logs.common`): one row per record (a matching line and
    its continuation lines); one reject row per line before the first record and per record
    that starts with a time but does not match the pattern (with its continuation lines)."""
    pat, groups = b(pattern.regex), pattern.groups
    # one regexp_extract for all groups: a STRUCT of g1..gN (DuckDB's group index stops at 9)
    fields = b([f"g{i}" for i in range(1, pattern.count + 1)])
    extracts = [f"{{'key': {b(name)}, 'value': nullif(nullif(m.g{index}, ''), '-')}}"
                for name, index in groups.items() if name != "msg"]
    if "pri" in groups and "level" not in groups:
        words = "[" + ", ".join(f"'{w}'" for w in SYSLOG_SEVERITY) + "]"
        extracts.append(f"{{'key': 'level', 'value': {words}[TRY_CAST(m.g{groups['pri']} AS INTEGER) % 8 + 1]}}")
    entries = "[" + ", ".join(extracts) + "]"
    if pattern.builtin and "service" in groups:  # a thread in brackets is not a service
        entries = (f"list_transform({entries}, lambda e: CASE WHEN e.key = 'service' AND regexp_full_match(e.value, "
                   f"{b(THREAD_LIKE)}) THEN {{'key': 'thread', 'value': e.value}} ELSE e END)")
    msg = f"m.g{groups['msg']}" if "msg" in groups else "head"
    return f"""
WITH m AS (
  SELECT line, raw, regexp_matches(raw, {pat}) AS hit, regexp_matches(raw, {b(TIMESTAMPED)}) AS stamped FROM {source}
), g AS (
  SELECT *, sum(CAST(hit OR stamped AS INTEGER)) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING) AS grp FROM m
), rec AS (
  SELECT min(line) AS source_line, arg_min(raw, line) AS head, bool_or(hit AND line = grp_start) AS is_record,
    string_agg(raw, chr(10) ORDER BY line) AS _raw,
    string_agg(CASE WHEN line <> grp_start THEN raw END, chr(10) ORDER BY line) AS cont
  FROM (SELECT *, min(line) OVER (PARTITION BY grp) AS grp_start FROM g) WHERE grp > 0 GROUP BY grp
), fields AS (
  SELECT source_line, _raw, list_filter({entries}, lambda e: e.value IS NOT NULL) AS e,
    {msg} || coalesce(chr(10) || cont, '') AS body
  FROM (SELECT *, regexp_extract(head, {pat}, {fields}::VARCHAR[]) AS m FROM rec WHERE is_record)
), recs AS (
  SELECT source_line, _raw, NULL AS _pre_code, NULL AS _pre_reason,
    map_from_entries(list_append(e, {{'key': 'msg', 'value': body}})) AS top
  FROM fields
)
SELECT source_line, _raw, _pre_code, _pre_reason, top, MAP {{}}::MAP(VARCHAR, VARCHAR) AS nested, top AS f FROM recs
UNION ALL
SELECT source_line, _raw, 'unparsed_line', 'line starts with a time but does not match the log line pattern'
    || CASE WHEN cont IS NOT NULL THEN ' (rejected with the ' || (len(string_split(cont, chr(10)))) || ' continuation line(s) after it)' ELSE '' END,
  MAP {{}}::MAP(VARCHAR, VARCHAR), MAP {{}}::MAP(VARCHAR, VARCHAR), MAP {{}}::MAP(VARCHAR, VARCHAR)
FROM rec WHERE NOT is_record
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


def _pattern_for(ctx: LoadContext) -> LinePattern:
    pattern = ctx.options.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise UsageError(f"pattern= must be a regular expression string, not {pattern!r}")
        return LinePattern.of(pattern)
    lines = _head_lines(head_of(ctx.path), 200)
    name, _ = _best_builtin(lines)
    if name is None and not lines:  # an empty or blank file: no record to read, nothing to refuse
        name = next(iter(BUILTIN_PATTERNS))
    if name is None:
        ctx.fail("no line matches a built-in log line pattern (" + ", ".join(BUILTIN_PATTERNS) + ")",
                 expected="lines like '2026-02-18T10:12:33.123Z ERROR [service] message'",
                 found=repr(lines[0][:80]) if lines else "no text",
                 hint="pass pattern=r'^(?P<time>...) (?P<level>...) (?P<msg>.*)$' with named groups")
    return LinePattern.of(BUILTIN_PATTERNS[name], builtin=name)


@register_format("plain_logs", signal="logs",
                 description="plain-text log lines (ISO timestamp + level, log4j, Python logging, Spring Boot, "
                             "syslog RFC 5424, journald, or pattern=) with stack-trace continuation lines",
                 sniff=_sniff, extensions=(".log", ".txt"))
def load_plain_logs(ctx: LoadContext) -> None:
    """Load plain-text logs; options ``pattern=``, ``mapping=`` and ``tz=``."""
    opts = LogOptions.of(ctx)
    pattern = _pattern_for(ctx)
    yearless = (not has_year(opts.time_format) if opts.time_format else pattern.builtin in YEARLESS_PATTERNS)
    if yearless and opts.anchor is not None:
        ctx.warn(f"log times carry no year: took it from {opts.anchor.source} (a time later in the year than "
                 f"{opts.anchor.day:%b %d} is in the year before); pass year=YYYY to set it")

    def fields(source: str, b: Binder) -> str:
        return plain_fields_sql(source, b, pattern)

    carry: pa.Table | None = None
    for batch in text_batches(ctx):
        table = batch if carry is None else pa.concat_tables([carry, batch])
        name = ctx.register(table)
        try:
            cut = scalar(ctx.con, f"SELECT max(line) FROM {name} WHERE regexp_matches(raw, ?) OR regexp_matches(raw, ?)",
                         [pattern.regex, TIMESTAMPED])
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

