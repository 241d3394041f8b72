"""Deploy / change logs: CSV with a header, or JSON lines, one change per record.

Fields (first matching name wins, case-insensitive in CSV, exact in JSON):

=========== ===========================================================================
column      names
=========== ===========================================================================
time        time, timestamp, ts, @timestamp, date, datetime, deployed_at, started_at, created_at
end_time    end_time, finished_at, completed_at
service     service, service.name, service_name, app, application, component
version     version, service.version, tag, image_tag, revision, release, sha, git_sha, commit
kind        kind, type, change_type, event, action, category
message     description, message, msg, desc, summary, details, note, change
reason      reason
=========== ===========================================================================

Everything else goes to ``attributes`` (text; nested JSON as JSON text). ``kind`` is lowercased
and normalized: deployment/release/rollout → ``deploy``; feature-flag/flag/featureflag →
``feature_flag``; configuration/config_change → ``config``; missing → ``deploy`` when a version
is given, else ``change``. Times are ISO 8601 (no zone = UTC) or epoch s/ms/µs/ns.

Sniffing claims CSV headers and JSON objects naming a time, a service and a version or kind,
without log fields (``level``/``severity``) and, for CSV, without a ``value`` column (that is
:mod:`~forensics.loaders.metrics.metrics_csv.metrics_csv`). Records without a readable time are rejected.
"""
from __future__ import annotations

import orjson

from forensics.errors import Reason
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import csv_batches, csv_fields_sql, csv_map_sql, flexible_time_sql, pick, split_header
from forensics.loaders.core.head import Head, head_of
from forensics.loaders.core.registry import register_format

FIELDS: dict[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "ts", "@timestamp", "date", "datetime", "deployed_at", "started_at", "created_at"),
    "end_time": ("end_time", "finished_at", "completed_at"),
    "service": ("service", "service.name", "service_name", "app", "application", "component"),
    "version": ("version", "service.version", "tag", "image_tag", "revision", "release", "sha", "git_sha", "commit"),
    "kind": ("kind", "type", "change_type", "event", "action", "category"),
    "message": ("description", "message", "msg", "desc", "summary", "details", "note", "change"),
    "reason": ("reason",),
}
LOG_KEYS = ("level", "severity", "lvl", "levelname", "log.level", "severityText")
FOREIGN_KEYS = ("resourceSpans", "resourceLogs", "resourceMetrics", "apiVersion", "spans", "traceID", "traceId",
                "resultType", "data", "metric", "value")

MESSAGE_KEYS = ("message", "msg", "body", "log")
#: kind values that make a JSON object a change record even when it has a message
CHANGE_KINDS = {"deploy", "deployment", "release", "rollout", "rollback", "config", "configuration", "feature_flag",
                "feature-flag", "flag", "scale", "restart", "migration"}

KIND_SQL = """CASE
  WHEN kind IS NULL OR kind = '' THEN CASE WHEN nullif(version, '') IS NULL THEN 'change' ELSE 'deploy' END
  WHEN kind IN ('deployment', 'release', 'rollout', 'deployed') THEN 'deploy'
  WHEN kind IN ('feature-flag', 'flag', 'featureflag', 'feature flag') THEN 'feature_flag'
  WHEN kind IN ('configuration', 'config_change', 'config-change') THEN 'config'
  WHEN kind IN ('scaling', 'autoscale') THEN 'scale'
  ELSE kind END"""


def _is_change(keys: set[str]) -> bool:
    has = lambda field: any(k in keys for k in FIELDS[field])  # noqa: E731
    return has("time") and has("service") and (has("version") or has("kind"))


def _sniff(head: Head) -> float:
    if not head.lines:
        return 0.0
    first = head.lines[0].strip()
    if first.startswith("{"):
        lines = head.lines[:20]
        objs = []
        for line in lines:
            try:
                objs.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        if not objs or len(objs) < 0.8 * len(lines) or not all(isinstance(o, dict) for o in objs):
            return 0.0
        first_obj = objs[0]
        keys = set(first_obj) | {f"{k}.{c}" for k, v in first_obj.items() if isinstance(v, dict) for c in v}
        if any(k in keys for k in LOG_KEYS + FOREIGN_KEYS) or not _is_change(set(first_obj)):
            return 0.0
        kind = next((first_obj[k] for k in FIELDS["kind"] if k in first_obj), None)
        if any(k in keys for k in MESSAGE_KEYS) and str(kind).lower() not in CHANGE_KINDS:
            return 0.0  # a log line that happens to carry a service and a version
        if not isinstance(next(first_obj[k] for k in FIELDS["service"] if k in first_obj), str):
            return 0.0
        return 0.85
    if first.startswith(("[", "#")):
        return 0.0
    try:
        names = {n.lower() for n in split_header(first)}
    except Exception:
        return 0.0
    if "value" in names or any(k.lower() in names for k in LOG_KEYS) or not _is_change(names):
        return 0.0
    return 0.9 if head.ext in (".csv", ".tsv", ".log", "") else 0.75


@register_format("deploy_log", signal="events", sniff=_sniff, extensions=(".csv", ".jsonl", ".ndjson", ".json"),
                 description="Deploy / change log: CSV with header or JSON lines (time, service, version, kind)")
def load_deploy_log(ctx: LoadContext) -> None:
    # bytes, not Head.text: one invalid UTF-8 line in the head must not turn JSON lines into CSV
    if head_of(ctx.path).data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        _load_json_lines(ctx)
    else:
        _load_csv(ctx)


def _event_sql(inner: str) -> str:
    """Final SELECT over ``inner``, which yields time, end_time, service, version, kind, message,
    reason, attributes, raw_time, source_line, _raw and _shape_code/_shape_reason (NULL when the
    record has the expected shape)."""
    return f"""
SELECT source_line, _raw, time, end_time, nullif(service, '') AS service, nullif(version, '') AS version,
  {KIND_SQL} AS kind, message, reason, attributes,
  CASE WHEN _shape_code IS NOT NULL THEN _shape_code WHEN time IS NULL THEN 'bad_time' END AS _reject_code,
  CASE WHEN _shape_code IS NOT NULL THEN _shape_reason
       WHEN time IS NULL THEN 'missing or unreadable time ' || coalesce(raw_time, '(empty)')
         || ' (expected ISO 8601 or epoch seconds/ms/us/ns)' END AS _reject_reason
FROM ({inner})"""


def _load_json_lines(ctx: LoadContext) -> None:
    def first_of(field: str) -> str:
        return "coalesce(" + ", ".join(f"j->>'$.\"{k}\"'" for k in FIELDS[field]) + ")"

    used = ", ".join(f"'{k}'" for keys in FIELDS.values() for k in keys)
    inner = f"""
SELECT source_line, _raw, CASE WHEN j IS NULL THEN 'invalid_json' END AS _shape_code,
  'not a JSON object (expected one change per line)' AS _shape_reason,
  {flexible_time_sql(first_of('time'))} AS time, {flexible_time_sql(first_of('end_time'))} AS end_time,
  {first_of('service')} AS service, {first_of('version')} AS version, lower(trim({first_of('kind')})) AS kind,
  {first_of('message')} AS message, {first_of('reason')} AS reason, {first_of('time')} AS raw_time,
  map_from_entries(list_filter(map_entries(TRY_CAST(j AS MAP(VARCHAR, VARCHAR))), lambda e: e.key NOT IN ({used}))) AS attributes
FROM (SELECT line AS source_line, raw AS _raw,
        CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT' THEN raw::JSON END AS j FROM __SRC__)"""
    for batch in ctx.line_batches():
        src = ctx.register(batch)
        ctx.emit("events", _event_sql(inner.replace("__SRC__", src)))
        ctx.unregister(src)


def _load_csv(ctx: LoadContext) -> None:
    for header, header_line, batch in csv_batches(ctx):
        cols = {field: pick(header, names) for field, names in FIELDS.items()}
        if cols["time"] is None:
            ctx.fail("the CSV header names no time column", line=header_line, reason=Reason.MISSING_FIELD,
                     expected="one of " + ", ".join(FIELDS["time"]), found=",".join(header))
        used = {i for i in cols.values() if i is not None}
        extra = [i for i in range(len(header)) if i not in used]
        get = {field: ("NULL" if i is None else f"nullif(f[{i + 1}], '')") for field, i in cols.items()}
        width = len(header)
        src = ctx.register(batch)
        inner = f"""
SELECT line AS source_line, raw AS _raw, CASE WHEN len(f) <> {width} THEN 'wrong_shape' END AS _shape_code,
  'expected {width} fields as in the header, found ' || len(f) AS _shape_reason,
  {flexible_time_sql(get['time'])} AS time, {flexible_time_sql(get['end_time'])} AS end_time,
  {get['service']} AS service, {get['version']} AS version, lower(trim({get['kind']})) AS kind,
  {get['message']} AS message, {get['reason']} AS reason, {get['time']} AS raw_time,
  {csv_map_sql() if extra else 'MAP {}'} AS attributes
FROM (SELECT line, raw, {csv_fields_sql('raw')} AS f FROM {src})"""
        params = {"names": [header[i] for i in extra], "idx": [i + 1 for i in extra]} if extra else None
        ctx.emit("events", _event_sql(inner), params)
        ctx.unregister(src)
