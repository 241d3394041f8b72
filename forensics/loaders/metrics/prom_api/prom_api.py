"""Prometheus HTTP API responses (``/api/v1/query`` and ``/api/v1/query_range``) saved as JSON.

Accepted shapes:

* one response document ``{"status": "success", "data": {"resultType": ..., "result": [...]},
  "warnings": [...]}`` (pretty-printed or not; ``"status": "warning"``, as Thanos and some proxies
  answer a partial result, loads the same with a load warning);
* JSON lines of such responses (one per query, as scripts and Grafana exports concatenate them);
* a bare ``result`` array (``promtool query range -o json``).

``resultType`` ``matrix`` (``values`` pairs), ``vector`` (``value`` pair) and ``scalar`` give one
row per sample; timestamps are float seconds (kept exact to the microsecond), values are
strings (``"NaN"``, ``"+Inf"``, ``"-Inf"`` kept). Native histograms (``histogram``/
``histograms``) give ``<name>_count`` and ``<name>_sum`` rows. ``__name__`` becomes ``name``;
a series without one (e.g. ``rate(...)`` results) is named by the ``query`` option, else
``"unnamed"``. The other labels go to ``labels``; ``service`` is the ``service`` or ``job``
label. ``type`` is ``untyped`` (the API does not say). ``status: "error"`` responses and
``string`` results are rejected with their ``errorType``/``error``; ``warnings`` and ``infos``
become load warnings.
"""
from __future__ import annotations

import itertools
import re

import pyarrow as pa

from forensics._db import run
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import epoch_seconds_sql
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

_tmp = itertools.count()
_RESPONSE = re.compile(r'^\s*\{\s*"status"\s*:\s*"(success|warning|error)"')
#: statuses of a response that carries data (``warning``: Thanos, Cortex/Mimir and some proxies
#: answer a partial result that way)
_OK = "('success', 'warning')"
_BARE = re.compile(r'^\s*\[\s*\{\s*"metric"\s*:')


def _sniff(head: Head) -> float:
    text = head.stripped
    if _RESPONSE.match(text) and ('"resultType"' in text or '"errorType"' in text):
        return 0.95
    if _BARE.match(text) and ('"values"' in text or '"value"' in text):
        return 0.9
    return 0.0


#: one JSON document per row: each line when the first line is a JSON value on its own (JSON
#: lines), else the whole file (a pretty-printed document, rejected once if it is broken)
_DOCS = """
SELECT line, raw,
  CASE WHEN NOT json_valid(raw) THEN NULL
       WHEN json_type(raw::JSON) = 'ARRAY' THEN json_object('status', 'success', 'data', json_object(
         'resultType', CASE WHEN json_exists(raw, '$[0].values') OR json_exists(raw, '$[0].histograms')
                            THEN 'matrix' ELSE 'vector' END, 'result', raw::JSON))
       ELSE raw::JSON END AS doc
FROM (
  SELECT unnest(parts) AS raw, unnest(range(1, len(parts) + 1)) AS line
  FROM (SELECT CASE WHEN json_valid(text) OR NOT json_valid(string_split(ltrim(text), chr(10))[1]) THEN [text]
                    ELSE string_split(text, chr(10)) END AS parts FROM {src})
) WHERE trim(raw) <> ''
"""

_REJECT_DOCS = """
SELECT line AS source_line, raw AS _raw,
  CASE WHEN doc IS NULL THEN 'invalid_json'
       WHEN doc->>'$.status' = 'error' THEN 'bad_value'
       WHEN doc->>'$.status' NOT IN {ok} OR doc->>'$.status' IS NULL OR json_type(doc, '$.data') IS DISTINCT FROM 'OBJECT'
         THEN 'wrong_shape'
       WHEN doc->>'$.data.resultType' = 'string' THEN 'bad_value'
       WHEN doc->>'$.data.resultType' NOT IN ('matrix', 'vector', 'scalar') OR doc->>'$.data.resultType' IS NULL
         THEN 'wrong_shape'
  END AS _reject_code,
  CASE WHEN doc IS NULL THEN 'not valid JSON (expected a Prometheus API response object)'
       WHEN doc->>'$.status' = 'error' THEN 'the query failed: ' || coalesce(doc->>'$.errorType', '?') || ': '
         || coalesce(doc->>'$.error', '(no error text)')
       WHEN doc->>'$.status' NOT IN {ok} OR doc->>'$.status' IS NULL OR json_type(doc, '$.data') IS DISTINCT FROM 'OBJECT'
         THEN 'expected {{"status": "success", "data": {{...}}}}, found status ' || coalesce(doc->>'$.status', 'missing')
       WHEN doc->>'$.data.resultType' = 'string'
         THEN 'a string result is not a metric sample: ' || coalesce(doc->>'$.data.result[1]', '')
       ELSE 'unknown resultType ' || coalesce(doc->>'$.data.resultType', 'missing')
         || ' (expected matrix, vector, scalar or string)'
  END AS _reject_reason
FROM {docs}
"""

def as_list(json_sql: str) -> str:
    """``json_sql`` as a JSON[] to unnest: an array's elements, or any other value as one element
    (which then fails the sample checks and becomes a reject instead of vanishing)."""
    return f"CASE WHEN json_type({json_sql}) = 'ARRAY' THEN CAST({json_sql} AS JSON[]) ELSE [{json_sql}] END"


#: (line, metric JSON, sample pair, kind) for every sample of every good document
_SAMPLES = """
WITH good AS (
  SELECT line, doc->>'$.data.resultType' AS rtype, doc->'$.data.result' AS result FROM {docs}
  WHERE doc->>'$.status' IN {ok} AND doc->>'$.data.resultType' IN ('matrix', 'vector', 'scalar')
), series AS (
  SELECT line, rtype, unnest({result_list}) AS s FROM good WHERE rtype IN ('matrix', 'vector')
), pairs AS (
  SELECT line, s->'$.metric' AS metric, unnest({values_list}) AS pair, 'float' AS kind
    FROM series WHERE rtype = 'matrix' AND json_exists(s, '$.values')
  UNION ALL
  SELECT line, s->'$.metric', unnest({histograms_list}), 'histogram'
    FROM series WHERE rtype = 'matrix' AND json_exists(s, '$.histograms')
  UNION ALL
  -- a series with no samples at all (not an object, or no values/value/histogram...): one reject
  SELECT line, NULL, s, 'float' FROM series
    WHERE NOT (json_exists(s, '$.values') OR json_exists(s, '$.histograms') OR json_exists(s, '$.value')
               OR json_exists(s, '$.histogram'))
  UNION ALL
  SELECT line, s->'$.metric', s->'$.value', 'float' FROM series WHERE rtype = 'vector' AND json_exists(s, '$.value')
  UNION ALL
  SELECT line, s->'$.metric', s->'$.histogram', 'histogram' FROM series WHERE rtype = 'vector' AND json_exists(s, '$.histogram')
  UNION ALL
  SELECT line, NULL, result, 'float' FROM good WHERE rtype = 'scalar'
), expanded AS (
  SELECT line, metric, pair->>'$[0]' AS ts, pair->>'$[1]' AS v, '' AS suffix, pair FROM pairs WHERE kind = 'float'
  UNION ALL
  SELECT line, metric, pair->>'$[0]', pair->>'$[1].count', '_count', pair FROM pairs WHERE kind = 'histogram'
  UNION ALL
  SELECT line, metric, pair->>'$[0]', pair->>'$[1].sum', '_sum', pair FROM pairs WHERE kind = 'histogram'
)
SELECT *, coalesce(TRY_CAST(metric AS MAP(VARCHAR, VARCHAR)), MAP {{}}) AS m FROM expanded
"""


_LISTS = {"result_list": as_list("result"), "values_list": as_list("s->'$.values'"),
          "histograms_list": as_list("s->'$.histograms'")}


def _rows_sql(time_sql: str, samples: str) -> str:
    return f"""
SELECT line AS source_line, CAST(pair AS VARCHAR) AS _raw, {time_sql} AS time,
  coalesce(m['__name__'], $query, 'unnamed') || suffix AS name,
  map_from_entries(list_filter(map_entries(m), lambda e: e.key <> '__name__')) AS labels,
  TRY_CAST(v AS DOUBLE) AS value,
  CASE suffix WHEN '_count' THEN 'histogram_count' WHEN '_sum' THEN 'histogram_sum' ELSE 'untyped' END AS type,
  coalesce(m['service'], m['job']) AS service,
  CASE WHEN {time_sql} IS NULL THEN 'bad_time' WHEN TRY_CAST(v AS DOUBLE) IS NULL THEN 'bad_value' END AS _reject_code,
  CASE WHEN {time_sql} IS NULL THEN 'bad sample timestamp ' || coalesce(ts, 'missing') || ' (expected float seconds)'
       WHEN TRY_CAST(v AS DOUBLE) IS NULL
         THEN 'bad sample value ' || coalesce(v, 'missing') || ' (expected a number as text, "NaN", "+Inf" or "-Inf")'
  END AS _reject_reason
FROM {samples}
"""


@register_format("prom_api_json", signal="metrics", sniff=_sniff, extensions=(".json", ".jsonl"),
                 description="Prometheus HTTP API query / query_range responses (JSON, JSON lines, promtool)")
def load_prom_api(ctx: LoadContext) -> None:
    text = ctx.read_document()
    if text is None:
        return
    n = next(_tmp)
    docs, samples = f"_promapi_docs_{n}", f"_promapi_samples_{n}"
    src = ctx.register(pa.table({"text": [text]}))
    run(ctx.con, f"CREATE TEMP TABLE {docs} AS {_DOCS.format(src=src)}")
    ctx.unregister(src)
    for line, kind, message in run(ctx.con, f"""
            SELECT line, 'warning', unnest(CAST(doc->'$.warnings' AS VARCHAR[])) FROM {docs} WHERE json_exists(doc, '$.warnings')
            UNION ALL
            SELECT line, 'status', 'warning' FROM {docs} WHERE doc->>'$.status' = 'warning' AND NOT json_exists(doc, '$.warnings')
            UNION ALL
            SELECT line, 'info', unnest(CAST(doc->'$.infos' AS VARCHAR[])) FROM {docs} WHERE json_exists(doc, '$.infos')
            UNION ALL
            SELECT line, 'empty', NULL FROM {docs} WHERE json_array_length(doc, '$.data.result') = 0
            ORDER BY 1"""):
        ctx.warn(f"line {line}: the query returned an empty result" if kind == "empty"
                 else f"line {line}: Prometheus answered status \"warning\" (a partial result?) without saying why"
                 if kind == "status" else f"line {line}: Prometheus returned {kind}: {message}")
    ctx.emit("metrics", f"SELECT * FROM ({_REJECT_DOCS.format(docs=docs, ok=_OK)}) WHERE _reject_code IS NOT NULL")
    run(ctx.con, f"CREATE TEMP TABLE {samples} AS {_SAMPLES.format(docs=docs, ok=_OK, **_LISTS)}")
    ctx.emit("metrics", _rows_sql(epoch_seconds_sql("ts"), samples), {"query": ctx.options.get("query")})
    run(ctx.con, f"DROP TABLE {samples}")
    run(ctx.con, f"DROP TABLE {docs}")
