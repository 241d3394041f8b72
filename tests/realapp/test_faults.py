"""The labelled fault injections (tests/data/realapp/faults, issue #20) load completely and show,
on the canonical tables, the effects their truth.json records for the injected fault."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pandas as pd
import pytest

import forensics

from .helpers import DATA

FAULTS = DATA / "faults"


def _index() -> dict[str, Any]:
    path = FAULTS / "index.json"
    return json.loads(path.read_text()) if path.exists() else {"cases": [], "targets": [], "faults": []}


CASES = [c["case"] for c in _index()["cases"]]


@lru_cache(maxsize=None)
def _case(case: str) -> tuple[Any, Any, dict[str, Any]]:
    c = forensics.open_case()
    report = forensics.load(c, FAULTS / case)
    return c, report, json.loads((FAULTS / case / "truth.json").read_text())


def _windows(t: dict[str, Any]) -> list[Any]:
    return [pd.Timestamp(t["baseline"]["start"]), pd.Timestamp(t["onset"]), pd.Timestamp(t["faulty"]["end"])]


#: the period of a time column: the fault-free window, the faulty one, or neither (NULL)
PERIOD = "CASE WHEN {c} >= $b AND {c} < $o THEN 'before' WHEN {c} >= $o AND {c} <= $e THEN 'after' END"


def _sql(case: str, query: str, **params: Any) -> pd.DataFrame:
    """``query`` over the case with $b, $o, $e bound to the baseline start, onset and end."""
    c, _, t = _case(case)
    b, o, e = _windows(t)
    given = {"b": b, "o": o, "e": e, **params}
    return c.sql(query, {k: v for k, v in given.items() if f"${k}" in query}).to_pandas()


def test_fault_set_covers_five_services_and_five_fault_types() -> None:
    idx = _index()
    assert len(idx["targets"]) >= 5 and len(idx["faults"]) == 5
    got = {(c["service"], c["fault"]) for c in idx["cases"]}
    assert got == {(s, f) for s in idx["targets"] for f in idx["faults"]}


@pytest.mark.parametrize("case", CASES)
def test_fault_case_loads_and_is_labelled(case: str) -> None:
    c, report, t = _case(case)
    assert report.rows_rejected == 0 and report.rows_loaded == report.records_read
    tables = report.by_table()
    assert tables["spans"] > 500 and tables["metrics"] > 0 and tables["logs"] > 0
    b, o, e = _windows(t)
    assert b < o < e and (o - b).total_seconds() >= 10 and (e - o).total_seconds() >= 10
    svc = set(_sql(case, "SELECT DISTINCT service FROM spans").service)
    assert t["service"] in svc and len(svc) == 6
    pods = _sql(case, "SELECT service, count(DISTINCT resource_attributes['k8s.pod.name']) AS pods FROM metrics "
                      "WHERE name = 'process.cpu.time' GROUP BY 1")
    assert set(pods.service) == svc and (pods.pods == 1).all()


def _target_servers(case: str, target: str) -> pd.DataFrame:
    return _sql(case, f"""
        SELECT {PERIOD.format(c='s.start_time')} AS period, count(*) AS n, median(s.duration_ms) AS p50,
               count(*) FILTER (WHERE s.status = 'error' AND NOT EXISTS (
                   SELECT 1 FROM spans k WHERE k.parent_span_id = s.span_id AND k.trace_id = s.trace_id
                   AND k.status = 'error')) AS origin_errors
        FROM spans s WHERE s.service = $target AND s.kind = 'server' GROUP BY 1 HAVING period IS NOT NULL""",
                target=target).set_index("period")


def _caller_latency(case: str, target: str) -> dict[tuple[str, str], float]:
    d = _sql(case, f"""
        SELECT {PERIOD.format(c='c.start_time')} AS period, c.service, median(c.duration_ms) AS p50
        FROM spans c JOIN spans s ON s.parent_span_id = c.span_id AND s.trace_id = c.trace_id
        WHERE s.service = $target AND s.kind = 'server' GROUP BY ALL HAVING period IS NOT NULL""", target=target)
    return {(r.period, r.service): r.p50 for r in d.itertuples()}


def _caller_warnings(case: str, callers: list[str]) -> dict[str, int]:
    d = _sql(case, f"""
        SELECT {PERIOD.format(c='time')} AS period, count(*) AS n FROM logs
        WHERE severity = 'warn' AND attributes['logger'] = 'app' AND list_contains($callers, service)
        GROUP BY 1 HAVING period IS NOT NULL""", callers=callers)
    return {r.period: r.n for r in d.itertuples()}


@pytest.mark.parametrize("case", CASES)
def test_fault_case_effects_match_truth(case: str) -> None:
    _, _, t = _case(case)
    eff, target = t["effects"], t["service"]
    srv = _target_servers(case, target)
    for p in ("before", "after"):
        assert srv.n[p] == eff["target_server_spans"][p]
        assert abs(srv.p50[p] - eff["target_server_p50_ms"][p]) < 0.01
        assert srv.origin_errors[p] == eff["target_origin_error_spans"][p]
    lat = _caller_latency(case, target)
    for caller, p50 in eff["caller_client_p50_ms"].items():
        for p in ("before", "after"):
            assert abs(lat[(p, caller)] - p50[p]) < 0.01
    warn = _caller_warnings(case, eff["callers"])
    assert {p: warn.get(p, 0) for p in ("before", "after")} == eff["caller_app_warnings"]


@pytest.mark.parametrize("case", CASES)
def test_fault_is_visible_where_it_should_be(case: str) -> None:
    """Each fault type's signature, as the root-cause ranking has to read it."""
    _, _, t = _case(case)
    eff, fault = t["effects"], t["fault"]
    srv, warn = eff["target_server_p50_ms"], eff["caller_app_warnings"]
    errors = eff["target_origin_error_spans"]
    assert errors["before"] == 0 and warn["before"] == 0  # the fault-free period is fault-free
    if fault == "delay":  # only the callers see it
        for p50 in eff["caller_client_p50_ms"].values():
            assert p50["after"] - p50["before"] > 0.6 * t["parameters"]["delay_ms"]
        assert srv["after"] - srv["before"] < 0.3 * t["parameters"]["delay_ms"]
    elif fault == "exception":
        assert errors["after"] > 0
    elif fault == "wrong_value":
        assert warn["after"] > 0 and errors["after"] == 0
    elif fault == "cpu_consumption":
        assert srv["after"] - srv["before"] > 0.6 * t["parameters"]["cpu_burn_ms_per_request"]
        cpu = eff["target_cpu_seconds_per_second"]
        assert cpu["after"] > cpu["before"]
    else:
        assert fault == "cpu_contention" and srv["after"] > srv["before"]
