"""Prometheus text exposition (0.0.4) and OpenMetrics 1.0 text, as scraped from ``/metrics``.

Each sample line becomes one ``metrics`` row. The family of a sample (and so its ``type``,
``description`` and ``unit``) comes from the nearest preceding ``# HELP``/``# TYPE``/``# UNIT``
block, found with an ASOF join over line numbers, so families may span read batches.

* Types: ``counter`` (``_total``), ``created`` (OpenMetrics ``_created`` of counters,
  histograms and summaries), ``gauge``, ``histogram_bucket``/``histogram_sum``/
  ``histogram_count`` (also gauge histograms' ``_gsum``/``_gcount``), ``summary_quantile``/
  ``summary_sum``/``summary_count``, ``info``, ``stateset``, and ``untyped`` for samples without
  a matching TYPE line (or TYPE ``untyped``/``unknown``).
* Values keep ``NaN``, ``+Inf`` and ``-Inf``; label values are unescaped (``\\"``, ``\\\\``,
  ``\\n``).
* Timestamps: integer milliseconds in Prometheus text, (fractional) seconds in OpenMetrics. The
  dialect is the ``dialect`` option (``"prometheus"``/``"openmetrics"``); else OpenMetrics when
  the file has ``# EOF`` (head, or last line of an uncompressed file), a ``# UNIT`` line or an
  exemplar in its head, or when most head timestamps look like seconds (a fraction, or between
  1e8 and 1e11; milliseconds since 1973 are above 1e11). Samples without a timestamp get the
  ``scrape_time`` option (ISO text, epoch seconds or datetime) or else the file's modification
  time; a warning says which.
* Exemplars (``# {trace_id="...",span_id="..."} 0.67 1700000000.123``) fill
  ``exemplar_trace_id``/``exemplar_span_id`` (lowercase hex, left-padded; ``traceID``/``spanID``
  label names also accepted), ``exemplar_value`` and ``exemplar_time``.
* ``service`` is the ``service`` (or ``service.name``, ``service_name``) label, else ``job``.
* Prometheus 3 / OpenMetrics 2 quoted UTF-8 names (``{"http.server.duration", "service.name"="x"}``,
  ``# TYPE "http.server.duration" histogram``) are read and unquoted.
* Lines that are not samples or comments, bad label sets, bad values or timestamps, unknown
  TYPE values and anything after ``# EOF`` are rejected with their line numbers.
"""
from __future__ import annotations

import itertools
import os
import re
from datetime import datetime

from forensics._db import run, scalar
from forensics.errors import UsageError
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.fields import epoch_ms_sql, epoch_seconds_sql, scrape_time
from forensics.loaders.core.head import Head, head_of
from forensics.loaders.core.io import compression_of
from forensics.loaders.core.registry import register_format
from forensics.loaders.core.semconv import SPAN_ID_HEX, TRACE_ID_HEX, hex_id_sql

_tmp = itertools.count()

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LABELS = r'(?:[^"}]|' + _QUOTED + r')*'
#: a label pair; Prometheus 3 / OpenMetrics 2 allow quoted UTF-8 names ("service.name"="x")
_LABEL = r'(?:[a-zA-Z_][a-zA-Z0-9_]*|' + _QUOTED + r')\s*=\s*' + _QUOTED
_LABEL_SET = r'\s*(?:' + _LABEL + r'\s*(?:,\s*' + _LABEL + r'\s*)*,?\s*)?'
#: name{labels} or {"quoted.name", labels}, value, timestamp, exemplar
_SAMPLE = (r'^\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(' + _LABELS + r')\})?|\{\s*(' + _QUOTED + r')\s*(?:,(' + _LABELS
           + r'))?\})\s+(\S+)(?:\s+([^\s#]\S*))?\s*(?:#\s*\{(' + _LABELS + r')\}\s*(\S+)(?:\s+(\S+))?)?\s*$')
_SAMPLE_GROUPS = "['name', 'labels', 'qname', 'qlabels', 'value', 'ts', 'ex_labels', 'ex_value', 'ex_ts']"
_FLOAT = r'[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|(?i:inf|infinity|nan))'
_META = r'^#\s*(HELP|TYPE|UNIT|EOF)(?:\s+(' + _QUOTED + r'|\S+))?(?:\s(.*))?$'

TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown", "untyped")
#: sample-name suffixes each family type allows
_SUFFIXES = {
    "counter": ("", "_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"), "summary": ("", "_sum", "_count", "_created"),
    "info": ("", "_info"), "stateset": ("",), "unknown": ("",), "untyped": ("",),
}


def unescape_sql(expr: str) -> str:
    """Undo exposition-format escaping (``\\\\``, ``\\"``, ``\\n``) in a text expression."""
    # split at escaped backslashes first (left to right, like the parser), unescape the rest of
    # each piece, then join with one backslash: no placeholder character that real text could hold
    return (f"array_to_string(list_transform(string_split({expr}, '\\\\'), "
            "lambda p: replace(replace(p, '\\\"', '\"'), '\\n', chr(10))), '\\')")


def unquote_sql(expr: str) -> str:
    """The text of a quoted exposition string (``"a\\"b"`` → ``a"b``); unquoted text as is."""
    return (f"(CASE WHEN starts_with({expr}, chr(34)) THEN {unescape_sql(f'substr({expr}, 2, length({expr}) - 2)')} "
            f"ELSE {expr} END)")


def label_lists_sql(expr: str, prefix: str) -> str:
    """``{prefix}keys`` and ``{prefix}vals`` (unescaped) of a ``name="value",...`` label list,
    extracting the pairs with one regex pass (quoted UTF-8 names take a second, per pair)."""
    pairs = f"regexp_extract_all(coalesce({expr}, ''), '{_LABEL}', 0)"
    quoted_key = unquote_sql(f"regexp_extract(p, '^({_QUOTED})', 1)")
    quoted_val = unquote_sql(f"regexp_extract(p, '=\\s*({_QUOTED})$', 1)")
    plain_val = unescape_sql("substr(p, strpos(p, chr(34)) + 1, length(p) - strpos(p, chr(34)) - 1)")
    return (f"list_transform({pairs}, lambda p: CASE WHEN starts_with(p, chr(34)) THEN {quoted_key} "
            f"ELSE trim(split_part(p, '=', 1)) END) AS {prefix}keys, "
            f"list_transform({pairs}, lambda p: CASE WHEN starts_with(p, chr(34)) THEN {quoted_val} ELSE {plain_val} END) "
            f"AS {prefix}vals")


def label_map_sql(prefix: str) -> str:
    """MAP from the lists of :func:`label_lists_sql` (NULL when a name repeats)."""
    return (f"(CASE WHEN len(list_distinct({prefix}keys)) = len({prefix}keys) "
            f"THEN map({prefix}keys, {prefix}vals) END)")


def _suffix_case() -> str:
    parts = []
    for ftype, suffixes in _SUFFIXES.items():
        allowed = ", ".join(f"'{s}'" for s in suffixes)
        parts.append(f"WHEN ftype = '{ftype}' THEN suffix IN ({allowed})")
    return "CASE " + " ".join(parts) + " ELSE suffix = '' END"


_TYPE_CASE = """CASE
  WHEN NOT matched OR ftype IN ('unknown', 'untyped') OR ftype IS NULL THEN 'untyped'
  WHEN suffix = '_created' THEN 'created'
  WHEN ftype = 'counter' THEN 'counter'
  WHEN ftype = 'gauge' THEN 'gauge'
  WHEN ftype IN ('histogram', 'gaugehistogram') THEN
    CASE suffix WHEN '_bucket' THEN 'histogram_bucket' WHEN '_count' THEN 'histogram_count'
         WHEN '_gcount' THEN 'histogram_count' ELSE 'histogram_sum' END
  WHEN ftype = 'summary' THEN
    CASE suffix WHEN '_sum' THEN 'summary_sum' WHEN '_count' THEN 'summary_count' ELSE 'summary_quantile' END
  WHEN ftype IN ('info', 'stateset') THEN ftype
  ELSE 'untyped' END"""


def _sniff(head: Head) -> float:
    lines = head.lines[:200]
    if not lines or head.first_json is not None:
        return 0.0
    meta = sum(1 for ln in lines if re.match(r"#\s*(HELP|TYPE|UNIT)\s+[a-zA-Z_:\"]", ln))
    matches = (re.match(_SAMPLE, ln) for ln in lines)
    samples = sum(1 for m in matches if m and re.fullmatch(_FLOAT, m.group(5)))
    other = len(lines) - samples - sum(1 for ln in lines if ln.lstrip().startswith("#"))
    if meta and samples and other <= len(lines) // 10:
        return 0.95
    if samples >= 3 and other == 0 and head.ext in (".prom", ".txt", ".metrics", ".om", ""):
        return 0.6
    return 0.0


def _tail(path: str, size: int = 4096) -> bytes:
    """Last bytes of an uncompressed file (b"" for compressed ones)."""
    if compression_of(path) is not None:
        return b""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - size))
        return fh.read()


def _is_openmetrics(ctx: LoadContext) -> bool:
    """Dialect of the file: the ``dialect`` option; else OpenMetrics markers (``# EOF`` at the
    start or end, ``# UNIT``, exemplars); else what most head timestamps look like (seconds have
    a fraction or lie in [1e8, 1e11); milliseconds of any date after 1973 are above 1e11)."""
    dialect = ctx.options.get("dialect")
    if dialect is not None:
        if str(dialect).lower() not in ("prometheus", "openmetrics"):
            raise UsageError(f"dialect={dialect!r}: choose 'prometheus' (timestamps in ms) or 'openmetrics' (seconds)")
        return str(dialect).lower() == "openmetrics"
    head = head_of(ctx.path)
    if (head.has(r"(?m)^# EOF\s*$") or head.has(r"(?m)^# UNIT ") or head.has(r'\}\s+\S+(\s+\S+)?\s+#\s*\{')
            or re.search(rb"(?m)^# EOF\s*\Z", _tail(ctx.path))):
        return True
    stamps = [m.group(6) for m in map(re.compile(_SAMPLE).match, head.lines[:2000]) if m and m.group(6)]
    magnitudes = [abs(float(t)) for t in stamps if re.fullmatch(_FLOAT, t)]
    seconds = sum(1 for t, v in zip(stamps, magnitudes) if re.search(r"[.eE]", t) or 1e8 <= v < 1e11)
    return seconds > sum(1 for v in magnitudes if v >= 1e11)


@register_format("prometheus_text", signal="metrics", sniff=_sniff, extensions=(".prom", ".txt", ".om"),
                 description="Prometheus text exposition 0.0.4 / OpenMetrics 1.0 (scrape output)")
def load_prometheus_text(ctx: LoadContext) -> None:
    openmetrics = _is_openmetrics(ctx)
    default_time, from_mtime = scrape_time(ctx.options.get("scrape_time"), ctx.path)
    meta = f"_prom_meta_{next(_tmp)}"
    run(ctx.con, f"CREATE TEMP TABLE {meta} (line BIGINT, kw VARCHAR, family VARCHAR, rest VARCHAR)")
    untimed = 0
    # no try/finally: after a failure the transaction is aborted and rolled back by the caller
    for batch in ctx.line_batches():
        src = ctx.register(batch)
        _collect_meta(ctx, src, meta)
        untimed += _emit_samples(ctx, src, meta, openmetrics, default_time)
        ctx.unregister(src)
    run(ctx.con, f"DROP TABLE {meta}")
    if untimed:
        where = "the file's modification time" if from_mtime else "the scrape_time option"
        ctx.warn(f"{untimed} samples carry no timestamp; they were given {where}, "
                 f"{default_time.isoformat()} (pass scrape_time=... to set it)")


def _collect_meta(ctx: LoadContext, src: str, meta: str) -> None:
    """Store this batch's HELP/TYPE/UNIT/EOF lines; reject bad TYPE lines."""
    run(ctx.con, f"""
        INSERT INTO {meta}
        SELECT line, m.kw, {unquote_sql('m.family')}, CASE WHEN m.kw = 'HELP' THEN {unescape_sql('m.rest')} ELSE trim(m.rest) END
        FROM (SELECT line, regexp_extract(raw, ?, ['kw', 'family', 'rest']) AS m FROM {src}
              WHERE regexp_matches(raw, '^#\\s*(HELP|TYPE|UNIT|EOF)(\\s|$)'))""", [_META])
    types = ", ".join(f"'{t}'" for t in TYPES)
    ctx.emit("metrics", f"""
        SELECT b.line AS source_line, b.raw AS _raw, 'bad_value' AS _reject_code,
          'TYPE line names an unknown metric type ' || coalesce(m.rest, '(none)') ||
          ' (expected one of {", ".join(TYPES)})' AS _reject_reason
        FROM {src} b JOIN {meta} m ON m.line = b.line
        WHERE m.kw = 'TYPE' AND (m.rest IS NULL OR lower(m.rest) NOT IN ({types}))""")


def _emit_samples(ctx: LoadContext, src: str, meta: str, openmetrics: bool, default_time: datetime) -> int:
    """Emit this batch's sample lines; returns how many carried no timestamp."""
    ts_time = epoch_seconds_sql("ts") if openmetrics else epoch_ms_sql("ts")
    ts_expect = "seconds" if openmetrics else "integer milliseconds"
    ex_time = epoch_seconds_sql("ex_ts")
    families = f"""
        SELECT min(line) AS line, family, lower(any_value(rest) FILTER (kw = 'TYPE')) AS ftype,
               any_value(rest) FILTER (kw = 'HELP') AS help, any_value(rest) FILTER (kw = 'UNIT') AS unit
        FROM (SELECT *, sum(CASE WHEN family IS DISTINCT FROM prev THEN 1 ELSE 0 END) OVER (ORDER BY line) AS block
              FROM (SELECT *, lag(family) OVER (ORDER BY line) AS prev FROM {meta} WHERE kw <> 'EOF'))
        GROUP BY block, family"""
    parsed = f"""
        SELECT line, raw, name, labels, value, ts, ex_labels, ex_value, ex_ts,
          {label_lists_sql('labels', 'l')}, {label_lists_sql('ex_labels', 'e')}
        FROM (SELECT line, raw, s.value, s.ts, s.ex_labels, s.ex_value, s.ex_ts,
                CASE WHEN s.qname <> '' THEN {unquote_sql('s.qname')} ELSE s.name END AS name,
                CASE WHEN s.qname <> '' THEN s.qlabels ELSE s.labels END AS labels
              FROM (SELECT line, raw, regexp_extract(raw, $sample, {_SAMPLE_GROUPS}) AS s
                    FROM {src} WHERE NOT regexp_matches(raw, '^\\s*#')))"""
    checked = f"""
        SELECT *, {label_map_sql('l')} AS lmap, {label_map_sql('e')} AS emap, TRY_CAST(value AS DOUBLE) AS v,
          CASE WHEN ts = '' THEN $default_time::TIMESTAMPTZ ELSE {ts_time} END AS t,
          CASE WHEN ex_ts <> '' THEN {ex_time} END AS et,
          regexp_full_match(labels, $labelset) AS labels_ok,
          ex_labels = '' OR (regexp_full_match(ex_labels, $labelset) AND regexp_full_match(ex_value, $float)) AS ex_ok
        FROM ({parsed})"""
    typed = f"""
        SELECT p.*, f.family, f.ftype, f.help, f.unit,
          CASE WHEN f.family IS NOT NULL AND starts_with(p.name, f.family)
               THEN substr(p.name, length(f.family) + 1) END AS suffix
        FROM ({checked}) p ASOF LEFT JOIN ({families}) f ON p.line >= f.line"""
    eof = f"(SELECT min(line) FROM {meta} WHERE kw = 'EOF')"
    coded = f"""
        SELECT *, coalesce({_suffix_case()}, false) AS matched, {eof} AS eof,
          CASE
            WHEN line > coalesce({eof}, line) THEN 'wrong_shape'
            WHEN name = '' THEN 'unparsed_line'
            WHEN NOT labels_ok OR lmap IS NULL THEN 'bad_labels'
            WHEN NOT regexp_full_match(value, $float) OR v IS NULL THEN 'bad_value'
            WHEN t IS NULL THEN 'bad_time'
            WHEN NOT ex_ok OR emap IS NULL THEN 'bad_exemplar'
            WHEN ex_ts <> '' AND et IS NULL THEN 'bad_exemplar_time'
          END AS code
        FROM ({typed})"""
    trace = hex_id_sql("coalesce(emap['trace_id'], emap['traceID'], emap['traceId'])", TRACE_ID_HEX)
    span = hex_id_sql("coalesce(emap['span_id'], emap['spanID'], emap['spanId'])", SPAN_ID_HEX)
    sql = f"""
        SELECT line AS source_line, raw AS _raw, t AS time, name, lmap AS labels, v AS value, {_TYPE_CASE} AS type,
          CASE WHEN matched THEN unit END AS unit, CASE WHEN matched THEN help END AS description,
          coalesce(lmap['service'], lmap['service.name'], lmap['service_name'], lmap['job']) AS service,
          {trace} AS exemplar_trace_id, {span} AS exemplar_span_id,
          CASE WHEN ex_value <> '' THEN TRY_CAST(ex_value AS DOUBLE) END AS exemplar_value, et AS exemplar_time,
          CASE code WHEN 'bad_labels' THEN 'bad_value' WHEN 'bad_exemplar' THEN 'bad_value'
                    WHEN 'bad_exemplar_time' THEN 'bad_time' ELSE code END AS _reject_code,
          CASE code
            WHEN 'wrong_shape' THEN 'content after # EOF (line ' || eof || ')'
            WHEN 'unparsed_line' THEN 'not a sample or comment line (expected name{{labels}} value [timestamp])'
            WHEN 'bad_labels'
              THEN 'bad label set {{' || labels || '}} (expected name="value" pairs, unique names, escaped values)'
            WHEN 'bad_value' THEN 'bad sample value ' || value || ' (expected a float, +Inf, -Inf or NaN)'
            WHEN 'bad_time' THEN 'bad timestamp ' || ts || ' (expected {ts_expect} since the epoch; '
              || 'pass dialect="prometheus" or "openmetrics" if the dialect was guessed wrong)'
            WHEN 'bad_exemplar'
              THEN 'bad exemplar # {{' || ex_labels || '}} ' || ex_value || ' (expected # {{labels}} value [timestamp])'
            WHEN 'bad_exemplar_time' THEN 'bad exemplar timestamp ' || ex_ts || ' (expected seconds since the epoch)'
          END AS _reject_reason
        FROM ({coded})"""
    params = {"sample": _SAMPLE, "labelset": _LABEL_SET, "float": _FLOAT, "default_time": default_time}
    ctx.emit("metrics", sql, params)
    return scalar(ctx.con, f"SELECT count(*) FROM (SELECT regexp_extract(raw, $sample, {_SAMPLE_GROUPS}) AS s "
                  f"FROM {src} "
                  "WHERE NOT regexp_matches(raw, '^\\s*#')) WHERE (s.name <> '' OR s.qname <> '') AND s.ts = ''",
                  {"sample": _SAMPLE})
