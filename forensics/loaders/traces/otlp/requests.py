"""Loading parsed OTLP requests: the step shared by ``otlp_json`` and ``otlp_proto``.

Both loaders produce a relation of OTLP/JSON request texts (``line``, ``doc``, ``raw``) and
hand it to :func:`emit_requests`, which parses it once with DuckDB's ``json_transform`` and
emits spans, logs and metrics (each with its rejects) through the :class:`LoadContext`.
"""
from __future__ import annotations

import json

import pyarrow as pa

from forensics._db import one, run, scalar
from forensics.loaders.core.context import LoadContext

from .metrics import METRIC_KINDS  # the metric types, each with its dataPoints
from .metrics import metrics_sql
from .sql import SIGNAL_KEYS, SIGNALS, guess_signal_sql, logs_sql, macros_sql, spans_sql

_SIGNAL_SQL = {"spans": spans_sql, "logs": logs_sql, "metrics": metrics_sql}


def install_macros(ctx: LoadContext) -> None:
    """Create the ``otlp_*`` temp macros on the load connection (idempotent)."""
    run(ctx.con, macros_sql())


def requests_table(raw: list[str]) -> pa.Table:
    """An Arrow (line, doc, raw) table of request documents: no lines, ``doc`` their position."""
    return pa.table({
        "line": pa.nulls(len(raw), pa.int64()),
        "doc": pa.array(range(len(raw)), pa.int64()),
        "raw": pa.array(raw, pa.large_string()),
    })


def emit_requests(ctx: LoadContext, src: str, *, doc_mode: bool, bases: dict[str, int] | None = None) -> None:
    """Parse the requests in relation ``src`` and emit spans, logs and metrics.

    Each signal is one streaming INSERT (parse, unnest, map) over the lines that mention its
    key, so every line is parsed once; lines that are not requests become rejects of the
    signal their text suggests.

    Parameters
    ----------
    src:
        A registered relation with columns ``line`` (1-based line or NULL), ``doc`` (0-based
        document index) and ``raw`` (request JSON text).
    doc_mode:
        True when records have no line: rows then carry ``source_offset``, the 0-based index
        of the record (span, log record or metric data point) among the file's records of
        its signal.
    bases:
        Doc mode over a file read in pieces (one call per piece): the number of records of
        each signal in the earlier pieces, added to ``source_offset`` and advanced here. ``doc``
        then numbers the pieces (it orders the records) and ``line`` is ``-1 - document index``,
        which becomes the ``source_offset`` of a document-level reject (as in one piece);
        ``head``, the document's first 1000 characters, becomes that reject's ``raw``.
    """
    present = one(ctx.con, "SELECT " + ", ".join(
        f"coalesce(bool_or(contains(raw, '\"{key}\"') OR {guess_signal_sql('raw')} = '{signal}'), false)"
        for signal, key in SIGNAL_KEYS.items()) + f" FROM {src}")
    for (signal, build), has in zip(_SIGNAL_SQL.items(), present or ()):
        if has and bases is None:
            ctx.emit(signal, build(src, doc_mode=doc_mode))
        elif has:
            _emit_numbered(ctx, signal, src, build(src, doc_mode=True), bases)


def _emit_numbered(ctx: LoadContext, signal: str, src: str, select: str, bases: dict[str, int]) -> None:
    """Emit the doc-mode rows of ``select`` with record offsets moved past ``bases[signal]``,
    then move that base past this piece's records."""
    base = bases.get(signal, 0)
    ctx.emit(signal, f"""SELECT s.* REPLACE (CAST(NULL AS BIGINT) AS source_line,
        CASE WHEN s.source_line < 0 THEN -1 - s.source_line ELSE s.source_offset + $base END AS source_offset,
        CASE WHEN s.source_line < 0 THEN coalesce(d.head, s._raw) ELSE s._raw END AS _raw)
        FROM ({select}) s LEFT JOIN (SELECT DISTINCT line, head FROM {src}) d ON s.source_line = d.line""",
             {"base": base})
    bases[signal] = base + scalar(ctx.con, *record_count_sql(src, signal))


def record_count_sql(src: str, signal: str) -> tuple[str, dict[str, str]]:
    """The number of records (spans, log records, metric data points) of ``signal`` in ``src``
    (a query and its parameters): the rows :func:`~forensics.loaders.traces.otlp.sql.records_sql` (and the metric
    points) would number, counted from a ``json_transform`` that keeps only the containers
    (the same NULLs for containers of the wrong JSON type), a fraction of the full parse."""
    rkey, scopes_key, legacy_key, records_key, _ = SIGNALS[signal]
    leaf: object = {kind: {"dataPoints": ["JSON"]} for kind in METRIC_KINDS} if signal == "metrics" else "JSON"
    scope = {records_key: [leaf]}
    structure = json.dumps({rkey: [{scopes_key: [scope], legacy_key: [scope]}]}, separators=(",", ":"))
    per_scope = (f"coalesce(list_sum(list_transform(_ss.{records_key}, lambda _r: "
                 + " + ".join(f"coalesce(len(_r.{kind}.dataPoints), 0)" for kind in METRIC_KINDS) + ")), 0)"
                 if signal == "metrics" else f"coalesce(len(_ss.{records_key}), 0)")
    per_resource = (f"coalesce(list_sum(list_transform(coalesce(_rs.{scopes_key}, _rs.{legacy_key}), "
                    f"lambda _ss: {per_scope})), 0)")
    return (f"""SELECT coalesce(sum(list_sum(list_transform(j.{rkey}, lambda _rs: {per_resource}))), 0)
FROM (SELECT json_transform(raw, $structure) AS j FROM {src} WHERE contains(raw, $key) AND json_valid(raw))""",
            {"structure": structure, "key": f'"{rkey}"'})
