"""BubbleUp-style comparison: which attribute values are over-represented in a selection.

For every promoted column (host, version, route, status...) and every span attribute and
resource attribute key, count how often each value occurs among the selected spans and among
the baseline spans, and rank values by the difference of their shares. "62% of the slow spans
ran on ``host-7`` against 4% of the others" is the kind of answer this gives.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from .._db import one, query_arrow
from ..errors import UsageError
from ..loaders.core.semconv import PROMOTED
from ..result import Result
from ._select import Selection, as_predicate, flagged_spans_sql

if TYPE_CHECKING:
    from ..case import Case

#: promoted columns compared by default (low-cardinality descriptors; ids and raw URLs left out)
DIMENSIONS = (
    "service", "service_version", "name", "kind", "status", "status_message", "host_name",
    "http_route", "http_method", "http_status_code", "url_template", "peer_service",
    "server_address", "server_port", "rpc_system", "rpc_service", "rpc_method", "db_system",
    "db_operation", "messaging_system", "messaging_destination", "messaging_operation", "scope_name",
)
#: attribute keys already compared as promoted columns
_PROMOTED_KEYS = sorted({k for keys in PROMOTED.values() for k in keys}
                        | {"service.name", "service.version", "host.name"})
_DUPLICATE_DIMS = [f"{prefix}.{k}" for prefix in ("attributes", "resource") for k in _PROMOTED_KEYS]

COLUMNS = ("dimension", "value", "selection_pct", "baseline_pct", "diff_pct", "lift",
           "selection_count", "baseline_count")


def compare(case: "Case", selection: Selection, baseline: Selection | None = None, *,
            columns: Sequence[str] | None = None, top: int | None = 20,
            max_spans: int | None = 1_000_000) -> Result:
    """Value frequencies of every span dimension inside ``selection`` vs ``baseline``, ranked.

    Parameters
    ----------
    case:
        The case.
    selection, baseline:
        A SQL predicate over ``spans`` columns (``"status = 'error'"``), a predicate with bind
        parameters (``("duration_ms > ?", [1000])``), or a list of trace ids (all their spans).
        The baseline defaults to every span outside the selection. Predicates are user SQL and
        run with the case's privileges; values belong in the parameters, never in the text.
    columns:
        Restrict to these dimensions: promoted column names (see :data:`DIMENSIONS`),
        ``attributes.<key>`` or ``resource.<key>``. Default: all of them.
    top:
        Keep the ``top`` values with the largest absolute difference (None keeps all).
    max_spans:
        When the selection or the baseline holds more spans than this, a deterministic sample
        of about ``max_spans`` of them (by span id hash) is compared: shares are estimates and
        the counts are sample counts. None compares everything.

    Returns
    -------
    Result
        Columns ``dimension``, ``value``, ``selection_pct`` and ``baseline_pct`` (share of the
        selected / baseline spans carrying that value, in percent), ``diff_pct``
        (selection - baseline, percentage points), ``lift`` (selection_pct / baseline_pct,
        ``inf`` when the value never occurs in the baseline), ``selection_count``,
        ``baseline_count`` (spans). Sorted by ``|diff_pct|``, largest first. Spans with no
        value for a dimension are not counted as a value.

    >>> import forensics
    >>> from forensics.synth.builder import SpanBuilder
    >>> from datetime import datetime, timezone
    >>> b = SpanBuilder(datetime(2026, 2, 18, tzinfo=timezone.utc))
    >>> for i in range(10):
    ...     _ = b.span("api", "GET /x", kind="server", duration_ms=900 if i < 3 else 50,
    ...                host="h1" if i < 3 else "h2")
    >>> case = forensics.open_case(); _ = b.insert(case)
    >>> r = compare(case, ("duration_ms > ?", [500]), columns=["host_name"]).dicts()[0]
    >>> r["value"], r["selection_pct"], r["baseline_pct"]
    ('h1', 100.0, 0.0)
    """
    sel = as_predicate(selection, name="selection")
    base = None if baseline is None else as_predicate(baseline, name="baseline")
    if top is not None and (not isinstance(top, int) or top < 1):
        raise UsageError(f"top must be a positive integer or None, got {top!r}")
    dims = list(DIMENSIONS)
    wanted: list[str] | None = None
    if columns is not None:
        wanted = [str(c) for c in columns]
        unknown = [c for c in wanted if c not in DIMENSIONS and not c.startswith(("attributes.", "resource."))]
        if unknown:
            raise UsageError(f"compare: unknown dimension(s) {unknown}; use promoted columns "
                             f"{list(DIMENSIONS)} or 'attributes.<key>' / 'resource.<key>'")
        dims = [c for c in DIMENSIONS if c in wanted]
    flagged, params = flagged_spans_sql(sel, base, ", ".join(dims + ["span_id", "attributes", "resource_attributes"]))
    if max_spans is not None:
        n_sel, n_base = one(case.con, f"SELECT count(*) FILTER (WHERE _sel), count(*) FILTER (WHERE _base) "
                                      f"FROM ({flagged})", params) or (0, 0)
        strides = [max(1, math.ceil(n / max_spans)) for n in (n_sel, n_base)]
        if max(strides) > 1:
            flagged = (f"SELECT * FROM (SELECT * REPLACE (_sel AND hash(span_id) % ? = 0 AS _sel, "
                       f"_base AND hash(span_id) % ? = 0 AS _base) FROM ({flagged})) WHERE _sel OR _base")
            params = strides + params
    query, extra = value_shares_sql(flagged, dims, wanted=wanted)
    order = "ORDER BY abs(diff_pct) DESC, selection_count DESC, dimension, value"
    query += f"\n{order}\n" + ("" if top is None else f"LIMIT {int(top)}")
    params = params + extra
    return Result(query_arrow(case.con, query, params))


def value_shares_sql(flagged: str, dims: Sequence[str], *, wanted: Sequence[str] | None = None,
                     by: str | None = None, exclude: Sequence[str] = ()) -> tuple[str, list]:
    """``(sql, params)`` of the value-share table over ``flagged`` (a subquery with the columns
    ``dims``, ``attributes``, ``resource_attributes``, booleans ``_sel``/``_base`` and, when
    ``by`` is given, a grouping column of that name computed independently per group).

    ``params`` (for the ``?`` this SQL adds, after those of ``flagged``) hold the dimension
    filters; ``exclude`` names attribute dimensions (``attributes.<key>``) to leave out. Columns: [by,] the :data:`COLUMNS` of :func:`compare`; unordered.
    """
    pairs = [f"{{'d': '{d}', 'v': CAST({d} AS VARCHAR)}}" for d in dims]
    promoted = "[" + ", ".join(pairs) + "]" if pairs else "[]::STRUCT(d VARCHAR, v VARCHAR)[]"
    maps = ("list_transform(map_entries(attributes), lambda e: {'d': 'attributes.' || e.key, 'v': e.value}), "
            "list_transform(map_entries(resource_attributes), lambda e: {'d': 'resource.' || e.key, 'v': e.value})")
    keep = "" if wanted is None else "AND kv.d IN (SELECT unnest(?::VARCHAR[]))"
    g = f"{by}, " if by else ""
    sql = f"""
WITH f AS MATERIALIZED ({flagged}),
totals AS (SELECT {g}count(*) FILTER (WHERE _sel) AS n_sel, count(*) FILTER (WHERE _base) AS n_base
           FROM f {'GROUP BY ' + by if by else ''}),
kv AS (SELECT {g}_sel, _base, unnest(list_concat({promoted}, {maps})) AS kv FROM f),
counts AS (
  SELECT {g}kv.d AS dimension, kv.v AS value,
         count(*) FILTER (WHERE _sel) AS selection_count, count(*) FILTER (WHERE _base) AS baseline_count
  FROM kv WHERE kv.v IS NOT NULL AND kv.d NOT IN (SELECT unnest(?::VARCHAR[])) {keep} GROUP BY ALL
)
SELECT {'counts.' + by + ', ' if by else ''}dimension, value,
  100.0 * selection_count / nullif(n_sel, 0) AS selection_pct,
  100.0 * baseline_count / nullif(n_base, 0) AS baseline_pct,
  coalesce(selection_pct, 0) - coalesce(baseline_pct, 0) AS diff_pct,
  CASE WHEN baseline_count = 0 THEN 'inf'::DOUBLE ELSE selection_pct / baseline_pct END AS lift,
  selection_count, baseline_count
FROM counts {'JOIN totals USING (' + by + ')' if by else ', totals'}"""
    return sql, [_DUPLICATE_DIMS + list(exclude)] + ([] if wanted is None else [list(wanted)])
