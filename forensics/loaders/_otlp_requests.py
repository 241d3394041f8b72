"""Loading parsed OTLP requests: the step shared by ``otlp_json`` and ``otlp_proto``.

Both loaders produce a relation of OTLP/JSON request texts (``line``, ``doc``, ``raw``) and
hand it to :func:`emit_requests`, which parses it once with DuckDB's ``json_transform`` and
emits spans, logs and metrics (each with its rejects) through the :class:`LoadContext`.
"""
from __future__ import annotations

import pyarrow as pa

from .._db import one, run
from ._otlp_metrics import metrics_sql
from ._otlp_sql import SIGNAL_KEYS, guess_signal_sql, logs_sql, macros_sql, spans_sql
from .context import LoadContext

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


def emit_requests(ctx: LoadContext, src: str, *, doc_mode: bool) -> None:
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
    """
    present = one(ctx.con, "SELECT " + ", ".join(
        f"coalesce(bool_or(contains(raw, '\"{key}\"') OR {guess_signal_sql('raw')} = '{signal}'), false)"
        for signal, key in SIGNAL_KEYS.items()) + f" FROM {src}")
    for (signal, build), has in zip(_SIGNAL_SQL.items(), present or ()):
        if has:
            ctx.emit(signal, build(src, doc_mode=doc_mode))
