"""Translation of detector SQL from DuckDB to Spark SQL (sqlglot only; no JVM needed)."""
from __future__ import annotations

import pytest

pytest.importorskip("sqlglot", reason="needs sqlglot (pip install 'forensics[spark]')")

from forensics.engines._transpile import bind, spark_sql  # noqa: E402
from forensics.errors import QueryError  # noqa: E402

pytestmark = pytest.mark.spark


def test_parameters_become_escaped_literals_not_splices():
    hostile = "x'); DROP TABLE spans; --"
    out = spark_sql("SELECT * FROM spans WHERE service = ? AND duration_ms > ?", [hostile, 5])
    assert "'x''); DROP TABLE spans; --'" in out or "'x\\'); DROP TABLE spans; --'" in out
    assert out.count("DROP TABLE") == 1 and "> 5" in out


def test_named_and_cast_placeholders():
    assert bind("SELECT $n::INT, ?::DOUBLE", None) == "SELECT $n::INT, ?::DOUBLE"
    assert bind("SELECT $n::INT AS a, $n + 1", {"n": 3}) == "SELECT 3::INT AS a, 3 + 1"
    assert bind("SELECT ?::DOUBLE, '?'", [2.5]) == "SELECT 2.5::DOUBLE, '?'"
    with pytest.raises(QueryError, match="no value for parameter"):
        bind("SELECT $x", {"y": 1})


def test_duckdb_functions_are_rewritten():
    out = spark_sql("SELECT hash(a, b), epoch_us(t), regexp_matches(x, '^get ', 'i'), "
                    "regexp_replace(x, '/([0-9]+)(/|$)', '/{id}\\2', 'g') FROM spans")
    assert "XXHASH64(a, b, a IS NULL, b IS NULL)" in out and "UNIX_MICROS(t)" in out
    assert "'(?i)^get '" in out and "'/{id}$2'" in out


def test_ordered_list_slice_and_named_window():
    out = spark_sql("SELECT list(trace_id ORDER BY is_error DESC, start_time)[1:5] FROM spans")
    assert "ARRAY_SORT" in out and "SLICE(" in out and "COLLECT_LIST" in out
    out = spark_sql("SELECT max(e) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
                    "FROM c WINDOW w AS (PARTITION BY k ORDER BY s)")
    assert "WINDOW" not in out and "PARTITION BY k" in out


def test_asof_join_becomes_a_range_join():
    out = spark_sql("SELECT g.*, v.version FROM g ASOF LEFT JOIN versions v "
                    "ON v.service = g.service AND g.time >= v.t")
    assert "ASOF" not in out and "LEAD(t) OVER (PARTITION BY service ORDER BY t" in out
    assert "LEFT JOIN" in out and "_asof_next" in out


def test_top_n_max_by_becomes_a_sorted_slice():
    out = spark_sql("SELECT max_by(trace_id, duration_ms, 5) FILTER (WHERE is_error) FROM spans")
    assert "MAX_BY" not in out and "SLICE(" in out and "FILTER(WHERE is_error)" in out


def test_quantile_disc_matches_duckdb_positions():
    """The Spark expression picks position max(1, ceil(n q)), which is what DuckDB returns."""
    import math

    import duckdb

    out = spark_sql("SELECT quantile_disc(x, 0.9) FROM t")
    assert "CEIL(SIZE(" in out and "ARRAY_SORT(COLLECT_LIST(x))" in out
    for n in range(1, 12):
        for q in (0.1, 0.5, 0.9, 0.95):
            got = duckdb.sql(f"SELECT quantile_disc(x, {q}) FROM range(1, {n + 1}) t(x)").fetchall()[0][0]
            assert got == max(1, math.ceil(n * q)), (n, q)
