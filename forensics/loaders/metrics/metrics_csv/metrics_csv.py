"""Metrics CSV, long (one sample per row, ``time,name,value,<label columns...>``) or wide (a
time column, then one column per series, as spreadsheets, Grafana's "Download CSV" and pandas
``to_csv`` write them).

The header names the columns (any order, case-insensitive):

* time: ``time``, ``timestamp``, ``ts``, ``date``, ``datetime``, ``@timestamp`` or ``_time``;
  ISO 8601 text (no zone = UTC) or epoch seconds/milliseconds/microseconds/nanoseconds (unit
  chosen by magnitude);
* name: ``name``, ``metric``, ``metric_name`` or ``__name__``;
* value: ``value``, ``val`` or ``_value`` (``NaN``, ``Inf``, ``+Inf``, ``-Inf`` accepted);
* optional ``type``, ``unit``, ``description``/``help`` and ``service`` columns fill those
  columns; every other column is a label (empty cells are left out of ``labels``).
  ``service`` falls back to the ``job`` label.

Rows with the wrong number of fields, an unreadable time, an empty name or a non-numeric value
are rejected with their line numbers.

Wide: every column but the time column is a series; its header is the metric name, or
``name{label="value",...}`` (Prometheus / Grafana series names: labels parsed; ``{job="x"}``
alone names a series of metric ``value``). Each non-empty cell is a sample (a record); an empty
cell is no sample. A row with the wrong number of fields or an unreadable time is one reject; a
cell that is not a number is one reject.
"""
from __future__ import annotations

import re

from forensics.errors import Reason
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import csv_batches, csv_fields_sql, csv_map_sql, flexible_time_sql, pick, split_header
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

TIME_COLUMNS = ("time", "timestamp", "ts", "date", "datetime", "@timestamp", "_time")
NAME_COLUMNS = ("name", "metric", "metric_name", "__name__")
VALUE_COLUMNS = ("value", "val", "_value")
SPECIAL = {"type": ("type",), "unit": ("unit",), "description": ("description", "help"), "service": ("service",)}


#: a wide CSV's series header: ``name{k="v", ...}`` (Prometheus/Grafana), name optional
_SERIES = re.compile(r'^\s*([A-Za-z_:][A-Za-z0-9_:.]*)?\s*\{(.*)\}\s*$')
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_NUMBER = re.compile(r"^\s*(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|Inf|INF|nan|NaN|NAN))?\s*$")


def series_of(header: str) -> tuple[str, dict[str, str]]:
    """Metric name and labels of a wide CSV's column header."""
    m = _SERIES.match(header)
    if not m:
        return header.strip(), {}
    labels = {k: v.replace('\\"', '"') for k, v in _LABEL.findall(m.group(2))}
    return (m.group(1) or labels.pop("__name__", None) or "value"), labels


def _is_wide(names: list[str], rows: list[str]) -> bool:
    t = pick(names, TIME_COLUMNS)
    if t is None or len(names) < 2 or pick(names, NAME_COLUMNS) is not None or pick(names, VALUE_COLUMNS) is not None:
        return False
    cells = [c for row in rows[:20] for i, c in enumerate(split_header(row)) if i != t and c.strip()]
    return bool(cells) and sum(1 for c in cells if _NUMBER.match(c)) >= 0.8 * len(cells)


def _sniff(head: Head) -> float:
    if not head.lines or head.first_json is not None or head.stripped[:1] in ("{", "[") or len(head.lines[0]) > 4096:
        return 0.0  # JSON (a line longer than the head too), or no header line
    try:
        names = split_header(head.lines[0])
        wide = _is_wide(names, head.lines[1:])
    except Exception:
        return 0.0
    if wide:
        return 0.8 if head.ext in (".csv", ".tsv", "") else 0.6
    if len(names) < 3 or any(pick(names, c) is None for c in (TIME_COLUMNS, NAME_COLUMNS, VALUE_COLUMNS)):
        return 0.0
    return 0.9 if head.ext in (".csv", ".tsv", "") else 0.7


@register_format("metrics_csv", signal="metrics", sniff=_sniff, extensions=(".csv",),
                 description="Metrics CSV: long (time,name,value,<labels...>) or wide (time, one column per series)")
def load_metrics_csv(ctx: LoadContext) -> None:
    for header, header_line, batch in csv_batches(ctx):
        if pick(header, NAME_COLUMNS) is None and pick(header, VALUE_COLUMNS) is None and pick(header, TIME_COLUMNS) is not None:
            _emit_wide(ctx, header, batch)
            continue
        cols = {"time": pick(header, TIME_COLUMNS), "name": pick(header, NAME_COLUMNS), "value": pick(header, VALUE_COLUMNS)}
        if any(v is None for v in cols.values()):
            ctx.fail("the CSV header does not name a time, a name and a value column", line=header_line,
                     expected="time (or timestamp), name (or metric), value", found=",".join(header),
                     reason=Reason.MISSING_FIELD)
        for key, names in SPECIAL.items():
            cols[key] = pick(header, names)
        used = {i for i in cols.values() if i is not None}
        label_idx = [i for i in range(len(header)) if i not in used]
        label_names = [header[i] for i in label_idx]
        if len(set(label_names)) != len(label_names) or any(not n for n in label_names):
            ctx.fail("the CSV header has empty or repeated column names", line=header_line,
                     expected="unique column names", found=",".join(header), reason=Reason.WRONG_SHAPE)
        src = ctx.register(batch)
        params = {"names": label_names, "idx": [i + 1 for i in label_idx]} if label_idx else None
        ctx.emit("metrics", _select(src, cols, len(header), label_idx), params)
        ctx.unregister(src)


def _field(cols: dict[str, int | None], key: str) -> str:
    i = cols.get(key)
    return "NULL" if i is None else f"nullif(f[{i + 1}], '')"


def _select(src: str, cols: dict[str, int | None], width: int, label_idx: list[int]) -> str:
    time = flexible_time_sql(_field(cols, "time"))
    value = f"TRY_CAST({_field(cols, 'value')} AS DOUBLE)"
    labels = csv_map_sql() if label_idx else "MAP {}"
    return f"""
SELECT source_line, _raw, time, name, labels, value, type, unit, description,
  coalesce(service, labels['job']) AS service, _reject_code, _reject_reason
FROM (
  SELECT line AS source_line, raw AS _raw, {time} AS time, {_field(cols, 'name')} AS name, {labels} AS labels,
    {value} AS value, lower({_field(cols, 'type')}) AS type, {_field(cols, 'unit')} AS unit,
    {_field(cols, 'description')} AS description, {_field(cols, 'service')} AS service,
    CASE WHEN len(f) <> {width} THEN 'wrong_shape' WHEN {time} IS NULL THEN 'bad_time'
         WHEN {_field(cols, 'name')} IS NULL THEN 'missing_field' WHEN {value} IS NULL THEN 'bad_value' END AS _reject_code,
    CASE WHEN len(f) <> {width} THEN 'expected {width} fields as in the header, found ' || len(f)
         WHEN {time} IS NULL THEN 'bad time ' || coalesce({_field(cols, 'time')}, '(empty)')
           || ' (expected ISO 8601 or epoch seconds/ms/us/ns)'
         WHEN {_field(cols, 'name')} IS NULL THEN 'empty metric name'
         WHEN {value} IS NULL THEN 'bad value ' || coalesce({_field(cols, 'value')}, '(empty)')
           || ' (expected a number, NaN or +/-Inf)' END AS _reject_reason
  FROM (SELECT line, raw, {csv_fields_sql('raw')} AS f FROM {src})
)"""


def _emit_wide(ctx: LoadContext, header: list[str], batch) -> None:
    """One sample per non-empty cell of the series columns (see the module docstring)."""
    t = pick(header, TIME_COLUMNS)
    series = [i for i in range(len(header)) if i != t]
    parsed = [series_of(header[i]) for i in series]
    time = flexible_time_sql(f"nullif(f[{t + 1}], '')")
    width = len(header)
    src = ctx.register(batch)
    try:
        ctx.emit("metrics", f"""
WITH rows AS (
  SELECT line, raw, f, {time} AS time,
    CASE WHEN len(f) <> {width} THEN 'expected {width} fields as in the header, found ' || len(f)
         WHEN {time} IS NULL THEN 'bad time ' || coalesce(nullif(f[{t + 1}], ''), '(empty)')
           || ' (expected ISO 8601 or epoch seconds/ms/us/ns)' END AS row_problem
  FROM (SELECT line, raw, {csv_fields_sql('raw')} AS f FROM {src})
), cells AS (
  SELECT line, raw, time, unnest(range(1, len($idx) + 1)) AS k, f FROM rows WHERE row_problem IS NULL
)
SELECT line AS source_line, raw AS _raw, time, $names[k] AS name, labels,
  TRY_CAST(f[$idx[k]] AS DOUBLE) AS value, 'untyped' AS type, coalesce(labels['service'], labels['job']) AS service,
  CASE WHEN TRY_CAST(f[$idx[k]] AS DOUBLE) IS NULL THEN 'bad_value' END AS _reject_code,
  CASE WHEN TRY_CAST(f[$idx[k]] AS DOUBLE) IS NULL THEN 'bad value ' || f[$idx[k]] || ' in column '
    || $headers[k] || ' (expected a number, NaN or +/-Inf)' END AS _reject_reason
FROM (SELECT *, map(CAST($keys[k] AS VARCHAR[]), CAST($values[k] AS VARCHAR[])) AS labels FROM cells)
WHERE nullif(trim(f[$idx[k]]), '') IS NOT NULL
UNION ALL BY NAME
SELECT line AS source_line, raw AS _raw, CASE WHEN starts_with(row_problem, 'expected') THEN 'wrong_shape'
  ELSE 'bad_time' END AS _reject_code, row_problem AS _reject_reason FROM rows WHERE row_problem IS NOT NULL""",
                 {"idx": [i + 1 for i in series], "names": [n for n, _ in parsed],
                  "keys": [list(labels) for _, labels in parsed], "values": [list(labels.values()) for _, labels in parsed],
                  "headers": [header[i] for i in series]})
    finally:
        ctx.unregister(src)
