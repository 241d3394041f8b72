"""Prometheus-style metrics of a synthetic incident, written as OpenMetrics text with timestamps.

The file is what ``promtool tsdb create-blocks-from openmetrics`` backfills: each metric
family once (``# HELP``/``# TYPE``/``# UNIT``), its series one after another, each series'
samples in time order (one every ``scrape_interval_s``), timestamps in Unix seconds,
histogram bucket samples with exemplars (``# {trace_id="...",span_id="..."} value time``),
and ``# EOF`` at the end.

Traces are a uniform sample of the traffic; metrics count every request: each observed
request stands for ``weight`` requests (``weight`` = 1 at one million traces per window).
Observations are aggregated per chunk with numpy into fixed per-interval arrays, so memory
does not grow with the number of traces.
"""
from __future__ import annotations

from typing import IO

import numpy as np

from .topology import BASE_NS, DURATION_S

#: histogram bucket upper bounds, seconds
LE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
POOLS = {"catalog-service": ("catalog-db", 20), "inventory-service": ("inventory-db", 30),
         "pricing-service": ("pricing-db", 10), "order-worker": ("orders-db", 10)}


def _labels(names: tuple[str, ...], values: tuple) -> str:
    return ",".join(f'{n}="{v}"' for n, v in zip(names, values))


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class MetricsAggregator:
    """Accumulates observations per scrape interval and writes the OpenMetrics file."""

    def __init__(self, *, weight: int = 1, scrape_interval_s: int = 15, pool_max: int | None = None) -> None:
        self.weight = weight
        self.step = scrape_interval_s
        self.n = int(DURATION_S // scrape_interval_s)
        self.pools = dict(POOLS)
        if pool_max is not None:
            self.pools["catalog-service"] = ("catalog-db", pool_max)
        self.hist_keys: dict[tuple, int] = {}
        self.hist: list[np.ndarray] = []      # per series: (n, len(LE) + 1) counts, last column +Inf
        self.hist_sum: list[np.ndarray] = []
        self.exemplars: dict[tuple[int, int, int], tuple[str, str, float, float]] = {}
        self.counters: dict[str, dict[tuple, np.ndarray]] = {"server": {}, "client": {}, "consumer": {}}
        self.db_ms = {s: np.zeros(self.n) for s in self.pools}
        self.pool_waits = {s: np.zeros(self.n) for s in self.pools}
        self.queue = np.zeros((6, self.n))

    def _bucket(self, t_ms: np.ndarray) -> np.ndarray:
        return np.floor(t_ms / (self.step * 1000.0)).astype(np.int64)

    def _count(self, family: str, key: tuple, buckets: np.ndarray) -> None:
        arr = self.counters[family].setdefault(key, np.zeros(self.n))
        np.add.at(arr, buckets, self.weight)

    def add(self, server_obs: list[tuple], client_obs: list[tuple], db_obs: list[tuple], queue_obs: list[tuple],
            pool_waits: list[tuple]) -> None:
        """Aggregate one chunk's observations (see :class:`forensics.synth.flows.Shop`)."""
        if server_obs:
            t = np.array([o[0] for o in server_obs])
            b = self._bucket(t)
            keep = (b >= 0) & (b < self.n)
            dur_s = np.array([o[6] for o in server_obs]) / 1000.0
            le_idx = np.searchsorted(np.array(LE), dur_s, side="left")
            series = np.empty(len(server_obs), dtype=np.int64)
            for i, o in enumerate(server_obs):
                if o[3] == "process":
                    key = (o[1], o[2], o[4], "ok" if o[5] < 500 else "error")
                    series[i] = -1
                    if keep[i]:
                        self._count("consumer", key, b[i:i + 1])
                    continue
                hk = (o[1], o[2], o[3], o[4])
                idx = self.hist_keys.get(hk)
                if idx is None:
                    idx = self.hist_keys[hk] = len(self.hist)
                    self.hist.append(np.zeros((self.n, len(LE) + 1)))
                    self.hist_sum.append(np.zeros(self.n))
                series[i] = idx
            for key, grp in _groups([(o[1], o[2], o[3], o[4], str(o[5])) for o in server_obs], keep & (series >= 0)):
                self._count("server", key, b[grp])
            sel = np.nonzero(keep & (series >= 0))[0]
            for idx in np.unique(series[sel]):
                rows = sel[series[sel] == idx]
                np.add.at(self.hist[idx], (b[rows], le_idx[rows]), self.weight)
                np.add.at(self.hist_sum[idx], b[rows], dur_s[rows] * self.weight)
            # exemplar: the last observation of each (series, interval, bucket)
            for i in sel:
                self.exemplars[(int(series[i]), int(b[i]), int(le_idx[i]))] = (
                    server_obs[i][7], server_obs[i][8], float(dur_s[i]), server_obs[i][0])
        if client_obs:
            b = self._bucket(np.array([o[0] for o in client_obs]))
            keep = (b >= 0) & (b < self.n)
            for key, grp in _groups([(o[1], o[2], o[3], o[4], str(o[5]) if o[5] else "timeout") for o in client_obs], keep):
                self._count("client", key, b[grp])
        if db_obs:
            b = self._bucket(np.array([o[0] for o in db_obs]))
            d = np.array([o[2] for o in db_obs])
            keep = (b >= 0) & (b < self.n)
            for (service,), grp in _groups([(o[1],) for o in db_obs], keep):
                if service in self.db_ms:
                    np.add.at(self.db_ms[service], b[grp], d[grp] * self.weight)
        if pool_waits:
            b = self._bucket(np.array([w[0] * 1000.0 for w in pool_waits]))
            keep = (b >= 0) & (b < self.n)
            np.add.at(self.pool_waits["catalog-service"], b[keep], 1)
        if queue_obs:
            b = self._bucket(np.array([q[0] for q in queue_obs]))
            part = np.array([q[1] for q in queue_obs])
            sign = np.array([q[2] for q in queue_obs], dtype=float)
            keep = (b >= 0) & (b < self.n)
            np.add.at(self.queue, (part[keep], b[keep]), sign[keep] * self.weight)

    # ------------------------------------------------------------------ output
    def write(self, fh: IO[bytes]) -> int:
        """Write the OpenMetrics text; returns the number of sample lines."""
        times = [(BASE_NS // 1_000_000_000) + (i + 1) * self.step for i in range(self.n)]
        out: list[str] = []
        self._write_counter(out, "http_server_requests", "HTTP requests handled.", "server",
                            ("service", "version", "method", "route", "status"), times)
        self._write_histogram(out, times)
        self._write_counter(out, "http_client_requests", "HTTP requests sent to dependencies (each attempt).", "client",
                            ("service", "peer_service", "method", "route", "status"), times)
        self._write_counter(out, "kafka_consumer_records_processed", "Kafka records processed.", "consumer",
                            ("service", "version", "topic", "outcome"), times)
        self._write_pools(out, times)
        self._write_queue(out, times)
        out.append("# EOF")
        fh.write(("\n".join(out) + "\n").encode())
        return sum(1 for line in out if not line.startswith("#"))

    def _write_counter(self, out: list[str], name: str, help_: str, family: str, names: tuple[str, ...],
                       times: list[int]) -> None:
        out += [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
        for key in sorted(self.counters[family]):
            cum = np.cumsum(self.counters[family][key])
            first = int(np.argmax(cum > 0))
            labels = _labels(("job",) + names, (key[0],) + key)
            out += [f"{name}_total{{{labels}}} {_num(v)} {t}" for v, t in zip(cum[first:].tolist(), times[first:])]

    def _write_histogram(self, out: list[str], times: list[int]) -> None:
        name = "http_server_request_duration_seconds"
        out += [f"# HELP {name} Duration of HTTP server requests.", f"# TYPE {name} histogram", f"# UNIT {name} seconds"]
        les = [repr(x) for x in LE] + ["+Inf"]
        for key, idx in sorted(self.hist_keys.items()):
            counts = np.cumsum(np.cumsum(self.hist[idx], axis=0), axis=1)  # cumulative in time and in le
            sums = np.cumsum(self.hist_sum[idx])
            first = int(np.argmax(counts[:, -1] > 0))
            base = _labels(("job", "service", "version", "method", "route"), (key[0],) + key)
            for b in range(first, self.n):
                t = times[b]
                for j, le in enumerate(les):
                    line = f'{name}_bucket{{{base},le="{le}"}} {_num(counts[b, j])} {t}'
                    ex = self.exemplars.get((idx, b, j))
                    if ex:
                        line += f' # {{trace_id="{ex[0]}",span_id="{ex[1]}"}} {ex[2]:.6f} {ex[3] / 1000 + BASE_NS / 1e9:.3f}'
                    out.append(line)
                out.append(f"{name}_count{{{base}}} {_num(counts[b, -1])} {t}")
                out.append(f"{name}_sum{{{base}}} {sums[b]:.6f} {t}")

    def _write_pools(self, out: list[str], times: list[int]) -> None:
        used, mx = "db_client_connections_usage", "db_client_connections_max"
        out += [f"# HELP {used} Connections in use in the pool.", f"# TYPE {used} gauge"]
        for service, (pool, size) in sorted(self.pools.items()):
            in_use = np.minimum(np.round(self.db_ms[service] / (self.step * 1000.0) * 4 + 1), size)
            in_use[self.pool_waits[service] > 0] = size
            labels = _labels(("job", "service", "pool_name", "state"), (service, service, pool, "used"))
            out += [f"{used}{{{labels}}} {_num(v)} {t}" for v, t in zip(in_use.tolist(), times)]
        out += [f"# HELP {mx} Maximum connections the pool allows.", f"# TYPE {mx} gauge"]
        for service, (pool, size) in sorted(self.pools.items()):
            labels = _labels(("job", "service", "pool_name"), (service, service, pool))
            out += [f"{mx}{{{labels}}} {size} {t}" for t in times]

    def _write_queue(self, out: list[str], times: list[int]) -> None:
        name = "kafka_consumergroup_lag"
        out += [f"# HELP {name} Current approximate lag of a consumer group at topic/partition.", f"# TYPE {name} gauge"]
        lag = np.maximum(np.cumsum(self.queue, axis=1), 0)
        for p in range(lag.shape[0]):
            labels = _labels(("job", "consumergroup", "topic", "partition"), ("kafka-exporter", "order-worker", "orders", p))
            out += [f"{name}{{{labels}}} {_num(v)} {t}" for v, t in zip(lag[p].tolist(), times)]


def _groups(keys: list[tuple], mask: np.ndarray):
    """(key, indices) for each distinct key among rows where ``mask`` holds, in first-seen order."""
    index: dict[tuple, list[int]] = {}
    for i in np.nonzero(mask)[0].tolist():
        index.setdefault(keys[i], []).append(i)
    return [(k, np.array(v, dtype=np.int64)) for k, v in index.items()]
