"""How findings relate through the data: the traces each finding's place was part of, how many
traces two findings share, and how deep each service sits in the call graph.

A finding's *place* is where it happens: its service and operation (a caller's finding without an
operation of its own, e.g. slow calls from ``api-gateway`` to ``catalog-service GET /search``, is
placed at its target). Its traces are the traces with a span at that place inside the finding's
window. All of it is SQL over ``spans`` with the findings' places as a registered Arrow table.
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Collection, Iterator

import networkx as nx
import pandas as pd
import pyarrow as pa

from ..detectors._common import temp_table
from ..semantics import is_error_sql, span_operation_sql

if TYPE_CHECKING:
    from ..case import Case

_registered = itertools.count()

#: the spans of the places' services (``{places}``) with what every step needs: the span's
#: operation is normalized once per span, however many places share its service
_PLACE_SPANS_SQL = f"""
SELECT s.service, {span_operation_sql('s')} AS operation, s.trace_id, s.start_time, s.duration_ms,
       {is_error_sql('s')} AS err
FROM spans s WHERE s.service IN (SELECT DISTINCT service FROM {{places}})
"""

#: ``placed``: each place (fid, lo, hi) with its spans (all of the service's without an operation)
_PLACED_SQL = """
WITH placed AS (
  SELECT p.fid, p.lo, p.hi, s.* FROM {places} p JOIN {spans} s ON s.service = p.service AND s.operation = p.operation
  UNION ALL
  SELECT p.fid, p.lo, p.hi, s.* FROM {places} p JOIN {spans} s ON s.service = p.service WHERE p.operation IS NULL
)
"""

#: (finding, trace) for every trace with a span at the finding's place inside its window
_TRACES_SQL = "SELECT DISTINCT fid, trace_id FROM placed WHERE start_time >= lo AND start_time <= hi"

_OVERLAP_SQL = """
SELECT a.fid AS a, b.fid AS b, count(*) AS shared
FROM {traces} a JOIN {traces} b ON a.trace_id = b.trace_id AND a.fid < b.fid
GROUP BY ALL
"""

#: cross-service calls: parent span's service -> child span's service
_EDGES_SQL = """
SELECT DISTINCT p.service AS caller, c.service AS callee
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
WHERE p.service IS DISTINCT FROM c.service AND p.service IS NOT NULL AND c.service IS NOT NULL
"""
_ROOT_SERVICES_SQL = "SELECT DISTINCT service FROM spans WHERE parent_span_id IS NULL AND service IS NOT NULL"


def place_of(finding: dict[str, Any], services: Collection[str]) -> tuple[str | None, str | None]:
    """``(service, operation)`` where a finding happens (see the module docstring): a caller's
    finding without an operation of its own is placed at its target when the target is one of the
    case's ``services`` (instrumented); at an uninstrumented target (a database, a third party),
    at the caller's calls to it (the caller's spans whose operation is the target operation)."""
    service, operation = finding.get("service"), finding.get("operation")
    target, target_op = finding.get("target"), finding.get("target_operation")
    if isinstance(operation, str) or not isinstance(target, str):
        return service, operation if isinstance(operation, str) else None
    target_op = target_op if isinstance(target_op, str) else None
    return (target, target_op) if target in services or not isinstance(service, str) else (service, target_op)


def places(findings: pd.DataFrame, services: Collection[str]) -> pd.DataFrame:
    """Per finding (``fid`` = its position): ``service``, ``operation`` and window ``lo``..``hi``
    of its place (:func:`place_of`); a finding without a window covers all time."""
    where = [place_of(r, services) for r in findings.to_dict("records")]
    out = pd.DataFrame({"fid": range(len(findings)), "service": [w[0] for w in where],
                        "operation": [w[1] for w in where]}, columns=["fid", "service", "operation"])
    lo = pd.to_datetime(findings["start_time"], utc=True)
    hi = pd.to_datetime(findings["end_time"], utc=True).fillna(lo)
    out["lo"] = lo.fillna(pd.Timestamp("1970-01-01", tz="UTC"))
    out["hi"] = hi.fillna(pd.Timestamp("2262-01-01", tz="UTC"))
    return out


@contextmanager
def registered(case: "Case", frame: pd.DataFrame) -> Iterator[str]:
    """``frame`` as a view of the case's connection, valid inside the block."""
    name = f"_incident_places_{next(_registered)}"
    case.con.register(name, pa.Table.from_pandas(frame, preserve_index=False))
    try:
        yield name
    finally:
        case.con.unregister(name)


@contextmanager
def place_spans(case: "Case", places: str) -> Iterator[str]:
    """A temp table of the spans of the services of the registered table ``places`` (see
    :func:`places`): service, operation, trace_id, start_time, duration_ms, err (failed), valid
    inside the block."""
    with temp_table(case, _PLACE_SPANS_SQL.replace("{places}", places)) as t:
        yield t


def placed_sql(places: str, spans: str) -> str:
    """``WITH placed AS (...)``: every place (``fid``, ``lo``, ``hi``) of ``places`` joined to its
    spans from ``spans`` (:func:`place_spans`); follow it with a SELECT over ``placed``."""
    return _PLACED_SQL.format(places=places, spans=spans)


@contextmanager
def finding_traces(case: "Case", places: str, spans: str) -> Iterator[str]:
    """A temp table ``(fid, trace_id)`` of the traces of each place of the registered table
    ``places`` (see :func:`places`) inside its window, from its spans ``spans`` (:func:`place_spans`),
    valid inside the block."""
    with temp_table(case, placed_sql(places, spans) + _TRACES_SQL) as t:
        yield t


def overlaps(case: "Case", traces: str) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Traces per finding and traces shared by each pair of findings (``a < b``)."""
    sizes = {int(f): int(n) for f, n in case.sql(f"SELECT fid, count(*) FROM {traces} GROUP BY fid").rows()}
    shared = {(int(a), int(b)): int(n) for a, b, n in case.sql(_OVERLAP_SQL.format(traces=traces)).rows()}
    return sizes, shared


def union_size(case: "Case", traces: str, fids: list[int]) -> int:
    """Distinct traces of the findings ``fids`` together."""
    return int(case.sql(f"SELECT count(DISTINCT trace_id) FROM {traces} WHERE list_contains(?, fid)",
                        [fids]).scalar() or 0)


def service_depths(case: "Case") -> dict[str, int]:
    """Calls between a request's entry and each service (0 for services with root spans), along
    the shortest path of the cross-service call graph; services never called from a root get
    the largest depth + 1."""
    g = nx.DiGraph()
    g.add_edges_from(case.sql(_EDGES_SQL).rows())
    roots = [r[0] for r in case.sql(_ROOT_SERVICES_SQL).rows()]
    g.add_nodes_from(roots)
    depth: dict[str, int] = {}
    if roots:
        for node, d in nx.multi_source_dijkstra_path_length(g, set(roots)).items():
            depth[node] = int(d)
    top = max(depth.values(), default=0) + 1
    for node in g.nodes:
        depth.setdefault(node, top)
    return depth


def span_services(case: "Case") -> set[str]:
    """The services that have spans (instrumented)."""
    return {r[0] for r in case.sql("SELECT DISTINCT service FROM spans WHERE service IS NOT NULL").rows()}


def deepest_service(row: Any) -> str | None:
    """The service a finding points at: its target when it names one, else its service."""
    return row["target"] if isinstance(row.get("target"), str) else row.get("service")
