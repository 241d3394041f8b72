"""Labelled fault injections for root-cause ranking (issue #20).

Each case runs the whole application (every service behind a TCP proxy, OTLP traces, JSON
logs, OTLP process metrics every 2 s), sends a steady request mix, and injects one fault into
one service half-way:

=============== ===============================================================================
fault           what is done at the onset
=============== ===============================================================================
delay           the proxy in front of the service delays each of its responses by 150 ms: only
                its callers' client spans see it, not its own server spans
cpu_contention  two busy loops start in the service's container: from the start of the case the
                service runs in a cgroup with a CPU limit of 0.5 CPU (a CFS quota, as Kubernetes
                sets a container's limit), which the hogs then use up, so the service is
                throttled with them (:mod:`realapp.cgroup`; needs root)
cpu_consumption the service burns 25 ms of CPU per request (inside its server spans)
exception       30% of the service's requests raise (500, propagated by its callers)
wrong_value     50% of the service's responses carry a wrong value with status 200; the callers
                log a warning and mask it (fall back, or call again / call another service)
=============== ===============================================================================

Each case directory holds the capture (``bodies/``, ``logs/``, ``metrics/``) and a
``truth.json`` naming the service, the fault, the onset and the fault-free and faulty windows;
``index.json`` lists the cases. ``python -m realapp faults --out DIR [--cases ID,...]``.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from .capture import Capture, versions
from .scenarios import request_mix
from .cgroup import CpuLimit
from .stack import Options, Stack, iso, start_hog, stop_hog

TARGETS = ("catalog-service", "inventory-service", "pricing-service", "fleet-service", "device-api")
FAULTS = ("delay", "cpu_contention", "cpu_consumption", "exception", "wrong_value")
REPETITIONS = 1
#: seconds of traffic before and after the onset
BASELINE_S = 15.0
FAULTY_S = 15.0
DELAY_MS = 150.0
BURN_MS = 25.0
ERROR_RATE = 0.3
BAD_DATA_RATE = 0.5
#: CPUs the cpu_contention target's container (and the hogs started in it) may use
CPU_LIMIT = 0.5
HOGS = 2

#: who masks a service's wrong values, and how (for truth.json)
MASKED_BY = {
    "catalog-service": "api-gateway: 'catalog returned a product without a price; asking pricing-service' "
                       "(extra calls to pricing-service)",
    "inventory-service": "catalog-service: 'inventory returned an invalid stock level; assuming in stock' and "
                         "'... looking them up one by one' (extra GET /stock/<sku> calls)",
    "pricing-service": "catalog-service: 'pricing returned no price; using the list price'; api-gateway: "
                       "'pricing returned an invalid quote; pricing items one by one' (extra calls)",
    "fleet-service": "api-gateway: 'fleet status incomplete; asking again' (a second call to fleet-service)",
    "device-api": "fleet-service: 'device returned no battery level; asking again' (a second call to device-api)",
}


def case_ids() -> list[str]:
    return [f"{svc}.{fault}.{rep}" for svc in TARGETS for fault in FAULTS for rep in range(1, REPETITIONS + 1)]


def _onset(st: Stack, service: str, fault: str, limit: CpuLimit | None) -> tuple[dict[str, Any], Callable[[], None]]:
    """Inject ``fault`` into ``service`` (``limit``: the service's container, cpu_contention);
    returns (parameters, undo)."""
    if fault == "delay":
        st.proxies[service].delay_ms = DELAY_MS
        return {"delay_ms": DELAY_MS, "where": "TCP proxy in front of the service (responses)"}, lambda: None
    if fault == "cpu_contention":
        assert limit is not None
        hogs = [start_hog(FAULTY_S + 30) for _ in range(HOGS)]
        for h in hogs:
            limit.add(h.pid)
        before = limit.throttled()

        def undo() -> None:
            params["throttled_periods"] = limit.throttled()["nr_throttled"] - before["nr_throttled"]
            for h in hogs:
                stop_hog(h)

        params = {"hogs": HOGS, "cpu_limit": CPU_LIMIT, "where": "busy loops in the service's cgroup (CFS quota)",
                  "throttled_periods_baseline": before["nr_throttled"]}
        return params, undo
    if fault == "cpu_consumption":
        st.control(service, cpu_burn_ms=BURN_MS)
        return {"cpu_burn_ms_per_request": BURN_MS}, lambda: None
    if fault == "exception":
        st.control(service, error_rate=ERROR_RATE)
        return {"error_rate": ERROR_RATE, "exception": "realapp.apps.InjectedFault"}, lambda: None
    if fault == "wrong_value":
        st.control(service, bad_data_rate=BAD_DATA_RATE)
        return {"bad_data_rate": BAD_DATA_RATE, "masked_by": MASKED_BY[service]}, lambda: None
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")


def run_case(out: Path, work: Path, case: str) -> dict[str, Any]:
    service, fault, rep = case.split(".")
    seed = (TARGETS.index(service) * 10 + FAULTS.index(fault)) * 10 + int(rep)
    opt = Options(knobs={"fleet-service": {"fleet_size": 4}}, proxies=True, metrics_interval_ms=2000, gzip=True)
    calls = request_mix(2000, seed=seed)
    with Stack(work, opt) as st, ExitStack() as container:
        limit = None
        if fault == "cpu_contention":  # the service's container and its CPU limit, from the start
            limit = container.enter_context(CpuLimit(CPU_LIMIT))
            limit.add(st.pid(service))
        st.run_mix(calls[:12], concurrency=2)  # warm-up: connections, caches
        t_base = time.time_ns()
        base_codes = st.run_mix(calls[12:1000], concurrency=2, pace_s=0.1, seconds=BASELINE_S)
        t_onset = time.time_ns()
        params, undo = _onset(st, service, fault, limit)
        try:
            fault_codes = st.run_mix(calls[1000:], concurrency=2, pace_s=0.1, seconds=FAULTY_S)
        finally:
            undo()
        t_end = time.time_ns()
    cap = Capture(out, case)  # a case directory is one capture (no variants)
    spans = cap.all_signals(st, cap.dir)
    truth = {
        "case": case, "issue": 20, "service": service, "fault": fault, "repetition": int(rep),
        "onset": iso(t_onset),
        "baseline": {"start": iso(t_base), "end": iso(t_onset)},
        "faulty": {"start": iso(t_onset), "end": iso(t_end)},
        "parameters": params,
        "expected": {"rank_first": service,
                     "note": "the injected service is the root cause; its callers show symptoms"},
        "facts": {"requests_baseline": len(base_codes), "requests_faulty": len(fault_codes),
                  "errors_baseline": sum(1 for c in base_codes if c >= 500 or c < 0),
                  "errors_faulty": sum(1 for c in fault_codes if c >= 500 or c < 0),
                  "spans": len(spans), "services": sorted({s.service for s in spans})},
        "traffic": "api-gateway: products 50%, search 20%, checkout 15%, fleet status 15% (fleets of 4 devices); "
                   "2 clients, 0.1 s pause between a client's calls; warm-up requests before the baseline start",
        "regenerate": f"python -m realapp faults --out tests/data/realapp --cases {case}",
        "produced_with": versions(),
    }
    truth["effects"] = measure(cap.dir, truth)
    (cap.dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def generate(out: Path, work: Path, cases: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    known = case_ids()
    for case in cases or known:
        if case not in known:
            raise SystemExit(f"unknown case {case!r}; cases are SERVICE.FAULT.REP, e.g. {known[0]}")
        t0 = time.monotonic()
        truth = run_case(out, work / case, case)
        print(f"faults: {case}: {truth['facts']['spans']} spans, {time.monotonic() - t0:.0f} s", flush=True)
    write_index(out)


def write_index(out: Path) -> None:
    """``index.json``: every case directory under ``out`` (service, fault, onset)."""
    index = []
    for p in sorted(out.glob("*/truth.json")):
        t = json.loads(p.read_text())
        index.append({"case": t["case"], "service": t["service"], "fault": t["fault"], "onset": t["onset"],
                      "dir": p.parent.name})
    (out / "index.json").write_text(json.dumps({"cases": index, "targets": list(TARGETS), "faults": list(FAULTS),
                                                "read_me": "realapp/README.md"}, indent=2) + "\n")


# ------------------------------------------------------------------------------ what the fault did
def _ns(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


def _cpu_rate(path: Path, t0: int, t1: int) -> float | None:
    """CPU seconds per second (user + system) of a process between t0 and t1 (ns), from its
    cumulative ``process.cpu.time`` points in a varint-delimited OTLP metrics stream."""
    import gzip

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    data = gzip.decompress(path.read_bytes())
    totals: dict[int, float] = {}
    pos = 0
    while pos < len(data):
        n = shift = 0
        while True:
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        req = ExportMetricsServiceRequest.FromString(data[pos:pos + n])
        pos += n
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "process.cpu.time":
                        for p in m.sum.data_points:
                            totals[p.time_unix_nano] = totals.get(p.time_unix_nano, 0.0) + p.as_double
    inside = sorted((t, v) for t, v in totals.items() if t0 <= t <= t1)
    if len(inside) < 2:
        return None
    (ta, va), (tb, vb) = inside[0], inside[-1]
    return round((vb - va) / ((tb - ta) / 1e9), 4)


def measure(case_dir: Path, truth: dict[str, Any]) -> dict[str, Any]:
    """What the fault changed, measured on the capture: the target's own server latency and
    origin errors, its callers' client latency toward it and warnings, calls to it per request,
    its process CPU rate; each ``{"before": ..., "after": ...}`` (fault-free vs faulty window)."""
    import gzip
    import statistics

    from .otlp import read_spans

    target = truth["service"]
    t0, onset, t1 = _ns(truth["baseline"]["start"]), _ns(truth["onset"]), _ns(truth["faulty"]["end"])
    spans = read_spans(sorted(case_dir.glob("bodies/*/traces-*.binpb*")))
    by_id = {s.span_id: s for s in spans}
    parents_of_errors = {s.parent_span_id for s in spans if s.status == 2}

    def period(ns: int) -> str | None:
        return "before" if t0 <= ns < onset else "after" if onset <= ns <= t1 else None

    def split(items: list[tuple[int, float]]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"before": [], "after": []}
        for ns, v in items:
            p = period(ns)
            if p:
                out[p].append(v)
        return out

    def p50(d: dict[str, list[float]]) -> dict[str, float | None]:
        return {k: (round(statistics.median(v), 3) if v else None) for k, v in d.items()}

    server = [s for s in spans if s.service == target and s.kind == "server"]
    calls = [(by_id[s.parent_span_id], s) for s in server if s.parent_span_id in by_id]
    callers = sorted({c.service for c, _ in calls})
    client_lat = {c: p50(split([(cl.start_ns, cl.duration_ms) for cl, _ in calls if cl.service == c])) for c in callers}
    origin = split([(s.start_ns, 1.0) for s in server if s.status == 2 and s.span_id not in parents_of_errors])
    roots = split([(s.start_ns, 1.0) for s in spans if s.parent_span_id is None and s.service == "api-gateway"])
    per_req = {k: round(len(split([(cl.start_ns, 1.0) for cl, _ in calls])[k]) / max(1, len(roots[k])), 3)
               for k in ("before", "after")}
    warnings: dict[str, int] = {"before": 0, "after": 0}
    for svc in callers:
        path = case_dir / "logs" / f"{svc}.jsonl.gz"
        for line in gzip.decompress(path.read_bytes()).splitlines():
            doc = json.loads(line)
            p = period(_ns(doc["timestamp"]))
            if p and doc["level"] == "warning" and doc.get("logger") == "app":
                warnings[p] += 1
    metrics = case_dir / "metrics" / f"{target}.binpb.gz"
    return {
        "target_server_p50_ms": p50(split([(s.start_ns, s.duration_ms) for s in server])),
        "target_server_spans": {k: len(v) for k, v in split([(s.start_ns, 1.0) for s in server]).items()},
        "target_origin_error_spans": {k: len(v) for k, v in origin.items()},
        "callers": callers,
        "caller_client_p50_ms": client_lat,
        "calls_to_target_per_request": per_req,
        "caller_app_warnings": warnings,
        "target_cpu_seconds_per_second": {"before": _cpu_rate(metrics, t0, onset), "after": _cpu_rate(metrics, onset, t1)},
    }
