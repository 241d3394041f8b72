"""clock_skew: a host 50 ms ahead is found and corrected; synchronized hosts are not flagged."""
from datetime import datetime, timedelta, timezone

import pytest

import forensics
from forensics.analysis.clock_skew import adjust_clock_skew
from forensics.errors import CaseError
from forensics.detectors.clock_skew import detect_clock_skew
from forensics.synth.builder import SpanBuilder
from tests.realapp.helpers import loaded, truth

#: microsecond timestamps as real exporters write them (whole milliseconds read as ms resolution)
T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc) + timedelta(microseconds=123)


def _case(n=20, skew_ms=50.0, lead_ms=2.0):
    """api-1 calls inventory on inv-1 (even traces) or inv-2 (odd, clock ``skew_ms`` ahead);
    inventory queries its DB in-process and calls pricing on pr-1 (synchronized)."""
    b = SpanBuilder(T0, seed=4)
    for i in range(n):
        t = i * 1000.0
        host, skew = ("inv-2", skew_ms) if i % 2 else ("inv-1", 0.0)
        root = b.span("api", "GET /items", kind="server", start_ms=t, duration_ms=100, host="api-1")
        call = b.span("api", "GET", kind="client", parent=root, start_ms=t + 10, duration_ms=50, host="api-1",
                      attributes={"peer.service": "inventory"})
        srv = b.span("inventory", "GET /inventory", kind="server", parent=call, start_ms=t + 10 + lead_ms + skew,
                     duration_ms=46, host=host)
        b.span("inventory", "SELECT items", kind="client", parent=srv, start_ms=t + 15 + skew, duration_ms=10,
               host=host, attributes={"db.system": "postgresql"})
        pc = b.span("inventory", "GET", kind="client", parent=srv, start_ms=t + 30 + skew, duration_ms=20,
                    host=host, attributes={"peer.service": "pricing"})
        b.span("pricing", "GET /price", kind="server", parent=pc, start_ms=t + 31, duration_ms=18, host="pr-1")
    case = forensics.open_case()
    b.insert(case)
    return case


def test_skewed_host_is_found_with_its_offset():
    f = detect_clock_skew(_case()).records()
    assert [r["evidence"]["host"] for r in f] == ["inv-2"]
    r = f[0]
    assert r["severity"] == "medium" and r["service"] == "inventory"
    ev = r["evidence"]
    assert ev["offset_ms"] == pytest.approx(50.0) and ev["violations"] == 10 and ev["pairs"] == 10
    assert ev["caller_host"] == "api-1" and len(ev["exemplar_trace_ids"]) == 5
    assert "50 ms ahead" in r["summary"]
    # pr-1 sticks out of its (skewed) caller inv-2 by 50 ms, but is judged against the caller's
    # corrected times, so it is not blamed


def test_adjust_clock_skew_moves_the_skewed_subtree_and_keeps_raw_times():
    case = _case()
    assert adjust_clock_skew(case) == 10 * 3  # server, db and pricing-client spans of inv-2 traces
    rows = case.sql("""SELECT host_name, name, epoch_ms(start_time) - epoch_ms(adj_start_time) AS moved_ms
                       FROM spans WHERE host_name IN ('inv-2', 'pr-1')""").dicts()
    assert {r["moved_ms"] for r in rows if r["host_name"] == "inv-2"} == {50}
    assert {r["moved_ms"] for r in rows if r["host_name"] == "pr-1"} == {0}
    bad = case.sql("""SELECT count(*) FROM spans c JOIN spans p ON p.span_id = c.parent_span_id
                      WHERE c.adj_start_time < p.adj_start_time OR c.adj_end_time > p.adj_end_time""").scalar()
    assert bad == 0
    assert len(detect_clock_skew(case)) == 1  # the detector still reads the raw times
    assert adjust_clock_skew(case) == 30  # idempotent


def test_synchronized_hosts_and_tolerance():
    assert len(detect_clock_skew(_case(skew_ms=0.0))) == 0
    slight = _case(skew_ms=0.0, lead_ms=-0.5)  # every server span starts 0.5 ms early
    assert len(detect_clock_skew(slight)) == 0
    strict = {r["evidence"]["host"]: r for r in detect_clock_skew(slight, tolerance_ms=0.1, min_skew_ms=1.0).records()}
    assert {"inv-1", "inv-2"} <= set(strict)
    assert strict["inv-1"]["evidence"]["offset_ms"] == pytest.approx(-2.5)  # midpoint: 0.5 early, 4.5 short
    assert adjust_clock_skew(slight) == 0
    few = detect_clock_skew(_case(n=4), min_violations=3, explain=True).records()
    assert few[0]["severity"] == "info" and few[0]["evidence"]["failed"] == ["min_violations"]


def _flask_pair(b: SpanBuilder, t: float, *, client_ms: float, lead_ms: float, server_ms: float,
                host: str | None = None) -> str:
    """One api-gateway -> catalog-service request shaped as the OpenTelemetry Python SDK writes it
    (Flask server spans, a requests client span, old HTTP conventions, no host.name), with the
    catalog -> pricing call under it: the client span lasts ``client_ms``, pricing's server span
    starts ``lead_ms`` after it (by pricing's clock) and lasts ``server_ms``."""
    http = lambda route, code=200: {"http.method": "GET", "http.route": route, "http.status_code": code,  # noqa: E731
                                    "http.scheme": "http", "http.flavor": "1.1", "net.host.port": 5000}
    root = b.span("api-gateway", "GET /api/products/<sku>", kind="server", start_ms=t, duration_ms=client_ms + 40,
                  attributes=http("/api/products/<sku>"))
    srv = b.span("catalog-service", "GET /products/<sku>", kind="server", parent=root, start_ms=t + 5,
                 duration_ms=client_ms + 30, attributes=http("/products/<sku>"))
    call = b.span("catalog-service", "GET", kind="client", parent=srv, start_ms=t + 10, duration_ms=client_ms,
                  attributes={"http.method": "GET", "http.url": "http://pricing-service:42121/prices/SKU-0042",
                              "http.status_code": 200})
    b.span("pricing-service", "GET /prices/<sku>", kind="server", parent=call, start_ms=t + 10 + lead_ms,
           duration_ms=server_ms, host=host, attributes=http("/prices/<sku>"))
    return root.trace_id


def test_one_pair_in_one_trace_is_enough_when_unambiguous():
    """The realapp capture's numbers: client 85.142 ms, pricing's server span 29.475 ms starting
    92.549 ms after it (its clock is 66 ms ahead). One pair: a low finding (Jaeger adjusts per trace)."""
    b = SpanBuilder(T0, seed=9)
    trace = _flask_pair(b, 0.0, client_ms=85.142, lead_ms=92.549, server_ms=29.475)
    case = forensics.open_case()
    b.insert(case)
    (r,) = detect_clock_skew(case).records()
    assert (r["service"], r["severity"]) == ("pricing-service", "low")
    ev = r["evidence"]
    assert ev["offset_ms"] == pytest.approx(64.715, abs=0.01) and ev["pairs"] == ev["violations"] == 1
    assert ev["exemplar_trace_ids"] == [trace] and ev["resolution_ms"] == 0.001
    assert "pricing-service (pricing-service) looks 65 ms ahead" in r["summary"]
    # five such traces: medium (every pair sticks out, consistently)
    b5 = SpanBuilder(T0, seed=9)
    for i, (client, lead, server) in enumerate([(86.437, 96.61, 54.357), (68.782, 118.707, 8.333),
                                                (56.413, 105.579, 7.84), (51.408, 85.212, 15.693),
                                                (90.016, 87.968, 19.294)]):
        _flask_pair(b5, i * 1000.0, client_ms=client, lead_ms=lead, server_ms=server)
    case5 = forensics.open_case()
    b5.insert(case5)
    (r5,) = detect_clock_skew(case5).records()
    assert r5["severity"] == "medium" and r5["evidence"]["offset_ms"] == pytest.approx(80.57, abs=0.01)  # the median pair


def test_millisecond_timestamps_are_not_skew():
    """An exporter writing whole milliseconds (found from the data: every timestamp of both hosts
    is a multiple of 1000 us): a server span 1 ms out of its client span is rounding. The same
    spans with microsecond timestamps are skewed by 1 ms (found with no tolerance or floor)."""
    b = SpanBuilder(T0 - timedelta(microseconds=123), seed=2)
    for i in range(40):
        _flask_pair(b, i * 1000.0, client_ms=3.0, lead_ms=-1.0, server_ms=3.0)  # 1 ms early, whole ms
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_clock_skew(case, tolerance_ms=0.0, min_skew_ms=0.0, explain=True)) == 0
    case.execute("UPDATE spans SET start_time = start_time + INTERVAL 7 MICROSECOND, "
                 "end_time = end_time + INTERVAL 7 MICROSECOND")
    (r,) = detect_clock_skew(case, tolerance_ms=0.0, min_skew_ms=0.0).records()
    assert r["evidence"]["offset_ms"] == pytest.approx(-1.0) and r["evidence"]["resolution_ms"] == 0.001
    assert len(detect_clock_skew(case)) == 0  # and 1 ms is below the default floor


def test_hung_request_is_not_skew():
    """The client gave up after 30 s; the server span under it ran 1414 s (hung). Their starts
    agree: a longer server span is not evidence of skew, however far its end sticks out."""
    b = SpanBuilder(T0, seed=4)
    for i in range(3):
        _flask_pair(b, i * 2_000_000.0, client_ms=30_000.0, lead_ms=1.2, server_ms=1_414_000.0)
    for i in range(20):  # normal traffic
        _flask_pair(b, 10_000_000.0 + i * 1000.0, client_ms=20.0, lead_ms=1.0, server_ms=17.5)
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_clock_skew(case, explain=True)) == 0
    assert adjust_clock_skew(case) == 0


def test_small_offsets_are_below_min_skew_ms():
    """A server span ending 2 ms after its client (ended after the response was written): "3 ms
    ahead" is not reported; explain shows it as a near miss."""
    b = SpanBuilder(T0, seed=5)
    for i in range(30):
        _flask_pair(b, i * 1000.0, client_ms=20.0, lead_ms=4.0, server_ms=18.0)  # ends 2 ms late: offset 3 ms
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_clock_skew(case)) == 0
    (near,) = detect_clock_skew(case, explain=True).records()
    assert near["severity"] == "info" and near["evidence"]["failed"] == ["min_skew_ms"]
    assert near["evidence"]["offset_ms"] == pytest.approx(3.0)
    assert len(detect_clock_skew(case, min_skew_ms=2.5)) == 1


def test_bad_input():
    empty = forensics.open_case()
    assert len(detect_clock_skew(empty)) == 0
    assert adjust_clock_skew(empty) == 0
    b = SpanBuilder(T0)
    b.span("a", "op", kind="server", duration_ms=5)
    case = forensics.open_case()
    b.insert(case)
    assert len(detect_clock_skew(case)) == 0 and adjust_clock_skew(case) == 0
    with pytest.raises(forensics.UsageError):
        adjust_clock_skew(case, tolerance_ms=-1)


def test_adjust_on_read_only_case_is_a_clear_error(tmp_path):
    path = tmp_path / "c.duckdb"
    with forensics.open_case(path) as case:
        b = SpanBuilder(T0)
        b.span("a", "op", kind="server", duration_ms=5)
        b.insert(case)
    with forensics.open_case(path, read_only=True) as ro:
        assert len(detect_clock_skew(ro)) == 0  # detection only reads
        with pytest.raises(CaseError, match="open the case writable"):
            adjust_clock_skew(ro)


@pytest.mark.slow
def test_synth_clock_skew_scenario_finds_the_pod(synth_case):
    case, truth = synth_case("clock_skew", traces=400)
    exp = truth.expected[0]
    f = detect_clock_skew(case).records()
    assert [r["evidence"]["host"] for r in f] == [exp["numbers"]["host"]]
    assert f[0]["service"] == exp["service"]
    assert f[0]["evidence"]["offset_ms"] == pytest.approx(exp["numbers"]["skew_ms"], rel=0.1)


@pytest.mark.slow
def test_synth_clean_scenario_has_no_clock_skew(synth_case):
    case, _ = synth_case("clean")
    assert len(detect_clock_skew(case)) == 0


@pytest.mark.parametrize("variant, severity", [("one_trace", "low"), ("few_traces", "medium")])
def test_realapp_66_ms_skew(variant, severity):
    """The real SDK capture: pricing-service's clock 66 ms ahead. One pair in one trace is
    reported (low); five pairs that all stick out are medium. The offset is the median of the
    pairs' midpoint estimates (truth.json)."""
    t = truth("clock_skew_pair")
    case, _ = loaded("clock_skew_pair", variant)
    (r,) = detect_clock_skew(case).records()
    assert (r["service"], r["severity"]) == (t["expected_finding"]["service"], severity)
    estimates = sorted(p["skew_estimate_ms"] for p in t["facts"][variant]["pairs"])
    assert r["evidence"]["offset_ms"] == pytest.approx(estimates[len(estimates) // 2], abs=0.01)
    assert r["evidence"]["resolution_ms"] == 0.001  # OTLP: nanoseconds, read as microseconds
