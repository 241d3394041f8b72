"""MAP columns staged through Parquet (forensics.loaders.core.arrow_spans.Staged) store exactly what
the Arrow import stores: same rows, same order, NULL and empty maps kept apart, and no temporary
file left behind."""
from __future__ import annotations

import gc
import glob
import os
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import forensics
from forensics.loaders.core import arrow_spans as _arrow_spans
from forensics.loaders.core.arrow_spans import Staged

from ._jaeger_zipkin_util import DATA

MAP = pa.map_(pa.string(), pa.string())


def _maps(n: int, seed: int) -> pa.Array:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(rng.integers(0, 6))
        if k == 5:
            rows.append(None)
        else:
            rows.append([(f"k{j}-é{i % 3}", None if j == 2 else f"v{i}-{j}\n\"") for j in range(k)])
    return pa.array(rows, MAP)


def _table(n: int) -> pa.Table:
    """``n`` rows in record batches of uneven sizes (DuckDB scans them in parallel)."""
    whole = pa.table({"i": np.arange(n), "attributes": _maps(n, 1), "name": [f"op{i % 7}" for i in range(n)],
                      "other": _maps(n, 2)})
    cuts = [0, 7, n // 3, n // 3 + 1, n]
    return pa.Table.from_batches([b for a, z in zip(cuts[:-1], cuts[1:]) for b in whole.slice(a, z - a).to_batches()])


def _leftover() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "forensics-maps-*"))


def test_staged_maps_come_back_row_for_row(monkeypatch, tmp_path: Path) -> None:
    # a temporary directory of its own: a load on another test worker stages files meanwhile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = set(_leftover())
    assert before == set()
    table = _table(5000)
    staged = Staged.of(table)
    assert staged.maps == ("attributes", "other") and staged.table.column_names == ["i", "name"]
    assert staged.file is not None and os.path.exists(staged.file.path)
    con = duckdb.connect()
    got = staged.relation(con).order("i").to_arrow_table()
    direct = con.from_arrow(table).order("i").to_arrow_table()
    assert got.select(table.column_names).to_pylist() == direct.to_pylist()
    # positional: the unordered scan pairs each row with its own maps
    pairs = staged.relation(con).project("i, attributes").to_arrow_table().to_pylist()
    want = {r["i"]: r["attributes"] for r in direct.to_pylist()}
    assert all(want[r["i"]] == r["attributes"] for r in pairs) and len(pairs) == 5000
    path = staged.file.path
    again = staged.with_table(staged.table.slice(0, 5000))
    del staged
    gc.collect()
    assert os.path.exists(path)  # still used by the copy
    again.remove()
    assert not os.path.exists(path)
    kept = Staged.of(table)
    path = kept.file.path
    del kept
    gc.collect()
    assert not os.path.exists(path) and set(_leftover()) == before


def test_small_tables_and_an_unwritable_temporary_directory_go_through_arrow(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # see above: no other test's files
    assert Staged.of(_table(_arrow_spans.STAGE_MIN_ROWS - 1)).file is None
    assert Staged.of(pa.table({"x": np.arange(5000)})).file is None  # no MAP column

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_arrow_spans.pq, "write_table", full)
    before = set(_leftover())
    assert before == set()
    staged = Staged.of(_table(5000))
    assert staged.file is None and staged.maps == () and staged.table.num_columns == 4
    assert set(_leftover()) == before


_FILES = sorted(p for d in ("jaeger", "zipkin", "otlp") for p in (DATA / d).iterdir()
                if p.is_file() and not p.name.endswith(".md"))


def _spans(path: Path) -> list[dict]:
    case = forensics.open_case()
    forensics.load(case, path, progress=False)
    return case.sql("SELECT * FROM spans ORDER BY source_line, source_offset, trace_id, span_id").to_arrow().to_pylist()


@pytest.mark.parametrize("path", _FILES, ids=[p.name for p in _FILES])
def test_test_files_store_the_same_spans_with_maps_staged_or_not(path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_arrow_spans, "STAGE_MIN_ROWS", 1)
    staged = _spans(path)
    monkeypatch.setattr(_arrow_spans, "STAGE_MIN_ROWS", 1 << 62)
    assert staged == _spans(path)


def test_resource_columns_are_copied_into_each_span_row_as_a_left_join_would() -> None:
    resources = pa.table({"rid": pa.array([7, 3], pa.int64()),
                          "resource_attributes": pa.array([[("service.name", "a"), ("k", "1")], []], MAP),
                          "service": pa.array(["a", "b"])})
    spans = pa.table({"span_id": ["s0", "s1", "s2", "s3", "s4"],
                      "rid": pa.array([3, 7, -1, None, 99], pa.int64()),
                      "host_name": ["h0", "h1", "h2", "h3", "h4"]})
    out = _arrow_spans.with_resources(spans, resources)
    assert out.column_names == ["span_id", "host_name", "resource_attributes", "service"]
    assert out.column("service").to_pylist() == ["b", "a", None, None, None]
    assert out.column("resource_attributes").to_pylist() == [[], [("service.name", "a"), ("k", "1")], None, None, None]
    # a column the spans have already is theirs, not the resource's
    both = _arrow_spans.with_resources(spans.append_column("service", pa.array(["own"] * 5)), resources)
    assert both.column("service").to_pylist() == ["own"] * 5
