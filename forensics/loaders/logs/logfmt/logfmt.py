"""logfmt logs: ``time=... level=info msg="quoted \\"text\\"" key=value`` lines.

Written by Go kit (``level=error ts=... caller=main.go:42 msg=... err=...``), logrus' text
formatter (``time="2026-02-18T10:12:33+08:00" level=warning msg="slow query"``), log15 and
Grafana (``t=... lvl=eror msg=...``) and Heroku. Lines of ``heroku logs`` output start with
``TIME SOURCE[DYNO]: ``; the prefix gives the time when the pairs have none and is kept as
``heroku.time``/``heroku.source``/``heroku.dyno``; after such a prefix a line that is not logfmt
(an app's plain output) is loaded with the text as its body. In router lines
(``heroku[router]: at=info ... service=412ms``) ``service`` is the service *time*, so it stays an
attribute and is not taken as the service name; ``at`` is the level.

Keys are any characters but space, ``=`` and ``"``; values are bare (no spaces or quotes) or
double-quoted with backslash escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``). A repeated key keeps
its first value. Lines that are not logfmt become ``unparsed_line`` rejects. Parsing is DuckDB
regular expressions over each batch of lines (``regexp_extract_all``): no Python loop per line.
"""
from __future__ import annotations

import re

from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.head import Head
from forensics.loaders.core.registry import register_format

from ..common import Binder, load_log_lines

_VALUE = r'"(?:[^"\\]|\\.)*"|[^\s"]*'
PAIR = r'([^\s="]+)=(' + _VALUE + r')'
LINE = r'\s*[^\s="]+=(?:' + _VALUE + r')(?:\s+[^\s="]+=(?:' + _VALUE + r'))*\s*'
#: ``heroku logs`` prefix: time, source, dyno, rest of the line
HEROKU = r'^(\d{4}-\d{2}-\d{2}T\S+)\s+([\w.\-]+)\[([\w.\-]+)\]:\s+(.*)$'

_PAIR_RE = re.compile(PAIR)
_LINE_RE = re.compile(LINE)
_HEROKU_RE = re.compile(HEROKU)
_TIME_KEYS = {"time", "ts", "t", "timestamp", "@timestamp"}
_MESSAGE_KEYS = {"level", "lvl", "msg", "message", "at", "err", "error", "severity"}


def _unquote(v: str) -> str:
    """SQL: a logfmt value without its quotes, backslash escapes resolved."""
    inner = f"{v}[2:-2]"
    unescaped = (f"replace(replace(replace(replace(replace({inner}, '\\\\', chr(1)), '\\\"', '\"'), '\\n', chr(10)), "
                 f"'\\t', chr(9)), chr(1), '\\')")
    return f"(CASE WHEN starts_with({v}, '\"') AND length({v}) >= 2 THEN {unescaped} ELSE {v} END)"


def logfmt_fields_sql(source: str, b: Binder) -> str:
    """Inner SELECT (see :mod:`forensics.loaders.logs.common`) over a registered ``(line, raw)`` table."""
    heroku, pair, line = b(HEROKU), b(PAIR), b(LINE)
    return f"""
WITH src AS (
  SELECT line AS source_line, raw AS _raw, regexp_matches(raw, {heroku}) AS pre FROM {source}
), cut AS (
  SELECT *, CASE WHEN pre THEN regexp_extract(_raw, {heroku}, 4) ELSE _raw END AS rest FROM src
), pairs AS (
  SELECT *, regexp_full_match(rest, {line}) AS ok,
    regexp_extract_all(rest, {pair}, 1) AS k, regexp_extract_all(rest, {pair}, 2) AS v
  FROM cut
), ents AS (
  SELECT *,
    CASE WHEN ok THEN list_transform(list_filter(range(1, len(k) + 1), lambda i: list_position(k, k[i]) = i),
                                     lambda i: {{'key': k[i], 'value': {_unquote('v[i]')}}})
         ELSE [{{'key': 'message', 'value': rest}}] END AS e,
    CASE WHEN pre THEN [{{'key': 'heroku.time', 'value': regexp_extract(_raw, {heroku}, 1)}},
                        {{'key': 'heroku.source', 'value': regexp_extract(_raw, {heroku}, 2)}},
                        {{'key': 'heroku.dyno', 'value': regexp_extract(_raw, {heroku}, 3)}}]
         ELSE [] END AS h
  FROM pairs
)
SELECT source_line, _raw,
  CASE WHEN NOT ok AND NOT pre THEN 'unparsed_line' END AS _pre_code,
  CASE WHEN NOT ok AND NOT pre THEN 'line is not logfmt (expected key=value pairs separated by spaces, '
       || 'values with spaces in double quotes)' END AS _pre_reason,
  map_from_entries(list_concat(e, list_filter(h, lambda x: NOT list_contains(k, x.key)))) AS top,
  MAP {{}}::MAP(VARCHAR, VARCHAR) AS nested,
  map_from_entries(list_concat(
    list_filter(e, lambda x: NOT (pre AND x.key = 'service' AND regexp_extract(_raw, {heroku}, 3) = 'router')),
    list_filter(h, lambda x: NOT list_contains(k, x.key)))) AS f
FROM ents
"""


def _sniff(head: Head) -> float:
    lines = [line.lstrip("\ufeff") for line in head.lines[:50]]
    if not lines:
        return 0.0
    parsed, prefixed_text = [], 0
    for text in lines:
        m = _HEROKU_RE.match(text)
        rest = m.group(4) if m else text
        if _LINE_RE.fullmatch(rest):
            parsed.append((bool(m), {k for k, _ in _PAIR_RE.findall(rest)}))
        elif m:
            prefixed_text += 1  # an app's plain output inside ``heroku logs``
    if not parsed or len(parsed) + prefixed_text < 0.6 * len(lines):
        return 0.0
    prefixed, keys = parsed[0]
    if len(keys) < 2 or not keys & _MESSAGE_KEYS or not (prefixed or keys & _TIME_KEYS):
        return 0.0
    return 0.6


@register_format("logfmt", signal="logs", description="logfmt key=value logs (Go kit, logrus text, log15, Heroku)",
                 sniff=_sniff, extensions=(".log", ".logfmt", ".txt"))
def load_logfmt(ctx: LoadContext) -> None:
    """Load logfmt lines; options ``mapping=`` and ``tz=`` (see :mod:`forensics.loaders.logs.common`)."""
    load_log_lines(ctx, logfmt_fields_sql)
