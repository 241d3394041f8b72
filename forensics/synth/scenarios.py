"""The incident scenarios: each turns parameters into a :class:`Plan` and states its ground truth.

Every scenario has obvious defaults and ``subtle`` settings near the detectors' thresholds;
its ``truth`` function computes the expected findings and their key numbers from facts the
generator recorded while writing the data (so the truth describes the files, not the intent).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .plan import Plan
from .signals import K8sEvent, iso, at_ns, rollout_events
from .topology import DURATION_S, SERVICES, Deploy, pod_names

END_S = float(DURATION_S)


class Facts:
    """Columns of facts recorded per chunk (``Shop.facts``), concatenated on demand."""

    def __init__(self, keep: tuple[str, ...] = ()) -> None:
        self._parts: dict[str, list[list[np.ndarray]]] = {}
        self.keep = keep

    def add(self, facts: dict[str, list[tuple]]) -> None:
        """Keep the chunk's rows of the facts named in ``keep`` (the others are dropped: bounded memory)."""
        for name, rows in facts.items():
            if rows and name in self.keep:
                cols = [np.array(c) for c in zip(*rows)]
                self._parts.setdefault(name, []).append(cols)

    def col(self, name: str, i: int) -> np.ndarray:
        parts = self._parts.get(name, [])
        return np.concatenate([p[i] for p in parts]) if parts else np.array([])

    def rows(self, name: str) -> int:
        return sum(len(p[0]) for p in self._parts.get(name, []))


@dataclass(frozen=True)
class Scenario:
    """A failure mode: parameters (obvious defaults, subtle overrides), plan, truth and k8s events."""

    name: str
    description: str
    defaults: dict[str, Any]
    subtle: dict[str, Any]
    plan: Callable[[dict[str, Any]], Plan]
    truth: Callable[[Plan, dict[str, Any], Facts, Any], list[dict]]
    facts: tuple[str, ...] = ()
    k8s: Callable[[Plan, dict[str, Any]], list[K8sEvent]] = field(default=lambda plan, p: [])


def expected(detector: str, service: str | None, *, operation: str | None = None, target: str | None = None,
             target_operation: str | None = None, version: str | None = None, start_s: float = 0.0,
             end_s: float = END_S, primary: bool = True, **numbers: Any) -> dict:
    """One finding a detector should report (times as RFC 3339 UTC)."""
    return {"detector": detector, "service": service, "operation": operation, "target": target,
            "target_operation": target_operation, "version": version, "start_time": iso(at_ns(start_s)),
            "end_time": iso(at_ns(end_s)), "primary": primary,
            "numbers": {k: _clean(v) for k, v in numbers.items()}}


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else round(float(v), 3)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


BENIGN = Deploy("order-worker", "1.4.3", 20 * 60, "order-worker 1.4.3: log format tweak (no behaviour change)")


# ----------------------------------------------------------------------------- n_plus_one
def _npo_plan(p: dict) -> Plan:
    deploy = Deploy("catalog-service", p["version"], p["deploy_at_s"],
                    f"catalog-service {p['version']}: per-item stock badges on search results", rollout_s=p["rollout_s"])
    return Plan(deploys=[deploy, BENIGN], items_mean=p["items_mean"], items_sd=p["items_sd"], n_plus_one_version=p["version"])


def _npo_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    version, calls, dur, status = (facts.col("search", i) for i in (1, 3, 4, 5))
    old = version == SERVICES["catalog-service"].version
    new = version == p["version"]
    nums = dict(calls_per_request_before=_pct(calls[old], 50), calls_per_request_after=_pct(calls[new], 50),
                calls_per_request_after_min=float(calls[new].min()) if new.any() else None,
                calls_per_request_after_max=float(calls[new].max()) if new.any() else None,
                p99_before_ms=_pct(dur[old], 99), p99_after_ms=_pct(dur[new], 99),
                error_rate_after=float((status[new] >= 500).mean()) if new.any() else None,
                requests_before=int(old.sum()), requests_after=int(new.sum()))
    start = p["deploy_at_s"]
    return [
        expected("n_plus_one", "catalog-service", operation="GET /search", target="inventory-service",
                 target_operation="GET /inventory/{id}", version=p["version"], start_s=start, **nums),
        expected("version_regression", "catalog-service", operation="GET /search", version=p["version"], start_s=start,
                 primary=False, p99_before_ms=nums["p99_before_ms"], p99_after_ms=nums["p99_after_ms"],
                 baseline_version=SERVICES["catalog-service"].version),
    ]


# ----------------------------------------------------------------------------- retry_storm
def _storm_plan(p: dict) -> Plan:
    return Plan(deploys=[BENIGN], storm_start_s=p["start_s"], storm_end_s=p["end_s"], storm_fail_p=p["fail_p"],
                storm_attempts=p["attempts"], storm_backoff_ms=p["backoff_ms"])


def _storm_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    t, caller, attempts, op = (facts.col("pricing_calls", i) for i in (0, 1, 2, 4))
    during = (t >= p["start_s"]) & (t < p["end_s"])
    before = t < p["start_s"]
    arr = shop.arrivals_s
    inbound_before = float(((arr < p["start_s"]).sum()) / p["start_s"])
    inbound_during = float(((arr >= p["start_s"]) & (arr < p["end_s"])).sum() / (p["end_s"] - p["start_s"]))
    out_before = float(attempts[before].sum() / p["start_s"])
    out_during = float(attempts[during].sum() / (p["end_s"] - p["start_s"]))
    common = dict(attempts_per_call_before=float(attempts[before].mean()) if before.any() else None,
                  attempts_per_call_during=float(attempts[during].mean()) if during.any() else None,
                  max_attempts=p["attempts"], outbound_rps_before=out_before, outbound_rps_during=out_during,
                  inbound_rps_before=inbound_before, inbound_rps_during=inbound_during,
                  outbound_over_inbound_growth=(out_during / inbound_during) / (out_before / inbound_before)
                  if out_before and inbound_during and inbound_before else None,
                  rates_are="per sampled trace (multiply by sampling_weight for full traffic)")
    out = []
    for svc, op_name, tgt_op, primary in (("catalog-service", "GET /search", "POST /prices/batch", True),
                                     ("catalog-service", "GET /item/{id}", "GET /prices/{id}", False),
                                     ("api-gateway", "POST /orders", "POST /quote", False)):
        m = during & (caller == svc) & (op == op_name)
        out.append(expected("retry_storm", svc, operation=op_name, target="pricing-service", target_operation=tgt_op,
                            start_s=p["start_s"], end_s=p["end_s"], primary=primary,
                            caller_attempts_per_call=float(attempts[m].mean()) if m.any() else None,
                            resend_count_attribute=svc == "catalog-service", **common))
    return out


def _storm_k8s(plan: Plan, p: dict) -> list[K8sEvent]:
    pods = pod_names("pricing-service", SERVICES["pricing-service"].version, SERVICES["pricing-service"].replicas)
    evs = []
    for i, pod in enumerate(pods[:4]):
        t = p["start_s"] + 20 + 30 * i
        evs += [K8sEvent(t, "Pod", pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                         "kubelet", type="Warning", count=12 + i, last_s=p["end_s"] - 60),
                K8sEvent(t + 40, "Pod", pod, "BackOff", "Back-off restarting failed container pricing-service in pod "
                         f"{pod}_shop({i})", "kubelet", type="Warning", count=5 + i, last_s=p["end_s"] - 30)]
    return evs


# ----------------------------------------------------------------------------- bimodal_latency
def _pool_plan(p: dict) -> Plan:
    return Plan(deploys=[BENIGN], pool_start_s=p["start_s"], pool_end_s=p["end_s"], pool_share=p["share"],
                pool_timeout_ms=p["timeout_ms"], pool_max=p["pool_max"])


def _pool_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    t, wait = facts.col("pool_timeouts", 0), facts.col("pool_timeouts", 1)
    dbt = facts.col("catalog_db", 0)
    in_window_db = int(((dbt >= p["start_s"]) & (dbt < p["end_s"])).sum())
    nums = dict(timeout_ms=p["timeout_ms"], timed_out_requests=int(len(t)),
                timed_out_share_of_db_requests=len(t) / (len(t) + in_window_db) if len(t) + in_window_db else None,
                wait_ms_min=float(wait.min()) if len(wait) else None, wait_ms_max=float(wait.max()) if len(wait) else None,
                pool_max=p["pool_max"], error_message=shop.pool_error)
    return [expected("bimodal_latency", "catalog-service", operation=op, start_s=p["start_s"], end_s=p["end_s"],
                     primary=op == "GET /item/{id}", **nums) for op in ("GET /item/{id}", "GET /search")]


# ----------------------------------------------------------------------------- version_regression
def _canary_plan(p: dict) -> Plan:
    deploy = Deploy("pricing-service", p["version"], p["deploy_at_s"], f"pricing-service {p['version']} canary "
                    f"({p['fraction']:.0%} of pods): new PriceRuleEngine", fraction=p["fraction"], rollout_s=30)
    return Plan(deploys=[deploy, BENIGN], canary_version=p["version"], canary_latency_x=p["latency_x"],
                canary_error_p=p["error_p"])


def _canary_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    t, version, dur, npe = (facts.col("pricing", i) for i in range(4))
    new = version == p["version"]
    old = (version == SERVICES["pricing-service"].version) & (t >= p["deploy_at_s"])
    return [expected("version_regression", "pricing-service", version=p["version"], start_s=p["deploy_at_s"],
                     baseline_version=SERVICES["pricing-service"].version, canary_fraction=p["fraction"],
                     p50_baseline_ms=_pct(dur[old], 50), p50_canary_ms=_pct(dur[new], 50),
                     p99_baseline_ms=_pct(dur[old], 99), p99_canary_ms=_pct(dur[new], 99),
                     error_rate_canary=float(npe[new].mean()) if new.any() else None,
                     new_error_count_baseline=int(npe[old].sum()), new_error_count_canary=int(npe[new].sum()),
                     new_error=plan.canary_error, requests_canary=int(new.sum()), requests_baseline=int(old.sum()))]


# ----------------------------------------------------------------------------- cache_stampede
def _stampede_plan(p: dict) -> Plan:
    return Plan(deploys=[BENIGN], ttl_s=p["ttl_s"], stampede_window_s=p["window_s"], stampede_hit_ratio=p["hit_ratio"],
                stampede_db_x=p["db_latency_x"])


def _stampede_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    t = facts.col("catalog_db", 0)
    starts = plan.stampede_starts_s(END_S)
    inside = np.zeros(len(t), dtype=bool)
    for s in starts:
        inside |= (t >= s) & (t < s + p["window_s"])
    secs_in = len(starts) * p["window_s"]
    rate_in = inside.sum() / secs_in if secs_in else float("nan")
    rate_out = (~inside).sum() / (END_S - secs_in)
    return [expected("cache_stampede", "catalog-service", target="postgres", target_operation="SELECT shop.products",
                     start_s=starts[0] if starts else 0.0, ttl_s=p["ttl_s"], window_s=p["window_s"],
                     expiry_times=[iso(at_ns(s)) for s in starts], db_calls_per_s_in_windows=rate_in,
                     db_calls_per_s_outside=rate_out, spike_ratio=rate_in / rate_out if rate_out else None,
                     hit_ratio_in_windows=p["hit_ratio"])]


# ----------------------------------------------------------------------------- poison_pill
def _poison_plan(p: dict) -> Plan:
    return Plan(deploys=[BENIGN], poison_at_s=p["at_s"], poison_redeliveries=p["redeliveries"],
                poison_interval_s=p["interval_s"])


def _poison_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    info = shop.poison
    if not info:
        return []
    return [expected("poison_pill", "order-worker", operation="orders process", target="kafka", target_operation="orders",
                     start_s=info["from_ms"] / 1000, end_s=min(info["until_ms"] / 1000, END_S),
                     message_id=info["message_id"], deliveries=info["deliveries"], partition=info["partition"],
                     offset=info["offset"], trace_id=info["trace_id"], error=plan.poison_error)]


# ----------------------------------------------------------------------------- clock_skew
def _skew_plan(p: dict) -> Plan:
    return Plan(deploys=[BENIGN], skew_service="catalog-service", skew_pod=p["pod"], skew_ms=p["skew_ms"])


def _skew_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    return [expected("clock_skew", "catalog-service", skew_ms=p["skew_ms"], host=shop.skew_host,
                     direction="ahead" if p["skew_ms"] > 0 else "behind",
                     effect="child spans on other hosts start before their catalog-service parents"
                     if p["skew_ms"] > 0 else "catalog-service spans start before their parents")]


# ----------------------------------------------------------------------------- clean
def _clean_plan(p: dict) -> Plan:
    return Plan(deploys=[Deploy("pricing-service", "2.3.2", p["deploy_at_s"], "pricing-service 2.3.2: dependency bumps"),
                         BENIGN])


def _clean_truth(plan: Plan, p: dict, facts: Facts, shop: Any) -> list[dict]:
    return []


def _deploy_k8s(plan: Plan, p: dict) -> list[K8sEvent]:
    return [e for d in plan.deploys for e in rollout_events(d)]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("n_plus_one", "catalog-service 1.7.9 -> 1.8.0: /search calls inventory-service once per item instead of once "
             "per request (the guide's worked example)",
             {"version": "1.8.0", "deploy_at_s": 45 * 60.0, "rollout_s": 120.0, "items_mean": 50.0, "items_sd": 10.0},
             {"items_mean": 7.0, "items_sd": 1.5}, _npo_plan, _npo_truth, ("search",)),
    Scenario("retry_storm", "pricing-service starts failing; callers retry up to 4 times with almost no backoff",
             {"start_s": 40 * 60.0, "end_s": 70 * 60.0, "fail_p": 0.6, "attempts": 4, "backoff_ms": 5.0},
             {"fail_p": 0.15, "attempts": 3}, _storm_plan, _storm_truth, ("pricing_calls",), _storm_k8s),
    Scenario("bimodal_latency", "a share of catalog-service requests waits on an exhausted connection pool and times out",
             {"start_s": 35 * 60.0, "end_s": 75 * 60.0, "share": 0.25, "timeout_ms": 1000.0, "pool_max": 20},
             {"share": 0.06}, _pool_plan, _pool_truth, ("pool_timeouts", "catalog_db")),
    Scenario("version_regression", "pricing-service 2.4.0 canary on 10% of pods: slower, and a new NullPointerException",
             {"version": "2.4.0", "deploy_at_s": 30 * 60.0, "fraction": 0.1, "latency_x": 3.0, "error_p": 0.05},
             {"latency_x": 1.4, "error_p": 0.01}, _canary_plan, _canary_truth, ("pricing",)),
    Scenario("cache_stampede", "catalog cache keys expire together every 10 minutes; DB load spikes after each expiry",
             {"ttl_s": 600.0, "window_s": 20.0, "hit_ratio": 0.0, "db_latency_x": 3.0},
             {"window_s": 10.0, "hit_ratio": 0.4, "db_latency_x": 1.5}, _stampede_plan, _stampede_truth, ("catalog_db",)),
    Scenario("poison_pill", "one order message fails deserialization in order-worker and is redelivered over and over",
             {"at_s": 30 * 60.0, "redeliveries": 400, "interval_s": 2.0},
             {"redeliveries": 6, "interval_s": 5.0}, _poison_plan, _poison_truth),
    Scenario("clock_skew", "one catalog-service pod's clock is 250 ms ahead",
             {"skew_ms": 250.0, "pod": 1}, {"skew_ms": 15.0}, _skew_plan, _skew_truth),
    Scenario("clean", "no fault: legitimate fan-out, batch calls, small per-variant lookups, occasional retries, a "
             "benign deploy", {"deploy_at_s": 50 * 60.0}, {}, _clean_plan, _clean_truth),
)}


def k8s_events(scenario: Scenario, plan: Plan, params: dict) -> list[K8sEvent]:
    """Rollout events of the plan's deploys plus the scenario's own events."""
    return _deploy_k8s(plan, params) + scenario.k8s(plan, params)
