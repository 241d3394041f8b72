"""A small shop shaped like a Python app traced by the OpenTelemetry SDK, with injected faults.

For the cause-ranking tests: spans as the Flask, requests and sqlite3 instrumentations write
them (server spans named ``GET /products/<id>``, client spans named ``GET`` with only
``http.url``, ``sqlite`` statements in-process), Python ``logging`` lines with trace context,
per-pod process metrics, noisy latencies (log-normal, with the occasional scheduler hiccup and
background failures), a fault-free period and a faulty one. Faults (on one service ``target``):

``network_delay``
    the target's responses arrive ``delay_ms`` later at its callers (its server spans unchanged);
``cpu_contention``
    another process in the target's pods takes the CPU: its own work runs ``factor`` times slower
    and its container's CPU use rises;
``cpu_consumption``
    the target's handlers burn ``extra_ms`` of CPU per request;
``exception``
    the target raises in ``share`` of its requests (HTTP 500, exception event, a traceback in its
    log); callers log the failure and mask it (checkout answers with a fallback);
``return``
    the target returns a wrong value (an empty product, skipping its query); the caller logs a
    warning and falls back.

Topology: ``frontend`` -> ``catalog`` (GET /products/<id>, sqlite), ``frontend`` -> ``cart``
(GET /cart/<user>, sqlite), ``frontend`` -> ``checkout`` (POST /checkout) -> ``catalog``,
``cart``, ``payment`` (POST /charge, sqlite).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa

import forensics
from forensics import schema
from forensics.synth.builder import SpanBuilder, SpanRef

BASE = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
PODS = {"frontend": ["frontend-7c9d-a1", "frontend-7c9d-b2"], "catalog": ["catalog-5f6b-c3", "catalog-5f6b-d4"],
        "cart": ["cart-6d8f-e5"], "checkout": ["checkout-8b7a-f6"], "payment": ["payment-9c6e-g7"]}
#: median own CPU work per request (ms) of each service's handler
WORK_MS = {"frontend": 2.0, "catalog": 1.5, "cart": 1.0, "checkout": 2.5, "payment": 3.0}
FAULTS = ("network_delay", "cpu_contention", "cpu_consumption", "exception", "return")


@dataclass
class Fault:
    kind: str
    target: str
    delay_ms: float = 120.0
    factor: float = 3.0
    extra_ms: float = 40.0
    share: float = 0.6


@dataclass
class App:
    """Generates one capture: ``healthy_s`` seconds fault-free, then ``faulty_s`` with ``fault``."""

    seed: int = 1
    rps: float = 2.0
    healthy_s: float = 300.0
    faulty_s: float = 300.0
    fault: Fault | None = None
    spans: SpanBuilder = field(init=False)
    logs: list[dict[str, Any]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.spans = SpanBuilder(BASE, seed=self.seed, source_file="faultapp")
        self.cpu_ms: dict[str, list[tuple[float, float]]] = {p: [] for pods in PODS.values() for p in pods}

    @property
    def onset(self) -> datetime:
        return BASE + timedelta(seconds=self.healthy_s)

    # -- timing --------------------------------------------------------------------------------
    def _faulty(self, service: str, t_ms: float, kind: str | tuple[str, ...]) -> bool:
        f = self.fault
        kinds = (kind,) if isinstance(kind, str) else kind
        return bool(f and f.target == service and f.kind in kinds and t_ms >= self.healthy_s * 1000)

    def _work(self, service: str, pod: str, t_ms: float, scale: float = 1.0) -> float:
        ms = WORK_MS[service] * scale * float(self.rng.lognormal(0.0, 0.35))
        if self.rng.random() < 0.01:  # the scheduler on a busy 2-core machine
            ms += float(self.rng.uniform(5, 30))
        cpu = ms
        if self._faulty(service, t_ms, "cpu_contention"):
            ms *= self.fault.factor * float(self.rng.uniform(0.8, 1.2))
        if self._faulty(service, t_ms, "cpu_consumption"):
            extra = self.fault.extra_ms * float(self.rng.uniform(0.8, 1.2))
            ms += extra
            cpu += extra
        self.cpu_ms[pod].append((t_ms, cpu))
        return ms

    def _net(self) -> float:
        return float(self.rng.lognormal(np.log(0.6), 0.3))

    # -- spans ---------------------------------------------------------------------------------
    def _pod(self, service: str) -> str:
        return PODS[service][int(self.rng.integers(len(PODS[service])))]

    def _server(self, service: str, route: str, method: str, parent: SpanRef | None, t: float, dur: float,
                status: int, pod: str, exc: str | None = None) -> SpanRef:
        events = None
        if exc:
            events = ('[{"time":"%s","name":"exception","attributes":{"exception.type":"%s","exception.message":"%s"}}]'
                      % ((BASE + timedelta(milliseconds=t + dur)).isoformat(), exc.split(":")[0], exc))
        return self.spans.span(service, f"{method} {route}", kind="server", parent=parent, start_ms=t, duration_ms=dur,
                               status="error" if status >= 500 else "unset", host=pod, events=events,
                               status_message=exc,
                               attributes={"http.method": method, "http.route": route, "http.status_code": status,
                                           "http.scheme": "http", "net.host.port": 5000},
                               resource_attributes={"k8s.pod.name": pod, "telemetry.sdk.language": "python"})

    def _client(self, caller: str, pod: str, parent: SpanRef, t: float, dur: float, method: str, url: str,
                status: int) -> SpanRef:
        return self.spans.span(caller, method, kind="client", parent=parent, start_ms=t, duration_ms=dur,
                               status="error" if status >= 500 else "unset", host=pod,
                               attributes={"http.method": method, "http.url": url, "http.status_code": status},
                               resource_attributes={"k8s.pod.name": pod, "telemetry.sdk.language": "python"})

    def _sql(self, service: str, pod: str, parent: SpanRef, t: float, statement: str) -> float:
        dur = float(self.rng.lognormal(np.log(0.4), 0.4))
        if self._faulty(service, t, "cpu_contention"):
            dur *= self.fault.factor
        self.spans.span(service, statement.split()[0], kind="client", parent=parent, start_ms=t, duration_ms=dur, host=pod,
                        attributes={"db.system": "sqlite", "db.statement": statement, "db.name": f"{service}.db"},
                        resource_attributes={"k8s.pod.name": pod})
        return dur

    def _log(self, service: str, pod: str, t: float, level: str, body: str, span: SpanRef | None) -> None:
        self.logs.append({"time": BASE + timedelta(milliseconds=t), "service": service, "severity": level,
                          "body": body, "trace_id": span.trace_id if span else None,
                          "span_id": span.span_id if span else None, "pod": pod})

    def call(self, caller: str, cpod: str, parent: SpanRef, t: float, callee: str, method: str, route: str,
             path: str, handler) -> tuple[float, int, Any]:
        """A requests call from ``caller`` to ``callee``'s ``route``; returns (end time, status, value)."""
        c0 = t
        pod = self._pod(callee)
        idx = len(self.spans.rows)  # the client span is written now, finished when the answer is back
        ref = self._client(caller, cpod, parent, c0, 0.0, method, f"http://{callee}:5000{path}", 200)
        s_end, status, value = handler(ref, c0 + self._net(), pod)
        back = self._net()
        if self._faulty(callee, c0, "network_delay"):
            back += self.fault.delay_ms * float(self.rng.uniform(0.9, 1.1))
        end = s_end + back
        row = self.spans.rows[idx]
        row["end_time"] = BASE + timedelta(milliseconds=end)
        row["duration_ms"] = end - c0
        row["http_status_code"] = status
        row["attributes"] = [(k, str(status) if k == "http.status_code" else v) for k, v in row["attributes"]]
        if status >= 500:
            row["status"] = "error"
        return end, status, value

    # -- handlers ------------------------------------------------------------------------------
    def _leaf(self, svc: str, method: str, route: str, path: str, parent: SpanRef, t: float, pod: str, exc: str,
              statement: str, served: str, value: Any, wrong_value: Any) -> tuple[float, int, Any]:
        """A handler that runs one query: raises ``exc`` (exception fault), skips the query and
        answers ``wrong_value`` (return fault), or answers ``value``."""
        work = self._work(svc, pod, t)
        if self._faulty(svc, t, "exception") and self.rng.random() < self.fault.share:
            self._server(svc, route, method, parent, t, work, 500, pod, exc)
            self._log(svc, pod, t + work, "error", f"Exception on {path} [{method}]\nTraceback (most recent call last):\n"
                                                   f"{exc}", None)
            return t + work, 500, None
        span = self._server(svc, route, method, parent, t, 0.0, 200, pod)
        row = self.spans.rows[-1]
        q = t + work / 2
        wrong = self._faulty(svc, t, "return")
        if not wrong:
            q += self._sql(svc, pod, span, q, statement)
        end = q + work / 2
        row["end_time"] = BASE + timedelta(milliseconds=end)
        row["duration_ms"] = end - t
        self._log(svc, pod, end, "info", served, span)
        return end, 200, wrong_value if wrong else value

    def product(self, parent: SpanRef, t: float, pod: str, pid: int) -> tuple[float, int, Any]:
        return self._leaf("catalog", "GET", "/products/<id>", f"/products/{pid}", parent, t, pod, "KeyError: 'price'",
                          f"SELECT id, name, price FROM products WHERE id = {pid}", f"product {pid} served",
                          {"id": pid, "price": 10.0}, None)

    def cart(self, parent: SpanRef, t: float, pod: str, user: int) -> tuple[float, int, Any]:
        items = [int(self.rng.integers(1, 50)) for _ in range(int(self.rng.integers(1, 3)))]
        return self._leaf("cart", "GET", "/cart/<user>", f"/cart/{user}", parent, t, pod, "ValueError: corrupt cart",
                          f"SELECT product_id, qty FROM cart_items WHERE user_id = {user}", f"cart of user {user} loaded",
                          items, [])

    def charge(self, parent: SpanRef, t: float, pod: str, amount: float) -> tuple[float, int, Any]:
        return self._leaf("payment", "POST", "/charge", "/charge", parent, t, pod,
                          "RuntimeError: card processor unavailable",
                          f"INSERT INTO charges (amount) VALUES ({amount:.2f})", f"charged {amount:.2f} EUR",
                          {"ok": True}, None)

    def checkout(self, parent: SpanRef, t: float, pod: str, user: int) -> tuple[float, int, Any]:
        svc = "checkout"
        span = self._server(svc, "/checkout", "POST", parent, t, 0.0, 200, pod)
        row = self.spans.rows[-1]
        now = t + self._work(svc, pod, t) / 2
        now, st, items = self.call(svc, pod, span, now, "cart", "GET", "/cart/<user>", f"/cart/{user}",
                                   lambda p, s, cp: self.cart(p, s, cp, user))
        if st >= 500 or not items:
            self._log(svc, pod, now, "warning", f"cart of user {user} unavailable, checking out nothing", span)
            items = []
        total = 0.0
        for pid in items:
            now, st, prod = self.call(svc, pod, span, now, "catalog", "GET", "/products/<id>", f"/products/{pid}",
                                      lambda p, s, cp, pid=pid: self.product(p, s, cp, pid))
            if st >= 500 or prod is None:
                self._log(svc, pod, now, "warning", f"price of product {pid} unavailable, using list price", span)
            total += 10.0
        status = 200
        if items:
            now, st, ok = self.call(svc, pod, span, now, "payment", "POST", "/charge", "/charge",
                                    lambda p, s, cp: self.charge(p, s, cp, total))
            if st >= 500 or ok is None:
                self._log(svc, pod, now, "error", f"payment of {total:.2f} EUR failed, order kept for retry", span)
        end = now + self._work(svc, pod, t) / 2
        row["end_time"] = BASE + timedelta(milliseconds=end)
        row["duration_ms"] = end - t
        self._log(svc, pod, end, "info", f"checkout of user {user} done, {len(items)} items", span)
        return end, status, None

    def request(self, t: float) -> None:
        pod = self._pod("frontend")
        r = self.rng.random()
        user = int(self.rng.integers(1, 500))
        if r < 0.5:
            route, method, path = "/product/<id>", "GET", None
        elif r < 0.8:
            route, method = "/cart", "GET"
        else:
            route, method = "/checkout", "POST"
        root = self._server("frontend", route, method, None, t, 0.0, 200, pod)
        row = self.spans.rows[-1]
        now = t + self._work("frontend", pod, t) / 2
        if route == "/product/<id>":
            pid = int(self.rng.integers(1, 50))
            now, st, prod = self.call("frontend", pod, root, now, "catalog", "GET", "/products/<id>", f"/products/{pid}",
                                      lambda p, s, cp: self.product(p, s, cp, pid))
            if st >= 500 or prod is None:
                self._log("frontend", pod, now, "warning", f"product {pid} unavailable, showing placeholder", root)
        elif route == "/cart":
            now, st, items = self.call("frontend", pod, root, now, "cart", "GET", "/cart/<user>", f"/cart/{user}",
                                       lambda p, s, cp: self.cart(p, s, cp, user))
            if st >= 500:
                self._log("frontend", pod, now, "warning", f"cart of user {user} unavailable, showing empty cart", root)
        else:
            now, st, _ = self.call("frontend", pod, root, now, "checkout", "POST", "/checkout", "/checkout",
                                   lambda p, s, cp: self.checkout(p, s, cp, user))
        end = now + self._work("frontend", pod, t) / 2
        row["end_time"] = BASE + timedelta(milliseconds=end)
        row["duration_ms"] = end - t
        self._log("frontend", pod, end, "info", f"{method} {route.replace('<id>', '')} 200", root)

    # -- output --------------------------------------------------------------------------------
    def build(self) -> "forensics.Case":
        """Generate the capture into an in-memory case (spans, logs with mined templates, metrics)."""
        total_s = self.healthy_s + self.faulty_s
        n = int(self.rng.poisson(self.rps * total_s))
        for t in np.sort(self.rng.uniform(0, total_s * 1000, n)):
            self.request(float(t))
        case = forensics.open_case()
        self.spans.insert(case)
        _insert(case, "logs", [{"time": r["time"], "service": r["service"], "severity": r["severity"],
                                "body": r["body"], "trace_id": r["trace_id"], "span_id": r["span_id"],
                                "resource_attributes": [("k8s.pod.name", r["pod"])], "source_file": "faultapp.log",
                                "source_line": i + 1} for i, r in enumerate(self.logs)])
        _insert(case, "metrics", self._metrics(total_s))
        forensics.mine_templates(case)
        return case

    def _metrics(self, total_s: float) -> list[dict[str, Any]]:
        """``process_cpu_seconds_total`` (counter) and ``process_resident_memory_bytes`` per pod,
        scraped every 15 s; contention adds the stressor's CPU to the container."""
        rows = []
        for service, pods in PODS.items():
            for pod in pods:
                used = np.array(self.cpu_ms[pod] or [(0.0, 0.0)])
                cpu, mem = 0.0, 60e6 + float(self.rng.uniform(0, 5e6))
                for k, t in enumerate(np.arange(0, total_s, 15.0)):
                    lo, hi = t * 1000, (t + 15) * 1000
                    cpu += float(used[(used[:, 0] >= lo) & (used[:, 0] < hi), 1].sum()) / 1000 + 0.02
                    if self._faulty(service, hi, "cpu_contention"):
                        cpu += 15.0 * 0.8  # the stressor takes most of a core
                    mem += float(self.rng.normal(0, 2e5))
                    when = BASE + timedelta(seconds=float(t + 15))
                    labels = [("pod", pod), ("service", service), ("job", service)]
                    rows.append({"time": when, "name": "process_cpu_seconds_total", "labels": labels, "value": cpu,
                                 "type": "counter", "service": service, "source_file": "faultapp.prom"})
                    rows.append({"time": when, "name": "process_resident_memory_bytes", "labels": labels, "value": mem,
                                 "type": "gauge", "service": service, "source_file": "faultapp.prom"})
        return rows


def _insert(case: "forensics.Case", table: str, rows: list[dict[str, Any]]) -> None:
    sch = schema.arrow_schema(table)
    t = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in sch}, schema=sch)
    case.con.register("_faultapp_rows", t)
    try:
        case.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _faultapp_rows")
    finally:
        case.con.unregister("_faultapp_rows")


def capture(kind: str | None, target: str | None = None, *, seed: int = 1, **params: Any) -> tuple["forensics.Case", App]:
    """A case with ``kind`` injected into ``target`` (None: healthy) and its app (``app.onset``)."""
    app = App(seed=seed, fault=Fault(kind, target, **params) if kind else None)
    return app.build(), app
