"""Selections of spans or traces: a SQL predicate with bind parameters, or a list of trace ids.

A selection is one of

* ``"status = 'error'"`` — a boolean SQL expression over the columns of ``spans``;
* ``("duration_ms > ? AND service = ?", [1000, "catalog-service"])`` — the same with positional
  bind parameters (telemetry values always travel as parameters, never inside the SQL text);
* ``["4bf92f3577b34da6a3ce929d0e0e4736", ...]`` — a list (or set) of trace ids.

Predicates are user-written SQL: they run with the privileges of the case connection, exactly
like :meth:`forensics.Case.sql`, so only pass predicates you would run there yourself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

from ..errors import UsageError

Selection = Union[str, tuple, list, set, frozenset]


@dataclass(frozen=True)
class Predicate:
    """A boolean SQL expression over ``spans`` columns (no table alias) and its parameters."""

    sql: str
    params: list[Any] = field(default_factory=list)

    def flag(self) -> str:
        """The predicate as a non-NULL boolean expression (NULL counts as not selected)."""
        return f"coalesce(({self.sql}), false)"


def as_predicate(selection: Selection, *, name: str = "selection") -> Predicate:
    """Normalize a selection (see module docs) into a :class:`Predicate`.

    Raises
    ------
    UsageError
        When ``selection`` is none of the accepted shapes (the message names ``name``).
    """
    if isinstance(selection, Predicate):
        return selection
    if isinstance(selection, str):
        if not selection.strip():
            raise UsageError(f"{name}: empty SQL predicate; pass e.g. \"duration_ms > 1000\"")
        return Predicate(selection)
    if (isinstance(selection, tuple) and len(selection) == 2 and isinstance(selection[0], str)
            and isinstance(selection[1], (list, tuple)) and not _looks_like_ids(selection)):
        return Predicate(selection[0], list(selection[1]))
    if isinstance(selection, (list, tuple, set, frozenset)):
        ids = list(selection)
        bad = [t for t in ids if not isinstance(t, str)]
        if bad:
            raise UsageError(f"{name}: expected trace ids (hex strings) or (sql, [params]), found {bad[0]!r}")
        if not ids:
            return Predicate("false")
        return Predicate("trace_id IN (SELECT unnest(?::VARCHAR[]))", [[t.strip().lower() for t in ids]])
    raise UsageError(f"{name}: expected a SQL predicate, (sql, [params]) or a list of trace ids; "
                     f"found {type(selection).__name__}")


def _looks_like_ids(selection: Sequence[Any]) -> bool:
    return all(isinstance(t, str) for t in selection)


def flagged_spans_sql(selection: Predicate, baseline: Predicate | None,
                      columns: str = "*") -> tuple[str, list[Any]]:
    """``(sql, params)``: the spans in the selection or the baseline, with ``columns`` (SQL
    select list over ``spans``) and boolean columns ``_sel`` and ``_base``.

    Without a baseline, ``_base`` is ``NOT _sel`` (everything outside the selection); with one,
    a span may be in both.
    """
    if baseline is None:
        return (f"SELECT *, NOT _sel AS _base FROM (SELECT {columns}, {selection.flag()} AS _sel FROM spans)",
                list(selection.params))
    return (f"SELECT * FROM (SELECT {columns}, {selection.flag()} AS _sel, {baseline.flag()} AS _base "
            "FROM spans) WHERE _sel OR _base", selection.params + baseline.params)
