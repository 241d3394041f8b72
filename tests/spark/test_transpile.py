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


def test_hex_digits_become_conv_and_match_duckdb():
    """Reading id digits as a number (sampling and tie-break keys) gives the same value on both."""
    import duckdb

    from forensics.analysis._tree import id_order_sql

    sql = f"SELECT {id_order_sql('x')} FROM t"
    assert "CAST(CONV(LEFT(x, 15), 16, 10) AS BIGINT)" in spark_sql(sql)
    got = duckdb.sql(f"SELECT {id_order_sql('x')} FROM (VALUES ('00f0a1b2c3d4e5f6a7b8')) t(x)").fetchall()[0][0]
    assert got == int("00f0a1b2c3d4e5f", 16)
    assert duckdb.sql(f"SELECT {id_order_sql('x')} FROM (VALUES ('not-hex')) t(x)").fetchall()[0][0] is None


def test_paired_unnest_becomes_one_generator():
    out = spark_sql("SELECT * FROM t JOIN (SELECT unnest(?::BIGINT[]) AS gid, unnest(?::DOUBLE[]) AS split_ms) k "
                    "USING (gid)", [[1, 2], [0.5, 1.5]])
    assert "INLINE(ARRAYS_ZIP(" in out and "AS (gid, split_ms)" in out and "EXPLODE" not in out
    single = spark_sql("SELECT unnest(?::BIGINT[]) AS gid", [[1]])
    assert "EXPLODE" in single and "INLINE" not in single


def test_division_is_double_and_multi_argument_hash_sees_nulls():
    out = spark_sql("SELECT sum(x) / 1000.0, a / b, a // b FROM t")
    assert "CAST(SUM(x) AS DOUBLE) / CAST(1000.0 AS DOUBLE)" in out and "CAST(a AS DOUBLE) / CAST(b AS DOUBLE)" in out
    assert spark_sql("SELECT hash(a) FROM t") == "SELECT XXHASH64(a) FROM t"
