"""``forensics.synth.generate``: write one synthetic incident (all signals) and its ``truth.json``."""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson

from .. import _progress
from ..errors import UsageError
from .flows import Shop
from .metrics import MetricsAggregator
from .model import Rand
from .scenarios import SCENARIOS, Facts, k8s_events
from .signals import LogWriter, at_ns, deploy_lines, iso, k8s_event_list
from .topology import DURATION_S
from .writers import FORMATS, close_out, make_writer, open_out

#: traces per window at which one trace stands for one request in the metrics
NOMINAL_TRACES = 1_000_000


@dataclass
class Truth:
    """What a synthetic incident contains and what a detector should find in it.

    ``expected`` holds one dict per finding (detector, service, operation, target,
    target_operation, version, start_time, end_time, primary, numbers); ``counts`` the rows
    written per signal; ``files`` the files relative to the output directory.
    """

    scenario: str
    description: str
    seed: int
    traces: int
    format: str
    subtle: bool
    params: dict[str, Any]
    window: dict[str, str]
    sampling_weight: int
    expected: list[dict[str, Any]]
    deploys: list[dict[str, Any]]
    counts: dict[str, int]
    files: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("timings")
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Truth":
        """Read a ``truth.json`` (a file or the directory holding it)."""
        p = os.fspath(path)
        if os.path.isdir(p):
            p = os.path.join(p, "truth.json")
        with open(p, "rb") as fh:
            return cls(**orjson.loads(fh.read()))


def arrival_times_ms(n: int, seed: int) -> np.ndarray:
    """``n`` sorted request arrival times (ms into the window) with a diurnal-ish rate.

    The rate climbs through the window (a morning ramp) with a slower wobble on top."""
    grid = np.linspace(0.0, DURATION_S, 5401)
    x = grid / DURATION_S
    rate = 0.75 + 0.5 * x + 0.12 * np.sin(2 * np.pi * 2.5 * x + 0.7)
    cdf = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)])
    rng = np.random.default_rng([seed, 0xA441])
    u = np.sort(rng.random(n))
    return np.interp(u, cdf / cdf[-1], grid) * 1000.0


def _params(name: str, subtle: bool, params: dict[str, Any]) -> dict[str, Any]:
    sc = SCENARIOS[name]
    unknown = sorted(set(params) - set(sc.defaults))
    if unknown:
        raise UsageError(f"scenario {name!r} has no parameter(s) {unknown}; parameters: {sorted(sc.defaults)}")
    merged = dict(sc.defaults)
    if subtle:
        merged.update(sc.subtle)
    for k, v in params.items():
        merged[k] = type(sc.defaults[k])(v) if sc.defaults[k] is not None else v
    return merged


def generate(scenario: str, out_dir: str | os.PathLike, *, traces: int = 1000, seed: int = 0, format: str = "otlp",
             subtle: bool = False, compress: bool = False, chunk_traces: int = 2000, scrape_interval_s: int = 15,
             progress: bool | None = None, **params: Any) -> Truth:
    """Write a synthetic incident to ``out_dir``: traces, logs, metrics, deploys, k8s events, truth.json.

    Parameters
    ----------
    scenario:
        A name from :data:`SCENARIOS` (``n_plus_one``, ``retry_storm``, ...).
    out_dir:
        Directory to write into (created).
    traces:
        Number of root requests (traces) over the 90-minute window; they are a uniform sample
        of the traffic the metrics count (see ``Truth.sampling_weight``).
    seed:
        Same seed, same arguments → byte-identical files.
    format:
        Trace format: ``otlp`` (Collector file exporter JSON lines), ``jaeger`` (query API JSON)
        ``zipkin`` (v2 JSON), or ``mixed`` (each trace split by service across the three, as when
        teams export to different backends; see ``writers.MIXED_ROUTES``).
    subtle:
        Use the scenario's settings near detector thresholds instead of the obvious ones.
    compress:
        Gzip traces and logs (``.gz``, deterministic headers).
    chunk_traces:
        Traces generated and written per chunk (bounds memory).
    scrape_interval_s:
        Seconds between metric samples (Prometheus scrape interval).
    progress:
        Show a bar (traces written) on stderr; None: only when stderr is a terminal.
    params:
        Scenario parameters overriding the defaults (see ``SCENARIOS[name].defaults``).

    Returns
    -------
    Truth
        Also written to ``out_dir/truth.json``.
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    if format not in FORMATS:
        raise UsageError(f"unknown trace format {format!r}; choose one of: {', '.join(FORMATS)}")
    if traces < 1:
        raise UsageError(f"traces must be at least 1, got {traces}")
    sc = SCENARIOS[scenario]
    p = _params(scenario, subtle, params)
    plan = sc.plan(p)
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    t_start = time.perf_counter()

    arrivals = arrival_times_ms(traces, seed)
    shop = Shop(plan)
    shop.arrivals_s = arrivals / 1000.0
    writer = make_writer(format, out, compress=compress)
    log_fh = open_out(os.path.join(out, "logs.jsonl"), compress)
    logs = LogWriter(log_fh)
    weight = max(1, round(NOMINAL_TRACES / traces))
    if not 1 <= scrape_interval_s <= DURATION_S:
        raise UsageError(f"scrape_interval_s must be between 1 and {DURATION_S} seconds, got {scrape_interval_s}")
    agg = MetricsAggregator(weight=weight, scrape_interval_s=scrape_interval_s, pool_max=plan.pool_max)
    facts = Facts(sc.facts)
    salt = zlib.crc32(scenario.encode())
    with _progress.bar(desc=f"synth {scenario}", total=traces, unit="trace", progress=progress) as shown:
        for c, lo in enumerate(range(0, traces, chunk_traces)):
            shop.start_chunk(Rand(np.random.default_rng([seed, salt, c])))
            for t0 in arrivals[lo:lo + chunk_traces].tolist():
                shop.request(t0)
            writer.write(shop.spans)
            logs.write(shop.logs)
            agg.add(shop.server_obs, shop.client_obs, shop.db_obs, shop.queue_obs, shop.facts.get("pool_timeouts", []))
            facts.add(shop.facts)
            shown.update(min(chunk_traces, traces - lo))
    writer.close()
    close_out(log_fh)
    t_traces = time.perf_counter() - t_start

    with open(os.path.join(out, "metrics.prom"), "wb") as fh:
        samples = agg.write(fh)
    with open(os.path.join(out, "deploys.jsonl"), "wb") as fh:
        fh.write(deploy_lines(plan.deploys))
    k8s = k8s_events(sc, plan, p)
    with open(os.path.join(out, "k8s-events.json"), "wb") as fh:
        fh.write(k8s_event_list(k8s))

    truth = Truth(
        scenario=scenario, description=sc.description, seed=seed, traces=traces, format=format, subtle=subtle,
        params=p, window={"start": iso(at_ns(0)), "end": iso(at_ns(DURATION_S))}, sampling_weight=weight,
        expected=sc.truth(plan, p, facts, shop),
        deploys=[{"time": iso(at_ns(d.at_s)), "service": d.service, "version": d.version,
                  "previous_version": d.from_version, "fraction": d.fraction} for d in plan.deploys],
        counts={"traces": writer.traces, "spans": writer.spans, "logs": logs.lines, "metric_samples": samples,
                "deploys": len(plan.deploys), "k8s_events": len(k8s)},
        files=sorted(writer.files + ["logs.jsonl" + (".gz" if compress else ""), "metrics.prom", "deploys.jsonl",
                                     "k8s-events.json"]),
        timings={"traces_s": round(t_traces, 3), "total_s": round(time.perf_counter() - t_start, 3)},
    )
    with open(os.path.join(out, "truth.json"), "wb") as fh:
        fh.write(truth.to_json())
    return truth
