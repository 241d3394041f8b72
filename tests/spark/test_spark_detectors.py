"""The registered detectors give identical findings on Spark (over the exported lake) and DuckDB.

Each synth incident is loaded into a DuckDB case, exported with ``forensics.export`` and the
detectors in :data:`PORTABLE` run on both engines: same detectors, services, operations,
targets, versions and severities, and scores and evidence equal up to float rounding.
``bimodal_latency`` runs with a small sample cap (:data:`OPTIONS`) so that its deterministic
subsampling is exercised: both engines must pick the same spans.
"""
from __future__ import annotations

import math
from typing import Any

import pytest

from .conftest import incident

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: detectors that run on Spark with identical findings, per synth scenario that triggers them
PORTABLE = {
    "n_plus_one": ["n_plus_one", "error_origin", "version_regression"],
    "retry_storm": ["retry_storm"],
    "bimodal_latency": ["bimodal_latency", "critical_path"],
    "clock_skew": ["clock_skew"],
}
#: detector options per scenario (the same on both engines)
OPTIONS = {"bimodal_latency": {"bimodal_latency": {"min_samples": 50, "max_samples": 120}}}


def _same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a is None and b is None, path
        elif math.isnan(a):
            assert math.isnan(b), path
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-9), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module", params=sorted(PORTABLE))
def scenario(request, tmp_path_factory):
    case, lake = incident(tmp_path_factory, request.param)
    yield request.param, case, lake
    case.close()


def test_identical_findings(spark, scenario):
    from forensics.detectors import detect
    from forensics.engines.spark import detect_on_spark

    name, case, lake = scenario
    only, options = PORTABLE[name], OPTIONS.get(name)
    found = detect(case, only=only, options=options), detect_on_spark(lake, spark=spark, only=only, options=options)
    assert [f.failures for f in found] == [(), ()]  # a detector failing on one engine is not parity
    on_duckdb, on_spark = (f.records() for f in found)
    assert on_duckdb, f"synth {name} should trigger {only}"
    if name == "bimodal_latency":  # the sample cap is hit: both engines must sample alike
        assert any(f["evidence"]["sampled"] < f["evidence"]["count"] for f in on_duckdb if "sampled" in f["evidence"])
    assert {f["detector"] for f in on_duckdb} >= {only[0]}
    key = lambda f: (f["detector"], f["service"] or "", f["operation"] or "", f["target"] or "", f["version"] or "")
    assert [key(f) for f in sorted(on_spark, key=key)] == [key(f) for f in sorted(on_duckdb, key=key)]
    for d, s in zip(sorted(on_duckdb, key=key), sorted(on_spark, key=key)):
        _same(d, s, d["detector"])



def test_every_registered_detector_is_checked_on_spark():
    from forensics.detectors import detectors

    checked = {d for names in PORTABLE.values() for d in names}
    assert set(detectors()) <= checked, f"not checked on Spark: {sorted(set(detectors()) - checked)}"


def test_duplicate_rows_give_the_same_findings_on_spark(spark, tmp_path_factory):
    """A lake whose every span row is there twice (overlapping exports) gives on Spark the
    findings of the case without duplicates on DuckDB (the Spark side of forensics._duplicates)."""
    import forensics
    from forensics.detectors import detect
    from forensics.engines.spark import detect_on_spark
    from forensics.export import export

    case, _ = incident(tmp_path_factory, "clock_skew")
    twice = forensics.open_case()
    spans = case.sql("SELECT * FROM spans").to_arrow()
    for _ in range(2):
        twice.con.register("_s", spans)
        twice.execute("INSERT INTO spans BY NAME SELECT * FROM _s")
        twice.con.unregister("_s")
    lake = tmp_path_factory.mktemp("twice") / "lake"
    export(twice, lake)
    only = ["clock_skew", "critical_path", "error_origin"]
    found = detect(case, only=only, explain=True), detect_on_spark(lake, spark=spark, only=only, explain=True)
    assert [f.failures for f in found] == [(), ()]
    on_duckdb, on_spark = (f.records() for f in found)
    assert on_duckdb
    key = lambda f: (f["detector"], f["service"] or "", f["operation"] or "", f["title"])
    for d, s in zip(sorted(on_duckdb, key=key), sorted(on_spark, key=key), strict=True):
        _same(d, s, d["detector"])
