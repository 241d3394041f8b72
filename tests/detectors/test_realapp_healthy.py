"""Every detector on real captures of a healthy app (#16): no medium or higher finding, and
overlapping exports (the same spans in two files) give the answers of each span once."""
from __future__ import annotations

import pytest

import forensics
from forensics.analysis.critical_path import critical_path_by_operation
from tests.realapp.helpers import DATA, loaded, truth, with_copies

HEALTHY = [s for s in ("healthy_noisy", "healthy_noop_redeploy", "overlapping_exports")
           if truth(s).get("expected_finding", {}).get("none_at_or_above") == "medium"]


@pytest.mark.parametrize("scenario", HEALTHY)
def test_no_medium_or_higher_finding_on_a_healthy_app(scenario):
    assert len(HEALTHY) == 3
    (variant,) = truth(scenario)["variants"]
    case, _ = loaded(scenario, variant)
    found = forensics.detect(case)
    assert not found.failures
    assert [(f["detector"], f["summary"]) for f in found.at_least("medium").records()] == []


def _key(f: dict) -> tuple:
    return (f["detector"], f["severity"], f["service"], f["operation"], f["target"], f["target_operation"],
            f["version"], round(f["score"] or 0.0, 9))


@pytest.mark.parametrize("copies", [False, True], ids=["merged by the load", "copies in the case"])
def test_overlapping_exports_count_each_span_once(copies):
    """traces-1.json holds traces 1-2, traces-2.json 2-3, traces-3.json 3-4: loading all three
    gives the findings (explain: near misses too) and critical paths of loading 1 and 3 only,
    whether the load kept the repeated spans once or the case holds them twice."""
    case = with_copies("overlapping_exports", "jaeger") if copies else loaded("overlapping_exports", "jaeger")[0]
    files = sorted((DATA / "overlapping_exports" / "jaeger").glob("*.json"))
    assert [f.name for f in files] == ["traces-1.json", "traces-2.json", "traces-3.json"]
    once = forensics.open_case()
    forensics.load(once, files[0], files[2], progress=False)
    n, n_once = (c.sql("SELECT count(*) FROM spans").scalar() for c in (case, once))
    assert n > n_once if copies else n == n_once
    assert sorted(map(_key, forensics.detect(case, explain=True))) == \
        sorted(map(_key, forensics.detect(once, explain=True)))
    shares = critical_path_by_operation(case).dicts()
    assert shares and max(r["share"] for r in shares) <= 1.0 and max(r["slow_share"] for r in shares) <= 1.0
    for (trace_id,) in case.sql("SELECT DISTINCT trace_id FROM spans ORDER BY 1").rows():
        path = [(r["span_id"], r["self_ms"]) for r in forensics.critical_path(case, trace_id).dicts()]
        assert path and path == [(r["span_id"], r["self_ms"]) for r in forensics.critical_path(once, trace_id).dicts()]
