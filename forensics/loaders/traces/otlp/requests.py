"""Loading parsed OTLP requests: the step shared by ``otlp_json`` and ``otlp_proto``.

Both loaders produce a relation of OTLP/JSON request texts (``line``, ``doc``, ``raw``) and
hand it to :func:`emit_requests`, which parses it once with DuckDB's ``json_transform`` and
emits spans, logs and metrics (each with its rejects) through the :class:`LoadContext`.
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from forensics._db import one, run, scalar
from forensics.loaders.core.context import LoadContext

from .metrics import METRIC_KINDS  # the metric types, each with its dataPoints
from .metrics import metrics_sql
from .sql import FILE_SHIFT, SIGNAL_KEYS, SIGNALS, guess_signal_sql, logs_sql, macros_sql, spans_sql

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


def _present(ctx: LoadContext, src: str, by: str = "true") -> list[tuple]:
    """Per group of ``by`` (one group by default): the group, then whether its requests in
    ``src`` hold (or their text suggests) each signal."""
    return run(ctx.con, f"SELECT {by}, " + ", ".join(
        f"coalesce(bool_or(contains(raw, '\"{key}\"') OR {guess_signal_sql('raw')} = '{signal}'), false)"
        for signal, key in SIGNAL_KEYS.items()) + f" FROM {src} GROUP BY 1")


def files_table(docs: list[list[str]]) -> pa.Table:
    """The (line, doc, raw) requests of a batch of files in doc mode (``docs[k]``: file k's
    request texts): ``doc`` holds the file's number (from 1) above :data:`~.sql.FILE_SHIFT`
    and the request's index in its file below."""
    doc = [(k << FILE_SHIFT) | j for k, texts in enumerate(docs, 1) for j in range(len(texts))]
    return pa.table({"line": pa.nulls(len(doc), pa.int64()), "doc": pa.array(doc, pa.int64()),
                     "raw": pa.array([t for texts in docs for t in texts], pa.large_string())})


def lines_table(lines: list[pa.Table]) -> pa.Table:
    """The (line, doc, raw) requests of a batch of files in line mode (``lines[k]``: file k's
    ``(line, raw)``): ``line`` holds the file's number (from 1) above :data:`~.sql.FILE_SHIFT`
    and the line number below."""
    parts = [pa.table({"line": pc.bit_wise_or(t.column("line").cast(pa.int64()), pa.scalar(k << FILE_SHIFT, pa.int64())),
                       "doc": pa.nulls(t.num_rows, pa.int64()), "raw": t.column("raw").cast(pa.large_string())})
             for k, t in enumerate(lines, 1)]
    return pa.concat_tables(parts) if parts else pa.table({"line": pa.array([], pa.int64()), "doc": pa.array([], pa.int64()),
                                                          "raw": pa.array([], pa.large_string())})


def emit_files(ctxs: list[LoadContext], src: str, *, doc_mode: bool = True) -> None:
    """:func:`emit_requests` for a batch of files: ``src`` is a :func:`files_table` (doc mode)
    or a :func:`lines_table`, registered on ``ctxs[0]``. Each signal is parsed and mapped once
    for every file (the cost of the mapping is mostly fixed: DuckDB binds a large query), and
    the rows and rejects of all the files emitted at once, each counted by its own context,
    with the positions they have when the file loads alone (lines; or records numbered within
    their file and a document-level reject at its document's index)."""
    lead = ctxs[0]
    mask = (1 << FILE_SHIFT) - 1
    if doc_mode:  # records: source_line is the file number; document-level rejects: offset holds it
        position = (f"CAST(NULL AS BIGINT) AS source_line, CASE WHEN s.source_line IS NULL THEN s.source_offset & {mask} "
                    "ELSE s.source_offset END AS source_offset",
                    f"coalesce(s.source_line, s.source_offset >> {FILE_SHIFT})")
    else:
        position = f"s.source_line & {mask} AS source_line", f"s.source_line >> {FILE_SHIFT}"
    by = f"{'doc' if doc_mode else 'line'} >> {FILE_SHIFT}"
    present = {k: has for k, *has in _present(lead, src, by)}
    for i, (signal, build) in enumerate(_SIGNAL_SQL.items()):
        files = [k for k, has in present.items() if has[i]]
        if not files:
            continue
        lead.emit(signal, f"SELECT s.* REPLACE ({position[0]}), {position[1]} AS _file "
                          f"FROM ({build(src, doc_mode=doc_mode)}) s", files=ctxs)
        for k in files:  # the signal's count, 0 included, as a file alone has it
            ctxs[k - 1].loaded[signal] += 0


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
    present = _present(ctx, src)
    for (signal, build), has in zip(_SIGNAL_SQL.items(), present[0][1:] if present else ()):
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
