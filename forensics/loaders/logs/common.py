"""SQL shared by the log loaders (JSON lines, logfmt, plain text): field mapping, time parsing,
severity vocabulary, trace/span id normalization and the validation that sends a row to
``logs`` or to ``rejects``.

A log loader builds an *inner* SELECT with one row per record and these columns:

``source_line`` (BIGINT), ``_raw`` (VARCHAR)
    where the record came from and its text.
``_pre_code``, ``_pre_reason`` (VARCHAR)
    a reject decided by the format itself (e.g. ``invalid_json``), NULL when the record parsed.
``f`` (MAP(VARCHAR, VARCHAR))
    scalar fields by name, values as text; members of nested objects appear as ``parent.child``.
``top`` (MAP(VARCHAR, VARCHAR))
    the record's own fields as text (nested objects and arrays as compact JSON): the
    candidates for ``attributes``.
``nested`` (MAP(VARCHAR, VARCHAR))
    the flattened members of object-valued fields (``log.level``); used for the attributes of an
    object a canonical field was taken from.

:func:`finalize_logs_sql` then picks the canonical fields (see :data:`FIELD_KEYS`), parses time
(see :func:`time_sql`) and severity (see :func:`severity_sql`), normalizes ids and adds
``_reject_code``/``_reject_reason``. Values (field names, time zones, patterns) are bind
parameters collected by a :class:`Binder`.
"""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from forensics._db import one, scalar
from forensics.errors import UsageError

from ..core import times
from ..core.semconv import SPAN_ID_HEX, TRACE_ID_HEX, hex_id_sql

#: canonical field -> keys looked for, in priority order (a key with dots matches a literal
#: dotted key or a member of a nested object: ``log.level`` finds ``{"log.level": ..}`` and
#: ``{"log": {"level": ..}}``). ``docker.time`` is the docker json-file envelope's time, used
#: only when the application's own record has no time (``heroku.time`` likewise for the
#: ``heroku logs`` prefix); ``at`` is the level of Heroku router lines.
FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "time": ("@timestamp", "timestamp", "time", "ts", "datetime", "t", "docker.time", "container.time",
             "heroku.time"),
    "severity": ("level", "severity", "lvl", "log.level", "levelname", "severity_text", "loglevel", "at"),
    "body": ("msg", "message", "body", "event", "log", "error", "err", "desc"),
    "trace_id": ("trace_id", "traceId", "traceID", "trace.id", "traceid", "dd.trace_id",
                 "logging.googleapis.com/trace", "AWS-XRAY-TRACE-ID"),
    "span_id": ("span_id", "spanId", "spanID", "span.id", "spanid", "dd.span_id", "logging.googleapis.com/spanId"),
    "service": ("service", "service.name", "dd.service", "app", "application", "logger", "logger_name", "name",
                "serviceContext.service", "kubernetes.container_name", "k8s.container.name"),
}
#: a key that is only used when another key is present too (bunyan's ``name`` next to ``v``)
GATED_KEYS: dict[tuple[str, str], str] = {("service", "name"): "v"}
#: option names accepted in ``mapping=`` for each canonical field
MAPPING_ALIASES: dict[str, str] = {
    "time": "time", "timestamp": "time", "severity": "severity", "level": "severity", "body": "body",
    "msg": "body", "message": "body", "trace_id": "trace_id", "span_id": "span_id", "service": "service",
}

SEVERITY_WORDS: dict[str, tuple[str, ...]] = {
    "trace": ("trace", "trc", "finest", "verbose", "all"),
    "debug": ("debug", "dbg", "dbug", "fine", "finer", "config", "d"),
    "info": ("info", "inf", "information", "informational", "notice", "i"),
    "warn": ("warn", "warning", "wrn", "w"),
    "error": ("error", "err", "eror", "severe", "e"),
    "fatal": ("fatal", "ftl", "critical", "crit", "panic", "dpanic", "emerg", "emergency", "alert", "f"),
}
#: OTLP SeverityNumber of the first value of each canonical severity's range
SEVERITY_NUMBER = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}

#: a line that continues the message before it: stack-trace frames and causes (Java, Python,
#: Go), indented text (Python's and RE2's shared syntax: used by the SQL and the sniffers)
CONTINUATION = r"^(?:\s|Caused by:|Traceback \(|\.\.\. \d+ more|goroutine \d+ \[|[\w.$]+(?:Exception|Error)(?::|$))"

#: trace context written in a record's text (what :func:`finalize_logs_sql` reads when no field
#: holds it): a W3C ``traceparent`` value (trace and span), else ``TraceID: <hex>``,
#: ``trace_id=<hex>``, ``"traceId":"<hex>"``, ``trace.id``/``trace-id``; likewise span ids
#: (Python's and RE2's shared syntax)
TRACEPARENT_IN_TEXT = r"(?i)\b00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b"
TRACE_ID_IN_TEXT = r"""(?i)\btrace[_.\- ]?id["']?\s*[:=]\s*["']?([0-9a-f]{16,32})\b"""
SPAN_ID_IN_TEXT = r"""(?i)\bspan[_.\- ]?id["']?\s*[:=]\s*["']?([0-9a-f]{16})\b"""

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


class Binder:
    """Collects bind parameters for one SQL statement: ``b(value)`` returns ``$pN``."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


@dataclass(frozen=True)
class TimeZoneOption:
    """How naive (offset-less) times are read: an IANA zone name or a fixed offset in minutes."""

    name: str | None = None
    offset_minutes: int | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{'+' if (self.offset_minutes or 0) >= 0 else '-'}{abs(self.offset_minutes or 0) // 60:02d}:{abs(self.offset_minutes or 0) % 60:02d}"


def parse_tz(value: str | None) -> TimeZoneOption:
    """Validate the ``tz=`` option: an IANA name (``Asia/Shanghai``) or an offset (``+08:00``)."""
    if value is None or value in ("UTC", "Z", "utc"):
        return TimeZoneOption(offset_minutes=0)
    if not isinstance(value, str):
        raise UsageError(f"tz must be a time zone name like 'Asia/Shanghai' or an offset like '+08:00', not {value!r}")
    m = _OFFSET.match(value.strip())
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
        if minutes > 14 * 60:
            raise UsageError(f"tz offset {value!r} is out of range (-14:00 .. +14:00)")
        return TimeZoneOption(offset_minutes=minutes if m.group(1) == "+" else -minutes)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"unknown time zone tz={value!r}; use an IANA name like 'Asia/Shanghai' or an offset "
                         f"like '+08:00'") from exc
    return TimeZoneOption(name=value)


def parse_mapping(mapping: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """Validate ``mapping=``: canonical field -> a key (or list of keys) tried before the defaults."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise UsageError(f"mapping must be a dict like {{'time': 'eventTime', 'body': 'text'}}, not {mapping!r}")
    out: dict[str, tuple[str, ...]] = {}
    for name, keys in mapping.items():
        canon = MAPPING_ALIASES.get(name)
        if canon is None:
            raise UsageError(f"mapping key {name!r} is not a log field; use one of: {', '.join(sorted(MAPPING_ALIASES))}")
        keys_t = (keys,) if isinstance(keys, str) else tuple(keys)
        if not keys_t or not all(isinstance(k, str) and k for k in keys_t):
            raise UsageError(f"mapping[{name!r}] must be a field name or a list of names, not {keys!r}")
        out[canon] = keys_t + out.get(canon, ())
    return out


@dataclass
class LogOptions:
    """Options every log loader understands (``ctx.options``): ``mapping=``, ``tz=``,
    ``time_format=`` (a strptime format tried before the known shapes) and ``year=`` (the year
    of times written without one; see :func:`forensics.loaders.core.times.year_anchor`)."""

    mapping: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tz: TimeZoneOption = field(default_factory=TimeZoneOption)
    time_format: str | None = None
    anchor: times.YearAnchor | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "LogOptions":
        return cls(mapping=parse_mapping(options.get("mapping")), tz=parse_tz(options.get("tz")))

    @classmethod
    def of(cls, ctx: Any) -> "LogOptions":
        """The options of the file ``ctx`` loads, its year anchor included."""
        opts = cls.from_options(ctx.options)
        if ctx.options.get("time_format") is not None:
            opts.time_format = times.check_time_format(ctx.con, ctx.options["time_format"])
        opts.anchor = times.year_anchor(ctx.path, ctx.options.get("year"), times.latest_case_time(ctx.con, ctx.path))
        return opts

    def keys(self, canon: str) -> tuple[str, ...]:
        user = self.mapping.get(canon, ())
        return user + tuple(k for k in FIELD_KEYS[canon] if k not in user)


def _words(b: Binder, words: tuple[str, ...]) -> str:
    return ", ".join(b(w) for w in words)


def severity_sql(expr: str, b: Binder) -> str:
    """Canonical severity (trace|debug|info|warn|error|fatal) from level text or a number.

    Words are matched case-insensitively (``WARNING`` -> warn, ``err`` -> error, ``critical``,
    ``panic``, ``dpanic`` -> fatal). Numbers use pino/bunyan levels: 10 trace, 20 debug, 30 info,
    40 warn, 50 error, 60 fatal (values in between round down). Unknown text gives NULL.
    """
    v = f"lower(trim({expr}))"
    whens = " ".join(f"WHEN {v} IN ({_words(b, words)}) THEN '{canon}'" for canon, words in SEVERITY_WORDS.items())
    num = f"TRY_CAST({v} AS DOUBLE)"
    return (f"(CASE WHEN {expr} IS NULL THEN NULL {whens} "
            f"WHEN {num} >= 60 THEN 'fatal' WHEN {num} >= 50 THEN 'error' WHEN {num} >= 40 THEN 'warn' "
            f"WHEN {num} >= 30 THEN 'info' WHEN {num} >= 20 THEN 'debug' WHEN {num} >= 0 THEN 'trace' ELSE NULL END)")


def severity_number_sql(canon_expr: str) -> str:
    """OTLP SeverityNumber (1, 5, 9, 13, 17, 21) of a canonical severity."""
    return "(CASE " + " ".join(f"WHEN {canon_expr} = '{k}' THEN {n}" for k, n in SEVERITY_NUMBER.items()) + " END)"


def epoch_sql(expr: str) -> str:
    """TIMESTAMPTZ from an epoch number given as text, unit decided by magnitude.

    ``|x| < 1e11`` seconds (to year 5138), ``< 1e14`` milliseconds, ``< 1e17`` microseconds,
    otherwise nanoseconds. Integers are converted exactly (nanoseconds truncate to µs);
    fractions are rounded to the microsecond.
    """
    d = f"TRY_CAST({expr} AS DOUBLE)"
    i = f"TRY_CAST({expr} AS HUGEINT)"
    us = (f"(CASE WHEN regexp_full_match({expr}, '[+-]?[0-9]+') THEN (CASE WHEN abs({i}) < 100000000000 THEN {i} * 1000000 "
          f"WHEN abs({i}) < 100000000000000 THEN {i} * 1000 WHEN abs({i}) < 100000000000000000 THEN {i} "
          f"ELSE {i} // 1000 END) "
          f"ELSE TRY_CAST(round(CASE WHEN abs({d}) < 1e11 THEN {d} * 1e6 WHEN abs({d}) < 1e14 THEN {d} * 1e3 "
          f"WHEN abs({d}) < 1e17 THEN {d} ELSE {d} / 1e3 END) AS HUGEINT) END)")
    return f"timezone('UTC', make_timestamp(TRY_CAST({us} AS BIGINT)))"


def time_sql(expr: str, opts: LogOptions, b: Binder) -> str:
    """TIMESTAMPTZ (UTC) from a time value given as text.

    Accepted, in this order: the ``time_format=`` option (a strptime format); numbers as epoch
    values (see :func:`epoch_sql`); ISO 8601 / RFC 3339 with ``T`` or a space, ``.`` or ``,``
    before the fraction (log4j, Python logging), any number of fraction digits (nanoseconds
    truncate to µs), and an offset (``Z``, ``+08:00``, ``-0700``, ``UTC``) -- kept as written;
    the shapes of :data:`~forensics.loaders.core.times.DATED_FORMATS` (HDFS, Spark, Apache,
    BGL, ...), :data:`~forensics.loaders.core.times.ZONED_FORMATS` and
    :data:`~forensics.loaders.core.times.YEARLESS_FORMATS` (syslog: the year comes from
    ``opts.anchor``). Times without an offset are local time in ``tz`` (default UTC).
    Unparseable text gives NULL; implausible years are left to the caller
    (:func:`~forensics.loaders.core.times.plausible_sql`).
    """
    tz = opts.tz
    v = f"replace(trim({expr}), ',', '.')"

    def local(naive: str) -> str:
        if tz.name:
            return f"timezone({b(tz.name)}, {naive})"
        return f"timezone('UTC', {naive} - to_minutes(CAST({b(tz.offset_minutes or 0)} AS BIGINT)))"

    anchor = opts.anchor
    yearless = (f"{times.yearless_sql(expr, list(times.YEARLESS_FORMATS), anchor, b)}, " if anchor else "")
    iso = f"CASE WHEN regexp_matches(trim({expr}), '^[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}([T ]|$)') THEN TRY_CAST({v} AS TIMESTAMP) END"
    auto = (f"(CASE WHEN {expr} IS NULL THEN NULL "
            f"WHEN regexp_full_match(trim({expr}), '[+-]?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?') THEN {epoch_sql(f'trim({expr})')} "
            f"WHEN regexp_matches(trim({expr}), '^[0-9]{{4}}-.*[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}})?([.,][0-9]+)?\\s*(Z|z|UTC|GMT|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
            f"THEN TRY_CAST({v} AS TIMESTAMPTZ) "
            f"ELSE coalesce({times.zoned_sql(expr, b)}, {local(f'coalesce({iso}, {yearless}{times.dated_sql(expr, b)})')}) END)")
    fmt = opts.time_format
    if fmt is None:
        return auto
    if times.is_zoned(fmt):
        user = f"try_strptime({times.normalized_sql(expr)}, {b(fmt)})"
    elif times.has_year(fmt) or anchor is None:
        user = local(f"try_strptime({times.normalized_sql(expr)}, {b(fmt)})")
    else:
        user = local(times.yearless_sql(expr, [fmt], anchor, b))
    return f"coalesce({user}, {auto})"


def _id_sql(value: str, key: str, width: int) -> str:
    """Normalized id, NULL when it is not ``width`` hex digits (after left padding) or all zero.

    Understood: Datadog decimal ids (``dd.*`` keys) -> hex; Google Cloud
    ``projects/<p>/traces/<hex>``; AWS X-Ray ``1-<8 hex>-<24 hex>`` (as OpenTelemetry converts
    it); UUIDs (dashes dropped); any case.
    """
    v = f"trim({value})"
    hexed = (f"(CASE WHEN {key} LIKE 'dd.%' AND regexp_full_match({v}, '[0-9]+') "
             f"THEN lower(to_hex(TRY_CAST({v} AS UHUGEINT))) "
             f"WHEN regexp_full_match({v}, 'projects/[^/]+/traces/[0-9a-fA-F]+') THEN regexp_extract({v}, '[0-9a-fA-F]+$') "
             f"WHEN regexp_full_match({v}, '1-[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{24}}') THEN replace({v}[3:], '-', '') "
             f"WHEN regexp_full_match({v}, '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}') "
             f"THEN replace({v}, '-', '') ELSE {value} END)")
    norm = hex_id_sql(hexed, width)
    return (f"(CASE WHEN regexp_full_match({norm}, '[0-9a-f]{{{width}}}') AND {norm} <> repeat('0', {width}) "
            f"THEN {norm} END)")


def _pick(canon: str, opts: LogOptions, b: Binder) -> str:
    """SQL giving the first key of ``canon`` present in ``f`` (NULL if none)."""
    whens = []
    for key in opts.keys(canon):
        gate = GATED_KEYS.get((canon, key))
        cond = f"nullif(trim(f[{b(key)}]), '') IS NOT NULL"
        if gate and key not in opts.mapping.get(canon, ()):
            cond += f" AND f[{b(gate)}] IS NOT NULL"
        whens.append(f"WHEN {cond} THEN {b(key)}")
    return "(CASE " + " ".join(whens) + " END)"


def finalize_logs_sql(inner: str, opts: LogOptions, b: Binder) -> str:
    """Wrap a loader's inner SELECT (see the module docstring) into canonical ``logs`` rows."""
    picked = ",\n    ".join(f"{_pick(c, opts, b)} AS k_{c}" for c in FIELD_KEYS)
    tp, tid, sid = b(TRACEPARENT_IN_TEXT), b(TRACE_ID_IN_TEXT), b(SPAN_ID_IN_TEXT)
    text_trace = f"coalesce(nullif(regexp_extract(_raw, {tp}, 1), ''), nullif(regexp_extract(_raw, {tid}, 1), ''))"
    text_span = f"coalesce(nullif(regexp_extract(_raw, {tp}, 2), ''), nullif(regexp_extract(_raw, {sid}, 1), ''))"
    lo, hi = times.PLAUSIBLE_YEARS
    return f"""
WITH picked AS (
  SELECT r.*,
    {picked}
  FROM ({inner}) r
), vals AS (
  SELECT p.*, {", ".join(f"f[k_{c}] AS v_{c}" for c in FIELD_KEYS)}
  FROM picked p
), parsed AS (
  SELECT v.*,
    {time_sql('v_time', opts, b)} AS time,
    {severity_sql('v_severity', b)} AS severity,
    coalesce({_id_sql('v_trace_id', 'k_trace_id', TRACE_ID_HEX)}, {_id_sql(text_trace, 'NULL', TRACE_ID_HEX)}) AS trace_id,
    coalesce({_id_sql('v_span_id', 'k_span_id', SPAN_ID_HEX)}, {_id_sql(text_span, 'NULL', SPAN_ID_HEX)}) AS span_id,
    v_body AS body,
    v_service AS service
  FROM vals v
), used AS (
  SELECT q.*,
    list_filter([
      CASE WHEN time IS NOT NULL THEN k_time END, CASE WHEN severity IS NOT NULL THEN k_severity END,
      CASE WHEN trace_id IS NOT NULL THEN k_trace_id END, CASE WHEN span_id IS NOT NULL THEN k_span_id END,
      k_body, k_service], lambda k: k IS NOT NULL) AS _used
  FROM parsed q
), parents AS (
  SELECT u.*,
    list_transform(list_filter(_used, lambda k: NOT map_contains(top, k) AND contains(k, '.')),
                   lambda k: split_part(k, '.', 1)) AS _parents
  FROM used u
)
SELECT
  time, service, severity, {severity_number_sql('severity')} AS severity_number, body, trace_id, span_id,
  map_from_entries(list_concat(
    list_filter(map_entries(top), lambda e: NOT list_contains(_used, e.key) AND NOT list_contains(_parents, e.key)),
    list_filter(map_entries(nested), lambda e: list_contains(_parents, split_part(e.key, '.', 1))
                AND NOT list_contains(_used, e.key) AND NOT map_contains(top, e.key))
  )) AS attributes,
  source_line, _raw,
  CASE WHEN _pre_code IS NOT NULL THEN _pre_code
       WHEN k_time IS NULL THEN 'missing_field'
       WHEN time IS NULL OR NOT {times.plausible_sql('time')} THEN 'bad_time' END AS _reject_code,
  CASE WHEN _pre_code IS NOT NULL THEN _pre_reason
       WHEN k_time IS NULL THEN 'record has no time field (looked for ' || {b(', '.join(opts.keys('time')))}
            || '); name it with mapping={{"time": "<field>"}}'
       WHEN time IS NULL THEN 'cannot parse time ' || k_time || '=' || left(v_time, 80)
            || ' (expected ISO 8601 / RFC 3339 text, epoch seconds, ms, us or ns, or a known log time shape; '
            || 'pass time_format=''%d.%m.%Y %H:%M:%S'' or the like)'
       WHEN NOT {times.plausible_sql('time')} THEN 'time ' || k_time || '=' || left(v_time, 80) || ' gives year '
            || year(time) || ', outside ' || {b(f'{lo}..{hi - 1}')} || ' (a two-digit year read as four digits, or an epoch in another '
            || 'unit?); pass time_format=''...'' to read it' END AS _reject_reason
FROM parents
"""


def finish_logs(ctx: Any) -> None:
    """After a log file loaded: warn when its times do not overlap the case's spans (suggesting
    ``tz=``) and when trace ids could not be read (they stay in ``attributes``)."""
    if not ctx.loaded.get("logs"):
        return
    con = ctx.con
    logs = one(con, "SELECT min(time), max(time), epoch(max(time)) / 2 + epoch(min(time)) / 2 FROM logs "
                    "WHERE source_file = ? AND format = ?", [ctx.path, ctx.format])
    spans = one(con, "SELECT min(start_time), max(end_time), epoch(max(end_time)) / 2 + epoch(min(start_time)) / 2 "
                     "FROM spans")
    if logs and spans and logs[0] is not None and spans[0] is not None:
        if logs[1] < spans[0] or logs[0] > spans[1]:
            shift_min = round((logs[2] - spans[2]) / 900.0) * 15  # quarter hours
            suggestion = TimeZoneOption(offset_minutes=int(shift_min)).label
            ctx.warn(f"log times {logs[0]:%Y-%m-%d %H:%M:%S} .. {logs[1]:%Y-%m-%d %H:%M:%S} UTC do not overlap the "
                     f"span times {spans[0]:%Y-%m-%d %H:%M:%S} .. {spans[1]:%Y-%m-%d %H:%M:%S} UTC; if the logs were "
                     f"written in local time without an offset, load them again with tz='{suggestion}' "
                     f"(or the zone name, e.g. tz='Asia/Shanghai')")
    keys = list(dict.fromkeys(k for c in ("trace_id", "span_id") for k in FIELD_KEYS[c]))
    bad = scalar(con, "SELECT count(*) FROM logs WHERE source_file = ? AND format = ? AND "
                      "(trace_id IS NULL OR span_id IS NULL) AND "
                      "len(list_intersect(map_keys(attributes), ?::VARCHAR[])) > 0", [ctx.path, ctx.format, keys])
    if bad:
        ctx.warn(f"{bad} record(s) carry a trace or span id that is not hex (or all zero); the id column is NULL "
                 f"and the original value is kept in attributes")


#: builds a loader's inner SELECT from the name of a registered ``(line, raw)`` table
FieldsSql = Callable[[str, Binder], str]


def emit_logs(ctx: Any, table: pa.Table, fields_sql: FieldsSql, opts: LogOptions) -> int:
    """Register ``table``, emit its canonical ``logs`` rows (and rejects), unregister it."""
    name = ctx.register(table)
    try:
        b = Binder()
        return ctx.emit("logs", finalize_logs_sql(fields_sql(name, b), opts, b), b.values)
    finally:
        ctx.unregister(name)


def text_batches(ctx: Any) -> Iterator[pa.Table]:
    """``ctx.line_batches()`` with a leading byte-order mark removed (files saved on Windows)."""
    for batch in ctx.line_batches():
        raw = batch.column("raw")
        if pc.any(pc.starts_with(raw, "\ufeff")).as_py():
            batch = batch.set_column(batch.schema.get_field_index("raw"), "raw",
                                     pc.utf8_ltrim(raw, characters="\ufeff"))
        yield batch


def load_log_lines(ctx: Any, fields_sql: FieldsSql) -> None:
    """The whole load of a one-record-per-line log format: every batch, then :func:`finish_logs`."""
    opts = LogOptions.of(ctx)
    for batch in text_batches(ctx):
        emit_logs(ctx, batch, fields_sql, opts)
    finish_logs(ctx)
