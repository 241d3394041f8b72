"""Run the registered detectors on Apache Spark over an exported Parquet lake.

The detectors are defined once, as DuckDB SQL issued through :mod:`forensics._db` on
``case.con`` plus Python statistics over the aggregated rows. :class:`SparkCase` offers the
part of :class:`forensics.Case` they use, and its ``con`` (:class:`SparkConnection`) answers
the two calls :mod:`forensics._db` makes (``sql(query, params=...)`` and
``execute(query, params).fetchall()``) by translating each query with sqlglot
(:mod:`forensics.engines._transpile`) and running it with ``spark.sql``. Results come back as
Arrow, so the Python half of every detector runs unchanged. Every registered detector runs here
with the same findings as on DuckDB (``tests/spark``; what that takes: docs/spark.md).

>>> from forensics.engines.spark import detect_on_spark      # doctest: +SKIP
>>> detect_on_spark("lake/", only=["n_plus_one"])              # doctest: +SKIP
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import pyarrow as pa
from sqlglot import exp

from .._duplicates import KEEP_ORDER, SPAN_IDENTITY
from ..errors import QueryError, UsageError
from ..findings import Findings
from ..result import Result
from ._transpile import to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: tables of a lake: directory (hive-partitioned) or single Parquet file
LAKE_TABLES = {"spans": "spans", "logs": "logs", "metrics": "metrics", "events": "events",
               "rejects": "rejects.parquet", "files": "files.parquet"}

#: Spark settings that make Spark SQL follow DuckDB's semantics where the detectors rely on them
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",          # wrap-around sum(hash) and NULL (not errors) for bad casts
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def local_session(master: str = "local[2]", **conf: str) -> "SparkSession":
    """A local SparkSession configured for the detectors (see :data:`SPARK_CONF`)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("forensics")
    for key, value in {**SPARK_CONF, "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "4",
                       **conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class _Rows:
    """What ``con.execute(...)`` returns: rows already collected."""

    def __init__(self, table: pa.Table) -> None:
        self._rows = Result(table).rows()

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


class _Relation:
    """What ``con.sql(...)`` returns for a query: a DataFrame converted to Arrow on demand."""

    def __init__(self, df: "DataFrame") -> None:
        self._df = df

    def to_arrow_table(self) -> pa.Table:
        return self._df.toArrow()

    arrow = to_arrow_table


class SparkConnection:
    """The subset of ``duckdb.DuckDBPyConnection`` that :mod:`forensics._db` uses, on Spark.

    ``CREATE TEMP TABLE name AS SELECT ...`` materializes the select (``localCheckpoint``) as a
    temporary view; ``DROP TABLE [IF EXISTS] name`` drops it; ``duckdb_tables()`` lists the
    temporary views.
    """

    def __init__(self, spark: "SparkSession") -> None:
        self.spark = spark
        self._temp: dict[str, "DataFrame"] = {}

    # -- the two entry points of forensics._db ------------------------------------------------
    def sql(self, query: str, params: Sequence[Any] | dict | None = None) -> _Relation | None:
        df = self._run(query, params)
        return None if df is None else _Relation(df)

    def execute(self, query: str, params: Sequence[Any] | dict | None = None) -> _Rows:
        df = self._run(query, params)
        return _Rows(pa.table({}) if df is None else df.toArrow())

    # -- translation ------------------------------------------------------------------------
    def _run(self, query: str, params: Sequence[Any] | dict | None) -> "DataFrame | None":
        tree = to_spark(query, params or None)
        if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() in ("TABLE", "VIEW"):
            return self._create(tree)
        if isinstance(tree, exp.Drop):
            for table in tree.args.get("tables") or [tree.this]:
                self._drop(table.name, missing_ok=bool(tree.args.get("exists")))
            return None
        if isinstance(tree, exp.Set) or (isinstance(tree, exp.Command) and tree.name.upper() == "SET"):
            return None  # DuckDB session settings (threads, progress bar...) have no Spark meaning
        tree = tree.transform(self._catalog_functions)
        text = tree.sql("spark")
        try:
            return self.spark.sql(text)
        except Exception as exc:  # pyspark raises AnalysisException, ParseException, Py4JError...
            raise QueryError(f"Spark query failed: {exc}\n--- Spark SQL ---\n{text}") from exc

    def _create(self, tree: exp.Create) -> None:
        name = tree.this.name
        select = tree.expression
        if select is None:
            raise QueryError(f"CREATE {name} without AS SELECT is not supported on Spark")
        text = select.transform(self._catalog_functions).sql("spark")
        try:
            df = self.spark.sql(text)
            if (tree.args.get("kind") or "").upper() == "TABLE":
                df = _fresh_columns(df.localCheckpoint())  # a TEMP TABLE is computed once, like DuckDB's
        except Exception as exc:
            raise QueryError(f"Spark query failed: {exc}\n--- Spark SQL ---\n{text}") from exc
        df.createOrReplaceTempView(name)
        self._temp[name] = df
        return None

    def _drop(self, name: str, *, missing_ok: bool) -> None:
        df = self._temp.pop(name, None)
        if df is None and not missing_ok:
            raise QueryError(f"no temporary table {name!r}")
        self.spark.catalog.dropTempView(name)

    def _catalog_functions(self, node: exp.Expression) -> exp.Expression:
        """``duckdb_tables()`` in FROM: the temporary views (columns table_name, temporary)."""
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Anonymous) \
                and node.this.name.lower() == "duckdb_tables":
            names = sorted(self._temp) or [None]
            rows = exp.values([(n, True) for n in names], alias="duckdb_tables",
                              columns=["table_name", "temporary"])
            if names == [None]:
                return exp.select("CAST(NULL AS STRING) AS table_name", "false AS temporary").subquery("duckdb_tables")
            return rows
        return node

    def register(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable as ``name`` (a temporary view)."""
        df = self.spark.createDataFrame(table)
        df.createOrReplaceTempView(name)
        self._temp[name] = df

    def unregister(self, name: str) -> None:
        self._drop(name, missing_ok=True)

    def close(self) -> None:
        for name in list(self._temp):
            self._drop(name, missing_ok=True)


class SparkCase:
    """A case over a Parquet lake written by :func:`forensics.export`, queried with Spark.

    Offers what the detectors use of :class:`forensics.Case`: ``con``, :meth:`sql`,
    :meth:`execute`, :meth:`tables` and :meth:`table`. Queries are DuckDB SQL, translated.

    Parameters
    ----------
    lake_dir:
        The lake directory, local or any URI Spark reads (``s3a://bucket/case/``,
        ``abfss://...``, ``gs://...``).
    spark:
        The SparkSession to use (default: :func:`local_session`).
    """

    def __init__(self, lake_dir: str | os.PathLike, *, spark: "SparkSession | None" = None) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        self.spark = spark or local_session()
        self.lake = str(lake_dir)
        self.con = SparkConnection(self.spark)
        self._views: dict[str, "DataFrame"] = {}
        self._unique = False
        local = "://" not in self.lake
        if local and not Path(self.lake).is_dir():
            raise UsageError(f"{self.lake}: not a lake directory (write one with `forensics export CASE DIR`)")
        for table, rel in LAKE_TABLES.items():
            path = self.lake.rstrip("/") + "/" + rel
            if local and not Path(path).exists():  # a table the case held no rows of
                df = self.spark.createDataFrame([], schema=from_arrow_schema(_empty(table).schema))
            else:
                # recursiveFileLookup: the files hold the original service column; the
                # directory names are sanitized partition labels and must not override it
                df = self.spark.read.option("recursiveFileLookup", "true").parquet(path)
            df.createOrReplaceTempView(table)
            self._views[table] = df

    def sql(self, query: str, params: Sequence[Any] | dict | None = None) -> Result:
        """Run DuckDB-dialect SQL (translated to Spark SQL) with bind parameters."""
        rel = self.con.sql(query, params)
        return Result(pa.table({}) if rel is None else rel.to_arrow_table())

    def execute(self, query: str, params: Sequence[Any] | dict | None = None) -> None:
        """Run a statement for its effect (CREATE TEMP TABLE/VIEW ... AS, DROP TABLE)."""
        self.con.execute(query, params)

    def tables(self) -> dict[str, int]:
        """Row count of every canonical table of the lake."""
        return {t: df.count() for t, df in self._views.items()}

    def table(self, name: str) -> Result:
        if name not in self._views:
            raise UsageError(f"no table {name!r}; tables: {', '.join(self._views)}")
        return Result(self._views[name].toArrow())

    @contextmanager
    def unique_spans(self) -> Iterator[int]:
        """Inside the ``with`` block the ``spans`` view holds each span once (the Spark side of
        :func:`forensics._duplicates.unique_spans`: same identity, same row kept); yields the
        number of repeated rows hidden."""
        from pyspark.sql import functions as F

        raw = self._views["spans"]
        if self._unique or not raw.groupBy(F.xxhash64(*SPAN_IDENTITY)).count().filter("count > 1").limit(1).count():
            yield 0
            return
        raw.createOrReplaceTempView("_forensics_spans_raw")
        ident = ", ".join(f"s.{c}" for c in SPAN_IDENTITY)
        ranked = self.spark.sql(f"SELECT s.*, row_number() OVER (PARTITION BY {ident} ORDER BY {KEEP_ORDER}) AS _k "
                                "FROM _forensics_spans_raw s")
        unique = _fresh_columns(ranked.filter("_k = 1").drop("_k").localCheckpoint())
        self.spark.catalog.dropTempView("_forensics_spans_raw")
        hidden = raw.count() - unique.count()
        unique.createOrReplaceTempView("spans")
        self._unique = True
        try:
            yield hidden
        finally:
            self._unique = False
            raw.createOrReplaceTempView("spans")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "SparkCase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SparkCase {self.lake}>"


def _fresh_columns(df: "DataFrame") -> "DataFrame":
    """``df`` with new attribute ids for its columns. A checkpointed table keeps the ids of the
    plan it was computed from, so a table derived from another one by a projection shares
    them, and Spark then fails to checkpoint their UNION ALL (``key not found: col#id``), the
    step every doubling pass of the trace walks takes."""
    from pyspark.sql import functions as F

    return df.select(*[F.col(f"`{c}`").alias(c) for c in df.columns])


def _empty(table: str) -> pa.Table:
    """An empty Arrow table with the canonical columns of ``table`` (from forensics.schema)."""
    from ..case import Case

    with Case() as case:
        return case.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow()


def detect_on_spark(lake_dir: str | os.PathLike, *, spark: "SparkSession | None" = None,
                    only: list[str] | str | None = None, explain: bool = False,
                    options: dict[str, dict[str, Any]] | None = None,
                    option_origins: dict[str, dict[str, str]] | None = None) -> Findings:
    """Run the registered detectors (or those in ``only``) on Spark over a Parquet lake.

    Same definitions, thresholds and findings as :func:`forensics.detect` on the case the lake
    was exported from. ``spark`` defaults to :func:`local_session` (``local[2]``); pass a
    session built with ``SparkSession.builder.remote(...)`` or ``.master(...)`` to use a
    cluster (see docs/spark.md).
    """
    from ..detectors import detect

    with SparkCase(lake_dir, spark=spark) as case:
        return detect(case, only=only, explain=explain, options=options,  # type: ignore[arg-type]
                      option_origins=option_origins)


__all__ = ["SPARK_CONF", "SparkCase", "SparkConnection", "detect_on_spark", "local_session"]
