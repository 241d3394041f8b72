"""trace_diff: v1.7.9 makes one inventory call per search, v1.8.0 makes fifty."""
from datetime import datetime, timezone

import pytest

import forensics
from forensics.analysis.trace_diff import trace_diff
from forensics.synth.builder import SpanBuilder

T0 = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)
CATALOG = "api-gateway:GET /search > catalog-service:GET /search"
INVENTORY = CATALOG + " > inventory-service:GET /inventory/{id}"


def _search(b: SpanBuilder, t: float, version: str, calls: int, each_ms: float) -> str:
    total = 10 + calls * each_ms + 10
    gw = b.span("api-gateway", "GET /search", kind="server", start_ms=t, duration_ms=total + 4)
    gcall = b.span("api-gateway", "GET", kind="client", parent=gw, start_ms=t + 1, duration_ms=total + 2,
                   attributes={"peer.service": "catalog-service", "http.request.method": "GET", "url.template": "/search"})
    cat = b.span("catalog-service", "GET /search", kind="server", parent=gcall, start_ms=t + 2,
                 duration_ms=total, version=version)
    for k in range(calls):
        start = t + 12 + k * each_ms
        c = b.span("catalog-service", "GET", kind="client", parent=cat, start_ms=start, duration_ms=each_ms - 0.5,
                   version=version, attributes={"http.request.method": "GET",
                                                "http.url": f"http://inventory:8080/inventory/{1000 + k}"})
        b.span("inventory-service", f"GET /inventory/{1000 + k}", kind="server", parent=c, start_ms=start + 0.2,
               duration_ms=each_ms - 1)
    return gw.trace_id


@pytest.fixture(scope="module")
def case():
    b = SpanBuilder(T0, seed=5)
    for i in range(10):
        _search(b, i * 5000.0, "1.7.9", 1, 40.0)
    for i in range(10):
        _search(b, 60000 + i * 5000.0, "1.8.0", 50, 40.0)
    case = forensics.open_case()
    b.insert(case)
    return case


def test_n_plus_one_shows_as_calls_per_trace_and_time(case):
    r = trace_diff(case, ("service_version = ?", ["1.7.9"]), ("service_version = ?", ["1.8.0"]))
    rows = {x["path"]: x for x in r.dicts()}
    inv = rows[INVENTORY]
    assert (inv["a_traces"], inv["b_traces"]) == (10, 10)
    assert (inv["a_calls_per_trace"], inv["b_calls_per_trace"], inv["delta_calls_per_trace"]) == (1, 50, 49)
    assert inv["a_p50_ms"] == pytest.approx(39) and inv["b_p50_ms"] == pytest.approx(39)
    assert inv["delta_ms_per_trace"] == pytest.approx(49 * 39)
    assert inv["a_trace_pct"] == 100 and inv["depth"] == 2 and inv["service"] == "inventory-service"
    assert sorted(rows) == ["api-gateway:GET /search", CATALOG, INVENTORY]  # client spans fold into callees
    assert r.dicts()[0]["path"] in (INVENTORY, CATALOG, "api-gateway:GET /search")
    assert rows[CATALOG]["delta_calls_per_trace"] == 0
    assert rows[CATALOG]["delta_p50_ms"] == pytest.approx(49 * 40)


def test_groups_by_trace_ids_one_sided_paths_and_top(case):
    old = [t for (t,) in case.sql("SELECT DISTINCT trace_id FROM spans WHERE service_version = '1.7.9'").rows()]
    r = trace_diff(case, old[:3], ("duration_ms > ?", [1e9]), top=2).dicts()
    assert len(r) == 2
    assert all(x["b_traces"] == 0 and x["b_calls_per_trace"] == 0 and x["b_p50_ms"] is None for x in r)
    assert r[0]["a_traces"] == 3


def test_empty_groups_and_bad_selection():
    empty = forensics.open_case()
    assert len(trace_diff(empty, "status = 'error'", "status <> 'error'")) == 0
    with pytest.raises(forensics.UsageError):
        trace_diff(empty, 42, [])
    with pytest.raises(forensics.UsageError):
        trace_diff(empty, "true", "true", top=0)


@pytest.mark.slow
def test_synth_flagship_n_plus_one(tmp_path):
    import forensics.synth as synth

    truth = synth.generate("n_plus_one", tmp_path, traces=300, seed=1)
    exp = next(e for e in truth.expected if e["detector"] == "n_plus_one")
    case = forensics.open_case()
    case.load(tmp_path)
    group = "service = ? AND service_version = ? AND name = ?"
    rows = trace_diff(case, (group, [exp["service"], "1.7.9", exp["operation"]]),
                      (group, [exp["service"], exp["version"], exp["operation"]])).dicts()
    # below the entry spans (whose duration includes everything), the per-item calls changed most
    top = next(r for r in rows if r["depth"] >= 2)
    assert top["path"].endswith(f"{exp['target']}:{exp['target_operation']}")
    assert top["a_calls_per_trace"] == 0
    assert top["b_calls_per_trace"] == pytest.approx(exp["numbers"]["calls_per_request_after"], rel=0.15)
    batch = next(r for r in rows if r["path"].endswith("inventory-service:POST /inventory/batch"))
    assert batch["a_calls_per_trace"] == pytest.approx(exp["numbers"]["calls_per_request_before"])
    assert batch["b_calls_per_trace"] == 0
