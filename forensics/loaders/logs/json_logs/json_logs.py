"""JSON-lines application logs: zap, logrus, pino/bunyan, ECS, Go slog, structlog, Datadog,
docker json-file (with the application's JSON nested in ``log``) and any other shape through
``mapping=``.

One JSON object per line. Canonical fields are found by name (see
:data:`forensics.loaders.logs.common.FIELD_KEYS`; ``mapping={"time": "eventTime", ...}`` puts your
names first); everything else goes to ``attributes`` as text (nested objects and arrays as
compact JSON; the remaining members of an object a canonical field came from, such as ECS
``log``, as dotted keys like ``log.logger``).

Docker json-file lines (``{"log": "...\\n", "stream": "stdout", "time": "..."}``) are
unwrapped: when ``log`` holds a JSON object its fields are mapped (the application's time wins;
docker's time is kept as ``docker.time``), otherwise the text is the body (and an upper-case level word among its first three words, as
in ``2026-02-18 10:12:33 ERROR ...``, is the level); the envelope's other
fields (Fluent Bit's ``kubernetes`` metadata, ``stream``) are kept. Stack-trace lines (see
:data:`forensics.loaders.logs.common.CONTINUATION`) after a text line are appended to its body. Docker splits
messages over 16 KiB into lines whose ``log`` has no final newline: they are joined (within a
batch of lines). ``container_logs``
reads container runtime lines the same way (``kubectl logs --timestamps``, CRI files).

All parsing runs in DuckDB over each batch of lines (``json_valid`` for rejects,
``json_transform`` to a map of fields): no Python loop per line.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from ..common import CONTINUATION, Binder, load_log_lines

_MAP = "'\"MAP(VARCHAR, JSON)\"'"
_MAP_TEXT = "'\"MAP(VARCHAR, VARCHAR)\"'"  # strings unquoted, other values as compact JSON
#: text of a JSON value: strings unquoted, everything else as compact JSON
_TEXT = "CASE WHEN json_type({v}) = 'VARCHAR' THEN {v}->>'$' ELSE CAST({v} AS VARCHAR) END"

TIME_KEYS = ("@timestamp", "timestamp", "time", "ts")
MESSAGE_KEYS = ("msg", "message", "level", "severity", "lvl", "log.level", "event", "body", "log", "levelname")
BODY_KEYS = ("msg", "message", "event", "body", "log", "error")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname")
DEPLOY_KINDS = {"deploy", "deployment", "rollback", "release", "config", "scale", "restart", "feature_flag"}
#: keys of other formats' JSON lines, which their own loaders read
FOREIGN_KEYS = ("resourceSpans", "resourceLogs", "resourceMetrics", "apiVersion")


#: the level of a text payload: an upper-case level word among its first three words
#: (``2026-02-18 10:12:33.123 ERROR ...``, ``[WARN] ...``, ``INFO: ...``)
TEXT_LEVEL = r"^(?:\S+\s+){0,2}?\[?(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL|SEVERE|PANIC)\]?(?:[\s:]|$)"


def _text(v: str) -> str:
    return _TEXT.format(v=v)


def json_fields_sql(source: str, b: Binder) -> str:
    """Inner SELECT (see :mod:`forensics.loaders.logs.common`) over a registered ``(line, raw)`` table."""
    return f"""
WITH src AS (
  SELECT line, raw, TRY_CAST(raw AS JSON) AS j FROM {source}
), env AS (
  SELECT *, coalesce(json_type(j, '$.log') = 'VARCHAR' AND j->>'$.stream' IN ('stdout', 'stderr')
                     AND json_exists(j, '$.time'), false) AS is_docker
  FROM src
), parts AS (
  SELECT *,
    -- docker splits lines over 16 KiB: the parts before the last lack the final newline
    is_docker AND NOT ends_with(j->>'$.log', chr(10)) AS open_part,
    is_docker AND NOT starts_with(ltrim(j->>'$.log'), '{{') AS text_log,
    is_docker AND regexp_matches(j->>'$.log', {b(CONTINUATION)}) AS looks_continued
  FROM env
), joins AS (
  SELECT *, (coalesce(lag(open_part) OVER w, false) AND is_docker)
            OR (looks_continued AND coalesce(lag(text_log) OVER w, false)) AS joins_prev
  FROM parts WINDOW w AS (ORDER BY line)
), grouped AS (
  SELECT *, sum(CASE WHEN joins_prev THEN 0 ELSE 1 END) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING) AS g
  FROM joins
), msgs AS (
  SELECT min(line) AS source_line, string_agg(raw, chr(10) ORDER BY line) AS _raw, arg_min(j, line) AS j,
    bool_and(is_docker) AS is_docker, string_agg(j->>'$.log', '' ORDER BY line) AS docker_log,
    count(*) FILTER (WHERE j IS NULL) AS bad
  FROM grouped GROUP BY g
), docs AS (
  SELECT source_line, _raw,
    CASE WHEN bad > 0 THEN 'invalid_json' WHEN json_type(j) <> 'OBJECT' THEN 'wrong_shape' END AS _pre_code,
    CASE WHEN bad > 0 THEN 'line is not valid JSON (expected one JSON object per line)'
         WHEN json_type(j) <> 'OBJECT' THEN 'expected a JSON object per line, found a JSON ' || lower(json_type(j)) END
      AS _pre_reason,
    CASE WHEN bad > 0 OR json_type(j) <> 'OBJECT' THEN NULL
         WHEN NOT is_docker THEN j
         ELSE {_unwrap_sql("rtrim(docker_log, chr(10) || chr(13))",
                           "json_merge_patch(j, json_object('log', NULL, 'time', NULL, 'docker.time', j->>'$.time'))")}
    END AS d
  FROM msgs
{_FIELDS_FROM_DOCS}"""


def _unwrap_sql(payload: str, envelope: str) -> str:
    """The document of an envelope line (docker json-file, Fluent Bit, container runtime): the
    payload's JSON object merged over the ``envelope`` object (its other fields: stream,
    Kubernetes metadata, the envelope's time), or the envelope with ``message`` = payload text."""
    inner = f"TRY_CAST(trim({payload}) AS JSON)"
    level = f"nullif(regexp_extract({payload}, '{TEXT_LEVEL}', 1), '')"
    return (f"(CASE WHEN json_type({inner}) = 'OBJECT' THEN json_merge_patch({envelope}, {inner}) "
            f"ELSE json_merge_patch({envelope}, json_object('message', {payload}, 'level', {level})) END)")


#: from ``docs(source_line, _raw, _pre_code, _pre_reason, d JSON)`` to the inner SELECT columns
_FIELDS_FROM_DOCS = f"""), texts AS (
  SELECT source_line, _raw, _pre_code, _pre_reason, d,
    map_from_entries(list_filter(map_entries(coalesce(json_transform(d, {_MAP_TEXT}), MAP {{}})),
                                 lambda x: x.value IS NOT NULL)) AS top,
    -- only lines that may hold an object or array value pay for typing every value
    coalesce(regexp_matches(CAST(d AS VARCHAR), ':\\s*[\\[{{]'), false) AS may_nest
  FROM docs
), typed AS (
  SELECT *,
    CASE WHEN may_nest THEN list_filter(map_entries(json_transform(d, {_MAP})),
                                        lambda x: json_type(x.value) IN ('OBJECT', 'ARRAY')) ELSE [] END AS objs
  FROM texts
), members AS (
  SELECT *,
    flatten(list_transform(list_filter(objs, lambda x: json_type(x.value) = 'OBJECT'),
      lambda x: list_transform(
        list_filter(map_entries(json_transform(x.value, {_MAP})), lambda c: c.value IS NOT NULL),
        lambda c: {{'key': x.key || '.' || c.key, 'value': {_text('c.value')},
                   'scalar': json_type(c.value) NOT IN ('OBJECT', 'ARRAY')}}))) AS mem
  FROM typed
)
SELECT source_line, _raw, _pre_code, _pre_reason, top,
  map_from_entries(list_transform(mem, lambda x: {{'key': x.key, 'value': x.value}})) AS nested,
  CASE WHEN len(objs) = 0 THEN top ELSE map_concat(
    map_from_entries(list_transform(list_filter(mem, lambda x: x.scalar), lambda x: {{'key': x.key, 'value': x.value}})),
    map_from_entries(list_filter(map_entries(top),
                                 lambda x: NOT list_contains(list_transform(objs, lambda o: o.key), x.key))))
  END AS f
FROM members
"""


def _sniff(head: Head) -> float:
    objs: list[dict[str, Any]] = []
    lines = [line.lstrip("\ufeff") for line in head.lines[:20]]
    for line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            objs.append(value)
    if not objs or len(objs) < 0.6 * len(lines):
        return 0.0
    first = objs[0]
    if any(k in first for k in FOREIGN_KEYS) or "kind" in first and "apiVersion" in first:
        return 0.0
    if ("traceID" in first and "spans" in first) or ("traceId" in first and "id" in first and "localEndpoint" in first):
        return 0.0
    if isinstance(first.get("log"), str) and "stream" in first and "time" in first:
        return 0.9  # docker json-file
    keys = set(first)
    for k, v in first.items():
        if isinstance(v, dict):
            keys.update(f"{k}.{c}" for c in v)
    if not any(k in keys for k in MESSAGE_KEYS):
        return 0.0  # deploy/change logs (time, service, version, kind) have no message or level
    if "version" in keys and "service" in keys and not any(k in keys for k in LEVEL_KEYS) and \
            str(first.get("kind", first.get("type", ""))).lower() in DEPLOY_KINDS:
        return 0.0
    if not any(k in keys for k in TIME_KEYS):
        return 0.0
    # a level and a message: surely a log line (deploy logs, which may have a time, a service and
    # an ``event``, have no level)
    return 0.9 if any(k in keys for k in LEVEL_KEYS) and any(k in keys for k in BODY_KEYS) else 0.7


@register_format("json_logs", signal="logs",
                 description="JSON-lines logs (zap, logrus, pino/bunyan, ECS, slog, structlog, docker json-file)",
                 sniff=_sniff, extensions=(".json", ".jsonl", ".ndjson", ".log"))
def load_json_logs(ctx: LoadContext) -> None:
    """Load JSON-lines logs; options ``mapping=`` and ``tz=`` (see :mod:`forensics.loaders.logs.common`)."""
    load_log_lines(ctx, json_fields_sql)


#: ``kubectl logs --timestamps`` (``TIME payload``) and CRI runtime files under
#: ``/var/log/pods`` (``TIME stdout|stderr F|P payload``; ``P`` marks a partial line)
CONTAINER_LINE = r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) (?:(stdout|stderr) ([FP]) )?(.*)$"
_CONTAINER_RE = re.compile(CONTAINER_LINE)


def container_fields_sql(source: str, b: Binder) -> str:
    """Inner SELECT for container runtime lines: partial (``P``) lines are joined with the lines
    that complete them, stack-trace lines after a text line are appended to it, then the payload
    is read like a docker json-file ``log``."""
    rx = b(CONTAINER_LINE)
    return f"""
WITH src AS (
  SELECT line, raw, regexp_matches(raw, {rx}) AS ok, regexp_extract(raw, {rx}, 1) AS c_time,
    nullif(regexp_extract(raw, {rx}, 2), '') AS c_stream, regexp_extract(raw, {rx}, 3) AS c_tag,
    regexp_extract(raw, {rx}, 4) AS payload
  FROM {source}
), joins AS (
  SELECT *, coalesce(lag(ok AND c_tag = 'P') OVER w, false) AS after_part,
    after_part OR (ok AND regexp_matches(payload, {b(CONTINUATION)})
                   AND coalesce(lag(ok AND NOT starts_with(ltrim(payload), '{{')) OVER w, false)) AS joins_prev
  FROM src WINDOW w AS (ORDER BY line)
), grouped AS (
  SELECT *, sum(CASE WHEN joins_prev THEN 0 ELSE 1 END) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING) AS g
  FROM joins
), msgs AS (
  SELECT min(line) AS source_line, string_agg(raw, chr(10) ORDER BY line) AS _raw, bool_and(ok) AS ok,
    arg_min(c_time, line) AS c_time, arg_min(c_stream, line) AS c_stream,
    -- a partial line goes on without a newline; a stack-trace line starts a new line of the body
    string_agg(CASE WHEN joins_prev AND NOT after_part THEN chr(10) ELSE '' END || payload, '' ORDER BY line) AS payload
  FROM grouped GROUP BY g
), docs AS (
  SELECT source_line, _raw,
    CASE WHEN NOT ok THEN 'unparsed_line' END AS _pre_code,
    CASE WHEN NOT ok THEN 'expected a container log line: an RFC 3339 time, optionally "stdout|stderr F|P", '
         || 'then the message' END AS _pre_reason,
    CASE WHEN ok THEN {_unwrap_sql("payload", "json_object('stream', c_stream, 'container.time', c_time)")} END AS d
  FROM msgs
{_FIELDS_FROM_DOCS}"""


def _sniff_container(head: Head) -> float:
    lines = head.lines[:20]
    matches = [m for m in (_CONTAINER_RE.match(line) for line in lines) if m]
    if not lines or len(matches) < 0.8 * len(lines):
        return 0.0
    if all(m.group(2) for m in matches):
        return 0.8  # CRI runtime files
    # kubectl logs --timestamps: only when the payloads are JSON objects (text payloads with a
    # level are plain_logs' job; others need format="container_logs")
    return 0.75 if all(m.group(4).lstrip().startswith("{") for m in matches) else 0.0


@register_format("container_logs", signal="logs",
                 description="container logs: kubectl logs --timestamps, CRI files under /var/log/pods "
                             "(partial lines joined); JSON payloads mapped like json_logs",
                 sniff=_sniff_container, extensions=(".log", ".txt"))
def load_container_logs(ctx: LoadContext) -> None:
    """Load container runtime log lines; options ``mapping=`` and ``tz=``.

    Partial (``P``) lines are joined with the lines that complete them within a batch of lines
    (32 MiB); a message cut by a batch boundary loads as two records.
    """
    load_log_lines(ctx, container_fields_sql)
