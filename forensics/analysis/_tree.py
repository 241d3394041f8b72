"""SQL pieces shared by the trace-tree analyses (roots, clocks, walks down the tree).

What an operation is and whether a span failed are defined in :mod:`forensics.semantics`.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .._db import scalar
from ..detectors._common import temp_table

if TYPE_CHECKING:
    from ..case import Case

#: default bound on the depth of recursive walks over parent links (guards against cycles)
MAX_DEPTH = 64


def host_sql(s: str = "s") -> str:
    """The clock a span was timed with: ``host_name``, else its service."""
    return f"coalesce(nullif({s}.host_name, ''), {s}.service)"


def roots_sql(sp: str = "sp") -> str:
    """SELECT of the roots of relation ``sp`` (trace_id, span_id, parent_span_id, ...): spans
    without a parent, or whose parent is not in ``sp`` (never exported, or filtered out), so a
    broken trace is walked from each of its fragments."""
    return (f"SELECT r.* FROM {sp} r WHERE r.parent_span_id IS NULL OR NOT EXISTS "
            f"(SELECT 1 FROM {sp} p WHERE p.trace_id = r.trace_id AND p.span_id = r.parent_span_id)")


def id_order_sql(expr: str) -> str:
    """A BIGINT that orders lowercase-hex ids like the ids themselves (their first 15 hex
    digits), for tie-breaks that every engine resolves alike (NULL for a non-hex id)."""
    return f"TRY_CAST('0x' || left({expr}, 15) AS BIGINT)"


@contextmanager
def walk_down(case: "Case", nodes: str, *, keep: Sequence[str] = (), max_depth: int = MAX_DEPTH) -> Iterator[str]:
    """Every node of a forest reachable from a root within ``max_depth`` steps, with its root,
    depth and the sum of a value along its path from the root.

    ``nodes`` is a table of ``(sid, anc, val, *keep)``: a node key, its parent's key (NULL for
    a root), a number, and columns to carry along. A node whose parent is not a node, deeper
    than ``max_depth`` or on a loop is left out, as in a recursive walk down from the roots.
    Yields a parenthesised SELECT to use in ``FROM`` (valid inside the ``with`` block) with
    columns ``sid``, ``top`` (key of the root), ``depth`` (0 for a root), ``total`` (DOUBLE:
    sum of ``val`` over the node and its ancestors) and ``keep``.

    Level by level instead of a recursive query: level ``d + 1`` is one equi-join of the
    nodes with level ``d`` (which is the smaller side, so the cost of a level is about one
    scan of ``nodes``), so as many passes as the forest is deep, and plain SQL that runs on
    DuckDB and Spark alike.
    """
    extra = "".join(f", n.{c}" for c in keep)
    levels: list[str] = []
    with ExitStack() as held:
        level = held.enter_context(temp_table(case, f"""
SELECT n.sid, n.sid AS top, 0 AS depth, CAST(coalesce(n.val, 0) AS DOUBLE) AS total{extra}
FROM {nodes} n WHERE n.anc IS NULL"""))
        for depth in range(int(max_depth) + 1):
            if not scalar(case.con, f"SELECT count(*) FROM {level}"):
                break
            levels.append(level)
            if depth == int(max_depth):
                break
            level = held.enter_context(temp_table(case, f"""
SELECT n.sid, f.top, f.depth + 1 AS depth, f.total + coalesce(n.val, 0) AS total{extra}
FROM {nodes} n JOIN (SELECT sid, top, depth, total FROM {level}) f ON n.anc = f.sid"""))
        cols = ", ".join(("sid", "top", "depth", "total", *keep))
        yield "(" + " UNION ALL ".join(f"SELECT {cols} FROM {t}" for t in levels or [level]) + ")"
