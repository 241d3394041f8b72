"""Long-format metrics CSV: one sample per row, ``time,name,value,<label columns...>``.

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
"""
from __future__ import annotations

from forensics.errors import Reason
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import csv_batches, csv_fields_sql, csv_map_sql, flexible_time_sql, pick, split_header
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

TIME_COLUMNS = ("time", "timestamp", "ts", "date", "datetime", "@timestamp", "_time")
NAME_COLUMNS = ("name", "metric", "metric_name", "__name__")
VALUE_COLUMNS = ("value", "val", "_value")
SPECIAL = {"type": ("type",), "unit": ("unit",), "description": ("description", "help"), "service": ("service",)}


def _sniff(head: Head) -> float:
    if not head.lines or head.first_json is not None:
        return 0.0
    try:
        names = split_header(head.lines[0])
    except Exception:
        return 0.0
    if len(names) < 3 or any(pick(names, c) is None for c in (TIME_COLUMNS, NAME_COLUMNS, VALUE_COLUMNS)):
        return 0.0
    return 0.9 if head.ext in (".csv", ".tsv", "") else 0.7


@register_format("metrics_csv", signal="metrics", sniff=_sniff, extensions=(".csv",),
                 description="Long-format metrics CSV: time,name,value,<labels...>")
def load_metrics_csv(ctx: LoadContext) -> None:
    for header, header_line, batch in csv_batches(ctx):
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
