"""OTLP metrics → canonical ``metrics`` rows, Prometheus-style.

A record is one data point; a rejected data point is one reject, whatever it would expand to.

- ``gauge`` → type ``gauge``; ``sum`` → ``counter`` when ``isMonotonic`` (else ``gauge``, as
  Prometheus maps UpDownCounters), with ``temporality`` cumulative|delta.
- ``histogram`` → ``<name>_bucket`` rows (``histogram_bucket``, label ``le`` = upper bound,
  ``+Inf`` last, *cumulative* counts like Prometheus), ``<name>_sum``, ``<name>_count``.
- ``exponentialHistogram`` → type ``exp_histogram``: ``<name>_bucket`` rows with computed upper
  bounds ``le`` (negative buckets, the zero bucket at ``zeroThreshold``, positive buckets, then
  ``+Inf``; cumulative counts), ``<name>_sum``, ``<name>_count``.
- ``summary`` → ``<name>`` rows with label ``quantile`` (``summary_quantile``), ``_sum``, ``_count``.
- Exemplars: a number point keeps its last exemplar; a histogram bucket keeps the last exemplar
  whose value falls in the bucket; an exponential histogram's ``_count`` row keeps the last one.
- ``flags`` bit 1 (no recorded value) on a number point gives ``value = NaN`` (a stale marker).
"""
from __future__ import annotations

from .sql import SPAN_ID_HEX, TRACE_ID_HEX, line_rejects_sql, position_sql, records_sql

METRIC_KINDS = {  # OTLP metric field -> (point column, SQL type expression, temporality field or None)
    "gauge": ("p_num", "'gauge'", None),
    "sum": ("p_num", "CASE WHEN lower(r.sum.isMonotonic) = 'true' THEN 'counter' ELSE 'gauge' END", "aggregationTemporality"),
    "histogram": ("p_hist", "'histogram'", "aggregationTemporality"),
    "exponentialHistogram": ("p_exp", "'exp_histogram'", "aggregationTemporality"),
    "summary": ("p_summary", "'summary'", None),
}
_POINT_COLUMNS = ("p_num", "p_hist", "p_exp", "p_summary")


def _temporality_sql(expr: str) -> str:
    return (f"CASE WHEN {expr} IN ('1', 'AGGREGATION_TEMPORALITY_DELTA') THEN 'delta' "
            f"WHEN {expr} IN ('2', 'AGGREGATION_TEMPORALITY_CUMULATIVE') THEN 'cumulative' END")


def _points_sql() -> str:
    """One row per data point of every metric type (UNION ALL BY NAME fills the other p_* NULL)."""
    parts = []
    for field, (col, type_sql, temporality) in METRIC_KINDS.items():
        temp = _temporality_sql(f"r.{field}.{temporality}") if temporality else "CAST(NULL AS VARCHAR)"
        parts.append(f"""SELECT line, doc, rs_i, ss_i, r_i, res, r.name AS metric, nullif(r.unit, '') AS unit,
    nullif(r.description, '') AS description, {type_sql} AS mtype, {temp} AS temporality,
    unnest(range(1, len(r.{field}.dataPoints) + 1)) AS p_i, unnest(r.{field}.dataPoints) AS {col}
  FROM m WHERE len(r.{field}.dataPoints) > 0""")
    return "\n  UNION ALL BY NAME\n  ".join(parts)


def _coalesce_points(field: str) -> str:
    return "coalesce(" + ", ".join(f"{c}.{field}" for c in _POINT_COLUMNS) + ")"


def _exemplar_columns(e: str) -> str:
    """Exemplar columns from the exemplar struct column ``e`` (ids that are not valid become NULL)."""
    return f"""nullif(regexp_extract(otlp_id({e}.traceId, {TRACE_ID_HEX}), '^[0-9a-f]{{{TRACE_ID_HEX}}}$'), '') AS exemplar_trace_id,
    nullif(regexp_extract(otlp_id({e}.spanId, {SPAN_ID_HEX}), '^[0-9a-f]{{{SPAN_ID_HEX}}}$'), '') AS exemplar_span_id,
    coalesce(otlp_double({e}.asDouble), otlp_double({e}.asInt)) AS exemplar_value,
    otlp_ts(otlp_ns({e}.timeUnixNano)) AS exemplar_time"""


_COMMON = "time, labels, unit, description, temporality, service, res AS resource_attributes, source_line, source_offset"


def _common(labels: str) -> str:
    """The common columns with ``labels`` replaced by an expression (e.g. adding ``le``)."""
    return _COMMON.replace("labels", f"{labels} AS labels")


def metrics_sql(src: str, *, doc_mode: bool) -> str:
    """Canonical metric rows plus data-point and line-level rejects, from request texts ``src``."""
    position = "{} AS source_line, {} AS source_offset".format(*position_sql(doc_mode, "doc", "rs_i", "ss_i", "r_i", "p_i"))
    no_value = "(TRY_CAST(p_num.flags AS BIGINT) & 1) = 1"
    return f"""
WITH m AS ({records_sql(src, "metrics")}),
pts AS MATERIALIZED (
  SELECT *, CASE
      WHEN metric IS NULL OR metric = '' THEN 'missing_field'
      WHEN time IS NULL THEN 'bad_time'
      WHEN p_num IS NOT NULL AND p_num.asDouble IS NULL AND p_num.asInt IS NULL AND NOT coalesce({no_value}, false) THEN 'missing_field'
      WHEN len(p_hist.bucketCounts) > 0 AND len(p_hist.bucketCounts) <> len(p_hist.explicitBounds) + 1 THEN 'bad_value'
    END AS _reject_code
  FROM (
    SELECT * EXCLUDE (attrs_raw), otlp_attrs(attrs_raw) AS labels
    FROM (
      SELECT *, otlp_ts(otlp_ns({_coalesce_points('timeUnixNano')})) AS time,
        {_coalesce_points('attributes')} AS attrs_raw,
        {_coalesce_points('exemplars')} AS ex,
        res['service.name'] AS service, {position}
      FROM ({_points_sql()})
    )
  )
),
good AS (SELECT * FROM pts WHERE _reject_code IS NULL)
SELECT {_COMMON}, metric AS name, mtype AS type,
    CASE WHEN coalesce({no_value}, false) AND p_num.asDouble IS NULL AND p_num.asInt IS NULL THEN CAST('NaN' AS DOUBLE)
         ELSE coalesce(otlp_double(p_num.asDouble), otlp_double(p_num.asInt)) END AS value,
    {_exemplar_columns('ex_n')}
  FROM (SELECT *, ex[-1] AS ex_n FROM good WHERE p_num IS NOT NULL)
UNION ALL BY NAME
{_histogram_buckets_sql()}
UNION ALL BY NAME
{_exp_histogram_buckets_sql()}
UNION ALL BY NAME
SELECT {_COMMON}, metric || '_sum' AS name, CASE mtype WHEN 'histogram' THEN 'histogram_sum' ELSE mtype END AS type,
    otlp_double(coalesce(p_hist.sum, p_exp.sum)) AS value
  FROM good WHERE (p_hist IS NOT NULL OR p_exp IS NOT NULL) AND coalesce(p_hist.sum, p_exp.sum) IS NOT NULL
UNION ALL BY NAME
SELECT {_COMMON}, metric || '_count' AS name, CASE mtype WHEN 'histogram' THEN 'histogram_count' ELSE mtype END AS type,
    coalesce(otlp_double(coalesce(p_hist.count, p_exp.count)), 0) AS value,
    {_exemplar_columns("ex_c")}
  FROM (SELECT *, CASE WHEN p_exp IS NOT NULL THEN ex[-1] END AS ex_c FROM good WHERE p_hist IS NOT NULL OR p_exp IS NOT NULL)
UNION ALL BY NAME
{_summary_sql()}
UNION ALL BY NAME
SELECT source_line, source_offset, _reject_code,
    CASE _reject_code
      WHEN 'missing_field' THEN CASE WHEN metric IS NULL OR metric = '' THEN 'metric has no name'
                                     ELSE 'number data point of ' || metric || ' has neither asDouble nor asInt' END
      WHEN 'bad_time' THEN 'data point of ' || metric || ' has no valid timeUnixNano'
      WHEN 'bad_value' THEN 'histogram data point of ' || metric || ' has ' || len(p_hist.bucketCounts)
        || ' bucketCounts for ' || len(p_hist.explicitBounds) || ' explicitBounds (expected one more count than bounds)'
    END AS _reject_reason,
    left(to_json({{'metric': metric, 'point': coalesce(to_json(p_num), to_json(p_hist), to_json(p_exp), to_json(p_summary))}})::VARCHAR, 1000) AS _raw
  FROM pts WHERE _reject_code IS NOT NULL
UNION ALL BY NAME
{line_rejects_sql(src, "metrics")}
"""


def _histogram_buckets_sql() -> str:
    """Explicit-bounds histogram points → cumulative ``_bucket`` rows with ``le`` labels."""
    bound = "otlp_double(p_hist.explicitBounds[b_i])"
    upper = f"CASE WHEN b_i <= len(p_hist.explicitBounds) THEN {bound} ELSE CAST('inf' AS DOUBLE) END"
    lower = "CASE WHEN b_i = 1 THEN CAST('-inf' AS DOUBLE) ELSE otlp_double(p_hist.explicitBounds[b_i - 1]) END"
    in_bucket = f"list_filter(ex, lambda _x: coalesce(otlp_double(_x.asDouble), otlp_double(_x.asInt)) > lo AND coalesce(otlp_double(_x.asDouble), otlp_double(_x.asInt)) <= hi)[-1]"
    return f"""SELECT {_common("map_concat(labels, MAP {'le': otlp_num_label(hi)})")},
    metric || '_bucket' AS name, 'histogram_bucket' AS type,
    list_sum(list_transform(p_hist.bucketCounts[1:b_i], lambda _c: TRY_CAST(_c AS DOUBLE))) AS value,
    {_exemplar_columns('ex_b')}
  FROM (SELECT *, {in_bucket} AS ex_b
        FROM (SELECT *, {upper} AS hi, {lower} AS lo
              FROM (SELECT *, unnest(range(1, len(p_hist.bucketCounts) + 1)) AS b_i FROM good WHERE len(p_hist.bucketCounts) > 0)))"""


def _exp_histogram_buckets_sql() -> str:
    """Exponential histogram points → cumulative ``_bucket`` rows with computed ``le`` bounds.

    With ``base = 2^(2^-scale)``, positive bucket index ``i`` covers ``(base^i, base^(i+1)]`` and
    negative bucket index ``i`` covers ``[-base^(i+1), -base^i)``.
    """
    base = "(2.0 ** (2.0 ** -coalesce(TRY_CAST(p_exp.scale AS INTEGER), 0)))"
    neg_n = "len(coalesce(p_exp.negative.bucketCounts, []))"
    pos_n = "len(coalesce(p_exp.positive.bucketCounts, []))"
    neg_off = "coalesce(TRY_CAST(p_exp.negative.offset AS INTEGER), 0)"
    pos_off = "coalesce(TRY_CAST(p_exp.positive.offset AS INTEGER), 0)"
    uppers = (f"list_concat(list_transform(range({neg_n}, 0, -1), lambda _k: -({base} ** ({neg_off} + _k - 1))), "
              f"[coalesce(otlp_double(p_exp.zeroThreshold), 0.0)], "
              f"list_transform(range(1, {pos_n} + 1), lambda _k: {base} ** ({pos_off} + _k)))")
    counts = ("list_concat(list_reverse(list_transform(coalesce(p_exp.negative.bucketCounts, []), lambda _c: TRY_CAST(_c AS DOUBLE))), "
              "[coalesce(otlp_double(p_exp.zeroCount), 0.0)], "
              "list_transform(coalesce(p_exp.positive.bucketCounts, []), lambda _c: TRY_CAST(_c AS DOUBLE)))")
    return f"""SELECT {_common("map_concat(labels, MAP {'le': CASE WHEN b_i > len(ups) THEN '+Inf' ELSE otlp_num_label(ups[b_i]) END})")},
    metric || '_bucket' AS name, 'exp_histogram' AS type,
    CASE WHEN b_i > len(ups) THEN coalesce(otlp_double(p_exp.count), list_sum(cnts)) ELSE list_sum(cnts[1:b_i]) END AS value
  FROM (SELECT *, unnest(range(1, len(ups) + 2)) AS b_i
        FROM (SELECT *, {uppers} AS ups, {counts} AS cnts FROM good WHERE p_exp IS NOT NULL))"""


def _summary_sql() -> str:
    """Summary points → quantile rows, ``_sum`` and ``_count``."""
    return f"""SELECT {_common("map_concat(labels, MAP {'quantile': otlp_num_label(otlp_double(q.quantile))})")},
    metric AS name, 'summary_quantile' AS type, otlp_double(q.value) AS value
  FROM (SELECT *, unnest(p_summary.quantileValues) AS q FROM good WHERE len(p_summary.quantileValues) > 0)
UNION ALL BY NAME
SELECT {_COMMON}, metric || '_sum' AS name, 'summary_sum' AS type, otlp_double(p_summary.sum) AS value
  FROM good WHERE p_summary IS NOT NULL
UNION ALL BY NAME
SELECT {_COMMON}, metric || '_count' AS name, 'summary_count' AS type, coalesce(otlp_double(p_summary.count), 0) AS value
  FROM good WHERE p_summary IS NOT NULL"""
