"""Plan: every knob a scenario can turn, with the baseline (no fault) as defaults.

Times are seconds from the start of the window (:data:`topology.BASE_TIME`), durations in
milliseconds unless the name says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .topology import Deploy


@dataclass
class Plan:
    """Traffic mix, baseline behaviour and the injected faults of one incident."""

    deploys: list[Deploy] = field(default_factory=list)
    # traffic mix (shares of root requests)
    search_share: float = 0.55
    item_share: float = 0.30
    # /search: items returned per request (normal, clipped at 1) and the N+1 version
    items_mean: float = 50.0
    items_sd: float = 10.0
    n_plus_one_version: str | None = None
    # baseline failures and retries: a failed pricing call is retried once after a backoff
    base_fail_p: float = 0.004
    base_retry_backoff_ms: tuple[float, float] = (100.0, 300.0)
    base_inventory_error_p: float = 0.002
    # retry storm: pricing-service fails from start to end; callers retry with little backoff
    storm_start_s: float | None = None
    storm_end_s: float | None = None
    storm_fail_p: float = 0.0
    storm_timeout_share: float = 0.5
    storm_attempts: int = 4
    storm_backoff_ms: float = 5.0
    client_timeout_ms: float = 500.0
    # bimodal latency: a share of catalog DB acquisitions time out on an exhausted pool
    pool_start_s: float | None = None
    pool_end_s: float | None = None
    pool_share: float = 0.0
    pool_timeout_ms: float = 1000.0
    pool_max: int = 20
    # version regression: pricing canary pods are slower and throw a new error
    canary_version: str | None = None
    canary_latency_x: float = 1.0
    canary_error_p: float = 0.0
    canary_error: str = "NullPointerException in PriceRuleEngine"
    # cache stampede: keys expire together every ttl_s; for window_s after that the hit ratio drops
    ttl_s: float | None = None
    stampede_window_s: float = 0.0
    stampede_hit_ratio: float = 0.85
    stampede_db_x: float = 1.0
    item_hit_ratio: float = 0.85
    search_hit_ratio: float = 0.6
    # poison pill: the first order published after poison_at_s fails in the consumer, redelivered
    poison_at_s: float | None = None
    poison_redeliveries: int = 0
    poison_interval_s: float = 2.0
    poison_error: str = "SerializationException: unknown field 'giftWrap' for schema orders-v3"
    # clock skew: one pod's clock is off by skew_ms (positive: ahead)
    skew_service: str | None = None
    skew_pod: int = 0
    skew_ms: float = 0.0

    def in_storm(self, t_s: float) -> bool:
        return self.storm_start_s is not None and self.storm_start_s <= t_s < (self.storm_end_s or float("inf"))

    def in_pool_exhaustion(self, t_s: float) -> bool:
        return self.pool_start_s is not None and self.pool_start_s <= t_s < (self.pool_end_s or float("inf"))

    def in_stampede(self, t_s: float) -> bool:
        if not self.ttl_s:
            return False
        k = int(t_s // self.ttl_s)
        return k >= 1 and t_s - k * self.ttl_s < self.stampede_window_s

    def stampede_starts_s(self, duration_s: float) -> list[float]:
        if not self.ttl_s:
            return []
        return [k * self.ttl_s for k in range(1, int(duration_s // self.ttl_s) + 1) if k * self.ttl_s < duration_s]
