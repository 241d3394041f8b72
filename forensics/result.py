"""Result of a query over a case: an Arrow table that converts to pandas, polars or Python."""
from __future__ import annotations

import html
from typing import Any

import pyarrow as pa


class Result:
    """Tabular result of :meth:`forensics.Case.sql`.

    Wraps a :class:`pyarrow.Table`; use :meth:`to_pandas`, :meth:`to_polars`, :meth:`to_arrow`,
    :meth:`rows` or :meth:`scalar`.

    >>> import forensics
    >>> case = forensics.open_case()
    >>> case.sql("select 1 + ? as answer", [41]).scalar()
    42
    """

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    @property
    def columns(self) -> list[str]:
        return list(self._table.column_names)

    def __len__(self) -> int:
        return self._table.num_rows

    def to_arrow(self) -> pa.Table:
        return self._table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)

    def to_pandas(self, **kwargs: Any):
        return self._table.to_pandas(**kwargs)

    df = to_pandas

    def to_polars(self):
        import polars as pl

        return pl.from_arrow(self._table)

    pl = to_polars

    def rows(self) -> list[tuple]:
        """All rows as tuples (Python values)."""
        cols = [c.to_pylist() for c in self._table.columns]
        return list(zip(*cols)) if cols else []

    fetchall = rows

    def dicts(self) -> list[dict[str, Any]]:
        return self._table.to_pylist()

    def scalar(self) -> Any:
        """The single value of a 1x1 result (None if empty)."""
        if self._table.num_rows == 0 or self._table.num_columns == 0:
            return None
        return self._table.column(0)[0].as_py()

    def __repr__(self) -> str:
        return f"<Result {self._table.num_rows} rows x {self._table.num_columns} cols>\n{self._table.slice(0, 20).to_pandas().to_string()}"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = []
        for row in self._table.slice(0, 50).to_pylist():
            body.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>")
        more = f"<p>{self._table.num_rows} rows</p>" if self._table.num_rows > 50 else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"
