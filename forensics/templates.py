"""Log template mining: fill ``logs.template`` and ``logs.template_id`` with drain3.

Drain clusters messages that share their constant words; the varying words become ``<*>``, so
``timeout calling payment-service after 800 ms`` and ``... after 1250 ms`` share the template
``timeout calling payment-service after <*> ms`` and "top error types" is one GROUP BY::

    SELECT template, count(*) FROM logs WHERE severity = 'error' GROUP BY template ORDER BY 2 DESC LIMIT 5

Choices, so results are reproducible:

- The drain3 configuration is built here in code (:func:`miner_config`); a ``drain3.ini`` in the
  working directory is never read.
- Before clustering, dates and times, numbers (with an optional unit such as ``ms`` or ``MiB``),
  UUIDs, IPv4 addresses (with a port), ``0x`` hex and hex ids of 8+ digits are masked to ``<*>``.
- Only the first line of a body is mined (a stack trace's frames would make every message unique).
- Drain is sequential and order-dependent, so the distinct first lines are fed in a fixed order
  (earliest time first, then the text), each cluster's *final* template is given to all its
  members, and ``template_id`` is a hash of the template text (the same template gets the same id
  in every case).
- Masking runs first in SQL (:func:`mask_sql`, the same masks as drain3's, for RE2), so the
  Python loop (drain3 has no vectorized API) runs once per distinct *masked* message -- usually a
  few hundred for millions of lines; grouping, ordering and the update are SQL over the case.

Loading mines each file's new rows on their own (see :func:`mine_new_logs`, called by
:func:`forensics.load`); :func:`mine_templates` re-mines a whole case (or a part of it) at once,
which gives case-wide templates after several files were loaded.
"""
from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import duckdb
import pyarrow as pa
from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from ._db import run

if TYPE_CHECKING:
    from .case import Case

#: the SQL expression giving the mined part of a body: its first line, trimmed
HEAD_SQL = "trim(split_part(body, chr(10), 1))"

#: (name, token, characters that may not touch it): applied in this order; each renders as ``<*>``.
#: A token only counts when the characters around it are not in its "touch" class, so ``v1.8.0``,
#: ``catalog-7d9f`` and ``http2`` stay as written.
MASKS: tuple[tuple[str, str, str], ...] = (
    ("datetime", r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?", r"\w."),
    ("time_of_day", r"\d{2}:\d{2}:\d{2}(?:[.,]\d+)?", r"\w.:"),
    # OpenStack's [req-<uuid> ...], X-Request-ID style values: the prefix goes with the id
    ("request_id", r"(?:req|request|txn|correlation)[-_][0-9a-fA-F][0-9a-fA-F\-]{7,}", r"\w."),
    ("uuid", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", r"\w.\-"),
    ("ip", r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?", r"\w."),
    ("hex", r"0[xX][0-9a-fA-F]+", r"\w.\-"),
    ("hex_id", r"[0-9a-fA-F]{8,}", r"\w.\-"),
    ("number", r"[-+]?\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|[kKMGT]i?B|B|%)?", r"\w."),
)
#: HTTP methods: a request line (method, then a path) keeps its path, and messages with different
#: request lines never share a template (see :func:`mine`)
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
#: a file path of two or more segments (``/var/www/html/favicon.ico``), masked before the other
#: masks unless it is a request line's path; and a URL query (``?page=2&q=x`` -> ``?<*>``)
_PATH = r"(?:/[\w.\-~%@+]+){2,}/?"
_PATH_TOUCH = r"\w.\-/~%@+<>*"
_QUERY = r"[^\s\"'#<>?]+"
_REQUEST = re.compile(r"\b(" + "|".join(HTTP_METHODS) + r") +(/[^\s\"'?#]*|https?://[^\s\"'?#]+)")


def python_mask_patterns() -> list[str]:
    """The masks as Python regular expressions (lookarounds), as drain3 applies them (each
    match becomes ``<*>``): file paths (not a request line's), URL queries, then :data:`MASKS`."""
    not_request = "".join(f"(?<!{m} )" for m in HTTP_METHODS)
    return ([f"(?<![{_PATH_TOUCH}]){not_request}{_PATH}", f"(?<=\\?){_QUERY}"]
            + [f"(?<![{touch}]){token}(?![{touch}])" for _, token, touch in MASKS])


def mask_sql(expr: str) -> str:
    """SQL applying the same masks with DuckDB's RE2 (no lookarounds: the neighbouring characters
    are captured and put back, each mask runs twice so tokens one separator apart are both
    masked, and a request line's path is shielded from the path mask by a placeholder)."""
    methods = "|".join(HTTP_METHODS)
    out = f"regexp_replace({expr}, '\\b({methods}) /', '\\1\x1f/', 'g')"
    for _ in range(2):
        out = f"regexp_replace({out}, '(^|[^{_PATH_TOUCH}\x1f]){_PATH}', '\\1<*>', 'g')"
    out = f"replace({out}, chr(31), ' ')"
    out = f"regexp_replace({out}, '\\?{_QUERY.replace(chr(39), chr(39) * 2)}', '?<*>', 'g')"
    for _, token, touch in MASKS:
        rx = f"(^|[^{touch}]){token}($|[^{touch}])"
        for _ in range(2):
            out = f"regexp_replace({out}, '{rx}', '\\1<*>\\2', 'g')"
    return out


_PYTHON_MASKS = [re.compile(p) for p in python_mask_patterns()]


def request_key(message: str) -> str | None:
    """The request line of a message, masked (``GET /v2/<*>/servers/detail``), None when it has none."""
    if _REQUEST.search(message) is None:
        return None
    for rx in _PYTHON_MASKS:
        message = rx.sub("<*>", message)
    m = _REQUEST.search(message)
    return f"{m.group(1)} {m.group(2)}" if m else None


def miner_config(*, sim_th: float = 0.4, depth: int = 4, max_children: int = 100) -> TemplateMinerConfig:
    """The drain3 configuration used by forensics, built in code (never from ``drain3.ini``).

    Parameters
    ----------
    sim_th:
        Similarity threshold (0..1): the share of equal tokens a message needs to join a cluster.
    depth:
        Depth of drain's prefix tree (at least 3).
    max_children:
        Maximum children of a tree node.
    """
    config = TemplateMinerConfig()  # defaults only; ``.load()`` (the ini reader) is never called
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_max_children = max_children
    config.drain_max_clusters = None
    config.drain_extra_delimiters = []
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.mask_prefix = "<"
    config.mask_suffix = ">"
    config.masking_instructions = [MaskingInstruction(pattern, "*") for pattern in python_mask_patterns()]
    return config


def template_id(template: str) -> str:
    """Stable id of a template text: 16 hex chars of its BLAKE2b hash."""
    return hashlib.blake2b(template.encode("utf-8"), digest_size=8).hexdigest()


def mine(messages: Iterable[str], **config: Any) -> list[str]:
    """Templates of ``messages`` (in the given order, which matters to drain), one per message.

    >>> mine(["timeout calling payment-service after 800 ms",
    ...       "timeout calling payment-service after 1250 ms",
    ...       "user 42 logged in"])
    ['timeout calling payment-service after <*> ms', 'timeout calling payment-service after <*> ms', 'user <*> logged in']
    """
    messages = list(messages)
    miners: dict[str | None, TemplateMiner] = {}
    clusters = []
    for m in messages:  # one miner per request line: GET /a and POST /b never merge
        key = request_key(m)
        miner = miners.get(key)
        if miner is None:
            miner = miners[key] = TemplateMiner(persistence_handler=None, config=miner_config(**config))
        clusters.append((key, miner.add_log_message(m)["cluster_id"]))
    final = {(key, c.cluster_id): c.get_template() for key, miner in miners.items() for c in miner.drain.clusters}
    return [final[c] for c in clusters]


def _mine_where(con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any] | None) -> int:
    """Mine the distinct masked first lines of the ``logs`` rows matching ``where``; update them."""
    masked = mask_sql(HEAD_SQL)
    heads = con.sql(
        f"SELECT {masked} AS head FROM logs WHERE ({where}) AND body IS NOT NULL AND {HEAD_SQL} <> '' "
        f"GROUP BY head ORDER BY min(time) NULLS LAST, min(source_line) NULLS LAST, head",
        params=list(params or []) or None,
    ).to_arrow_table().column("head").to_pylist()
    if not heads:
        return 0
    templates = mine(heads)  # drain3 masks again: a no-op on masked text
    table = pa.table({"head": heads, "template": templates, "template_id": [template_id(t) for t in templates]})
    name = "_forensics_templates"
    con.register(name, table)
    try:
        run(con, f"UPDATE logs SET template = m.template, template_id = m.template_id FROM {name} m "
                 f"WHERE m.head = {masked.replace('body', 'logs.body')} AND ({where})", params)
    finally:
        con.unregister(name)
    return len(set(templates))


def mine_new_logs(con: duckdb.DuckDBPyConnection, source_file: str) -> int:
    """Mine the rows of ``source_file`` that have no template yet (the rows a load just added).

    Called by :func:`forensics.load` inside the file's transaction. Returns the number of
    templates.
    """
    return _mine_where(con, "logs.source_file = ? AND logs.template IS NULL", [source_file])


def mine_templates(case: "Case", *, where: str | None = None, params: Sequence[Any] | None = None) -> int:
    """(Re)mine the templates of a whole case, or of the ``logs`` rows matching ``where``.

    Parameters
    ----------
    case:
        The case to update (``logs.template`` and ``logs.template_id`` are overwritten).
    where:
        Optional SQL condition over ``logs`` columns, values as ``?`` placeholders, e.g.
        ``"service = ?"``.
    params:
        Values of the placeholders in ``where``.

    Returns
    -------
    int
        Number of distinct templates assigned.
    """
    return _mine_where(case.con, where or "true", params)
