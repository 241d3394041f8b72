"""Incidents: the committed sample incidents each come out as one story with the right cause,
trigger, onset and blast radius; unrelated problems stay apart; background and data-quality
findings join no incident; the root-cause ranking (forensics.rank_causes, for real) picks the
cause, and where it finds no strong candidate (a no-op redeploy of the real OpenTelemetry app
under CPU hogs) no cause is named."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import forensics
from forensics import Findings
from forensics.findings import SEVERITY_RANK
from forensics.incident.text import ranking_text
from forensics.report import render
from forensics.report.markdown import render_markdown
from forensics.synth.builder import SpanBuilder

ROOT = Path(__file__).resolve().parents[2] / "sample_data"
REALAPP = Path(__file__).resolve().parents[1] / "data" / "realapp"


def _sample(name: str, tmp_path_factory) -> forensics.Case:
    if not (ROOT / name).is_dir():
        pytest.skip(f"sample_data/{name} missing")
    case = forensics.open_case(tmp_path_factory.mktemp(name) / "case.duckdb")
    forensics.load(case, ROOT / name, progress=False)
    return case


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    case = _sample("catalog_n_plus_one", tmp_path_factory)
    return case, forensics.incidents(case, ranking=None)


@pytest.fixture(scope="module")
def retry(tmp_path_factory):
    case = _sample("retry_storm", tmp_path_factory)
    return case, forensics.incidents(case, ranking=None)


def test_flagship_demo_is_one_incident_with_the_n_plus_one_as_cause(demo):
    _, inc = demo
    assert len(inc) == 1
    one = inc[0]
    members = inc.members(one["incident_id"]).records()
    cause = members[0]
    assert (cause["role"], cause["detector"], cause["service"], cause["target"], cause["version"]) == \
        ("cause", "n_plus_one", "catalog-service", "inventory-service", "1.8.0")
    symptoms = {(m["detector"], m["service"], m["operation"]) for m in members[1:]}
    assert ("version_regression", "catalog-service", "GET /search") in symptoms
    assert ("bimodal_latency", "api-gateway", "GET /search") in symptoms
    assert all(m["role"] == "symptom" and m["caused_by"] == cause["finding_id"] for m in members[1:])
    assert one["finding_ids"][0] == cause["finding_id"]


def test_flagship_trigger_onset_and_blast_radius(demo):
    _, inc = demo
    one = inc[0]
    t = one["trigger"]
    assert (t["kind"], t["service"], t["previous_version"], t["version"]) == ("deploy", "catalog-service", "1.7.9", "1.8.0")
    assert t["time"] == datetime(2026, 2, 18, 10, 15, tzinfo=timezone.utc)  # the deploy log's time, k8s merged in
    assert t["records"] > 2
    assert datetime(2026, 2, 18, 10, 15, tzinfo=timezone.utc) <= one["onset"] <= datetime(2026, 2, 18, 10, 18, tzinfo=timezone.utc)
    assert one["end_time"] is None  # the regression lasts to the end of the data
    m = one["measured"]
    assert 250 < m["before_p99_ms"] < 500 and 2000 < m["after_p99_ms"] < 3500
    radius = one["blast_radius"]
    top = radius["by_service"][0]
    assert top["service"] == "api-gateway" and 0.3 < top["share"] < 0.8
    ep = radius["entry_points"][0]
    assert (ep["service"], ep["operation"]) == ("api-gateway", "GET /search") and ep["extra_p99_ms"] > 1000
    s = one["summary"]
    assert s.startswith("10:15 deploy catalog-service 1.7.9 -> 1.8.0; from 10:1")
    assert "p99" in s and "cause: N+1" in s and "of api-gateway requests affected" in s


def test_background_and_unrelated_findings_stay_out(demo):
    _, inc = demo
    background = inc.background().records()
    # the steady POST /orders critical path and pricing errors that began before the deploy
    assert {(f["detector"], f["service"]) for f in background} >= {("critical_path", "api-gateway")}
    assert all(f["incident_id"] is None and f["role"] is None for f in background)


def test_retry_storm_sample_is_one_story_caused_at_pricing(retry):
    _, inc = retry
    assert len(inc) == 1
    one = inc[0]
    members = inc.members(one["incident_id"]).records()
    assert members[0]["service"] == "pricing-service" and members[0]["detector"] == "error_origin"
    storms = [m for m in members if m["detector"] == "retry_storm"]
    assert len(storms) >= 2 and all(m["role"] == "symptom" for m in storms)
    assert one["trigger"]["service"] == "pricing-service" and one["trigger"]["kind"] == "k8s"
    assert one["metric"] == "errors" and one["end_time"] is not None  # pricing recovered
    assert datetime(2026, 2, 18, 10, 8, tzinfo=timezone.utc) <= one["onset"] <= datetime(2026, 2, 18, 10, 13, tzinfo=timezone.utc)
    assert all(f["incident_id"] is None for f in inc.findings.records() if f["detector"] == "clock_skew")


def test_flagship_cause_comes_from_rank_causes_and_agrees_with_it(demo):
    case, by_graph = demo
    inc = forensics.incidents(case, findings=by_graph.findings)  # ranking="auto": forensics.rank_causes
    assert len(inc) == 1
    one = inc[0]
    cause = inc.members(one["incident_id"]).records()[0]
    assert (cause["role"], cause["detector"], cause["service"], cause["target"], cause["version"]) == \
        ("cause", "n_plus_one", "catalog-service", "inventory-service", "1.8.0")
    assert one["cause_established"] and one["cause_basis"] == "ranking"
    assert one["cause_finding_id"] == one["lead_finding_id"] == cause["finding_id"]
    ranked = one["ranked_first"]
    assert ranked["service"] == "catalog-service" and ranked["strong"] and ranked["score"] > 10
    assert forensics.rank_causes(case).top["service"] == cause["service"]  # the ranking on its own agrees
    assert one["summary"] == by_graph[0]["summary"]  # the call graph had come to the same story
    assert "cause: N+1" in one["summary"]


def _realapp(name: str) -> forensics.Case:
    case = forensics.open_case()
    forensics.load(case, REALAPP / name / "otlp", progress=False)
    return case


def _at(minute: float, second: float) -> datetime:
    return datetime(2026, 12, 7, 17, int(minute), 0, tzinfo=timezone.utc) + timedelta(seconds=second)


@pytest.fixture(scope="module")
def noop_redeploy():
    """The real OTel app redeployed without a change (catalog-service 1.7.9 -> 1.7.10) while two
    CPU hogs slowed every service alike, with the findings the detectors reported on it (written
    out, so the test does not move with the detectors): version_regression blamed 1.7.10,
    bimodal_latency saw the sqlite calls of inventory-service."""
    case = _realapp("healthy_noop_redeploy")
    sqlite = {"target": "sqlite", "severity": "low", "end_time": _at(17, 21)}
    findings = Findings.from_records([
        {**_finding("version_regression", "catalog-service", "GET /products/<sku>", 0), "version": "1.7.10",
         "start_time": _at(17, 1.5), "end_time": _at(17, 22)},
        {**_finding("bimodal_latency", "inventory-service", None, 0), **sqlite, "start_time": _at(16, 33.8),
         "target_operation": "SELECT stock.qty FROM stock WHERE stock.sku = ?"},
        {**_finding("bimodal_latency", "inventory-service", None, 0), **sqlite, "start_time": _at(16, 33.8),
         "target_operation": "connect"}])
    return case, forensics.incidents(case, findings=findings)


def test_no_strong_candidate_means_no_cause_named(noop_redeploy):
    case, inc = noop_redeploy
    assert forensics.rank_causes(case).top is None  # the ranking blames no one here
    assert len(inc) == 1
    one = inc[0]
    assert not one["cause_established"] and one["cause_basis"] == "none"
    assert one["cause_finding_id"] is None and one["ranked_first"] is not None and not one["ranked_first"]["strong"]
    members = inc.members(one["incident_id"]).records()
    assert members[0]["finding_id"] == one["lead_finding_id"]
    assert members[0]["severity"] == min((m["severity"] for m in members), key=SEVERITY_RANK.get)
    assert all(m["role"] == "symptom" and m["caused_by"] is None for m in members)
    assert "cause: not established" in one["summary"]
    assert inc.to_pandas().loc[0, "cause_established"] == False  # noqa: E712
    md = render_markdown(case, findings=inc.findings)
    assert "| cause | not established" in md and "| root-cause ranking | " in md and "weak" in md
    page = render(case, findings=inc.findings)
    assert "<tr><th>cause</th><td>not established" in page and "<th>root-cause ranking</th>" in page
    assert "no cause established; the strongest first" in page and "the cause, then its symptoms" not in page


def test_a_ranking_verdict_names_the_cause_only_when_strong(demo):
    case, by_graph = demo
    findings = by_graph.findings
    weak = forensics.incidents(case, findings=findings, ranking=lambda c, s, e: [
        {"service": "catalog-service", "operation": None, "strong": False}])
    assert not weak[0]["cause_established"] and all(f["role"] != "cause" for f in weak.findings.records())
    cannot = forensics.incidents(case, findings=findings, ranking=lambda c, s, e: None)  # e.g. no baseline
    elsewhere = forensics.incidents(case, findings=findings, ranking=lambda c, s, e: [
        {"service": "no-finding-here", "operation": None, "strong": True}])
    for inc, basis in ((cannot, "call graph"), (elsewhere, "call graph")):
        assert inc[0]["cause_established"] and inc[0]["cause_basis"] == basis
        assert inc[0]["cause_finding_id"] == by_graph[0]["cause_finding_id"]
    assert "no finding of this incident is at it" in ranking_text(elsewhere[0])


def test_a_ranked_call_names_the_finding_that_makes_it():
    from forensics.incident.cause import from_ranking

    members = [{"detector": "version_regression", "severity": "critical", "service": "cat", "operation": "GET /s",
                "target": None, "target_operation": None, "score": 9.0},
               {"detector": "bimodal_latency", "severity": "high", "service": "cat", "operation": "GET /s",
                "target": "inv", "target_operation": "GET /old", "score": 1.0},
               {"detector": "retry_storm", "severity": "high", "service": "cat", "operation": "GET /s",
                "target": "inv", "target_operation": "GET /i/{id}", "score": 1.0}]
    ranked = [{"service": "cat", "operation": "GET /s -> inv GET /i/{id}", "strong": True}]
    assert from_ranking(ranked, members) == 2
    # the ranked call decides over the detector order (a retry storm usually comes before latency shapes)
    assert from_ranking([{"service": "cat", "operation": "GET /s -> inv GET /old", "strong": True}], members) == 1
    assert from_ranking([{"service": "cat", "operation": "GET /s -> inv", "strong": True}], members) == 2
    assert from_ranking([{"service": "cat", "operation": "GET /s", "strong": True}], members) == 2
    assert from_ranking([{"service": "inv", "operation": "GET /old", "strong": True}], members) == 1
    assert from_ranking([{"service": "elsewhere", "operation": None, "strong": True}], members) is None


def test_a_ranking_picks_the_cause_when_given(demo):
    case, _ = demo
    findings = forensics.incidents(case, ranking=None).findings
    inc = forensics.incidents(case, findings=findings, ranking=lambda c, s, e: [
        {"service": "inventory-service", "operation": "GET /inventory/{id}", "strong": True}])
    cause = inc.members(inc[0]["incident_id"]).records()[0]
    assert cause["service"] == "inventory-service"


# -- hand-built cases ----------------------------------------------------------------------------
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def _two_problems() -> forensics.Case:
    """Two unrelated request paths: checkout -> payments gets slow at 09:30, search -> index
    starts failing at 10:10; one request per 20 s on each for two hours."""
    b = SpanBuilder(BASE, seed=5)
    for i in range(360):
        t = i * 20_000.0
        slow = t >= 30 * 60_000
        r = b.span("checkout", "POST /pay", kind="server", start_ms=t, duration_ms=400 if slow else 40)
        c = b.span("checkout", "POST /charge", kind="client", parent=r, start_ms=t + 2, duration_ms=390 if slow else 30,
                   attributes={"peer.service": "payments"})
        b.span("payments", "POST /charge", kind="server", parent=c, start_ms=t + 3, duration_ms=385 if slow else 28)
        failing = t >= 70 * 60_000 and i % 2 == 0
        r2 = b.span("web", "GET /find", kind="server", start_ms=t + 5, duration_ms=30,
                    status="error" if failing else "unset")
        c2 = b.span("web", "GET /query", kind="client", parent=r2, start_ms=t + 6, duration_ms=20,
                    status="error" if failing else "unset", attributes={"peer.service": "index"})
        b.span("index", "GET /query", kind="server", parent=c2, start_ms=t + 7, duration_ms=18,
               status="error" if failing else "unset", status_message="shard unavailable" if failing else None)
    case = forensics.open_case()
    b.insert(case)
    case.execute("INSERT INTO events (time, kind, service, version, message) VALUES (?, 'config', 'payments', NULL, "
                 "'pool size 50 -> 5')", [BASE + timedelta(minutes=28)])
    return case


def _finding(detector, service, operation, start_min, severity="high", **kw):
    return {"detector": detector, "severity": severity, "title": f"{detector} at {service}", "service": service,
            "operation": operation, "start_time": BASE + timedelta(minutes=start_min),
            "end_time": BASE + timedelta(minutes=120), "score": 1.0, "evidence": {}, "summary": "s", **kw}


def test_unrelated_problems_are_separate_incidents():
    case = _two_problems()
    findings = Findings.from_records([
        _finding("critical_path", "payments", "POST /charge", 30),
        _finding("bimodal_latency", "checkout", "POST /pay", 30, severity="medium"),
        _finding("error_origin", "index", "GET /query", 70, severity="critical"),
        _finding("clock_skew", "index", None, 70, severity="low"),
    ])
    inc = forensics.incidents(case, findings=findings, ranking=None)
    assert len(inc) == 2
    first, second = inc[0], inc[1]
    assert first["service"] == "index" and first["metric"] == "errors" and first["trigger"] is None
    assert second["service"] == "payments" and second["trigger"]["kind"] == "config"
    assert abs(second["onset"] - (BASE + timedelta(minutes=30))) <= timedelta(minutes=2)
    roles = {(f["service"], f["role"]) for f in inc.findings.records()}
    assert ("payments", "cause") in roles and ("checkout", "symptom") in roles and ("index", None) in roles


def test_steady_findings_seed_no_incident():
    case = _two_problems()
    findings = Findings.from_records([_finding("critical_path", "web", "GET /find", 0, severity="medium",
                                               end_time=BASE + timedelta(minutes=60))])
    assert len(forensics.incidents(case, findings=findings, ranking=None)) == 0


def _single_trace() -> forensics.Case:
    """One trace: gw GET /a calling svc GET /b 20 times in sequence."""
    b = SpanBuilder(BASE, seed=2)
    r = b.span("gw", "GET /a", kind="server", start_ms=0, duration_ms=500)
    for i in range(20):
        c = b.span("gw", "GET /b", kind="client", parent=r, start_ms=5 + 20 * i, duration_ms=18,
                   attributes={"peer.service": "svc"})
        b.span("svc", "GET /b", kind="server", parent=c, start_ms=6 + 20 * i, duration_ms=16)
    case = forensics.open_case()
    b.insert(case)
    return case


def test_a_single_trace_groups_by_shared_traces():
    case = _single_trace()
    findings = Findings.from_records([
        _finding("n_plus_one", "gw", "GET /a", 0, target="svc", target_operation="GET /b", end_time=BASE),
        _finding("critical_path", "svc", "GET /b", 0, severity="low", end_time=BASE)])
    inc = forensics.incidents(case, findings=findings, ranking=None)
    assert len(inc) == 1 and inc[0]["title"] == "n_plus_one at gw"
    assert inc[0]["trigger"] is None and inc[0]["end_time"] is None


def test_a_single_trace_keeps_its_call_graph_cause_with_the_real_ranking():
    """rank_causes cannot judge one trace (no baseline before it): the call graph names the cause."""
    case = _single_trace()
    inc = forensics.incidents(case, findings=Findings.from_records([
        _finding("n_plus_one", "gw", "GET /a", 0, target="svc", target_operation="GET /b", end_time=BASE)]))
    assert len(inc) == 1 and inc[0]["cause_established"] and inc[0]["cause_basis"] == "call graph"
    assert inc.findings.records()[0]["role"] == "cause"


def test_low_severity_findings_alone_make_no_incident():
    """healthy_noisy: the real OTel app under a CPU hog; the detectors' one finding on it is a
    low-severity critical path (written out here) at a place whose p99 wobbles with the hog."""
    case = _realapp("healthy_noisy")
    findings = Findings.from_records([{**_finding("critical_path", "catalog-service", "GET /stock", 0, severity="low"),
                                       "start_time": _at(15, 42.26), "end_time": _at(15, 42.35)}])
    inc = forensics.incidents(case, findings=findings)
    assert len(inc) == 0 and all(f["incident_id"] is None for f in inc.findings.records())
    upgraded = Findings.from_records([{**findings.records()[0], "severity": "medium"}])
    assert len(forensics.incidents(case, findings=upgraded, ranking=None)) == 1  # the same finding, medium
    two = _two_problems()
    low = Findings.from_records([_finding("bimodal_latency", "checkout", "POST /pay", 30, severity="low")])
    assert len(forensics.incidents(two, findings=low, ranking=None)) == 0
    low_and_medium = Findings.from_records([*low.records(), _finding("critical_path", "payments", "POST /charge", 30,
                                                                     severity="medium")])
    assert len(forensics.incidents(two, findings=low_and_medium, ranking=None)) == 1


def test_a_finding_at_an_uninstrumented_dependency_is_measured_at_its_callers():
    """sqlite has no spans of its own: the place of inventory-service's slow calls to it is
    inventory-service's client spans with that statement."""
    from forensics.incident.links import place_of

    f = {"service": "inventory-service", "operation": None, "target": "sqlite", "target_operation": "SELECT 1"}
    assert place_of(f, {"inventory-service"}) == ("inventory-service", "SELECT 1")
    assert place_of(f, {"inventory-service", "sqlite"}) == ("sqlite", "SELECT 1")
    assert place_of({**f, "operation": "GET /stock"}, set()) == ("inventory-service", "GET /stock")
    assert place_of({**f, "target": None, "target_operation": None}, set()) == ("inventory-service", None)


@pytest.mark.parametrize("records", [
    [],
    [_finding("n_plus_one", "no-such-service", "GET /x", 0)],
    [{**_finding("error_origin", None, None, 0), "start_time": None, "end_time": None}],
])
def test_bad_or_empty_input_gives_no_exception(records):
    case = _two_problems()
    inc = forensics.incidents(case, findings=Findings.from_records(records), ranking=None)
    assert len(inc.findings) == len(records)
    assert repr(inc).startswith("<Incidents")


def test_empty_case():
    inc = forensics.incidents(forensics.open_case(), findings=Findings.empty())
    assert len(inc) == 0 and inc._repr_html_() == "<p>No incidents.</p>" and inc.to_pandas().empty
