"""The request flows of the synthetic shop, one trace per root request, shaped by a :class:`Plan`.

``Shop.request(t_ms)`` builds one whole trace (client+server span pairs, database, cache and
queue spans), its log lines and the observations the metrics are aggregated from. Per-trace
Python is deliberate here: the random numbers are drawn in vectorized blocks (:class:`Rand`),
and the writers stream each chunk of traces to disk.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable

from .model import LogRecord, Rand, Span, ms_to_ns
from .plan import Plan
from .topology import (CLIENT, CONSUMER, DURATION_S, INTERNAL, KAFKA, LATENCY, ORDERS_PARTITIONS, ORDERS_TOPIC,
                       POSTGRES, PRODUCER, REDIS, SERVER, SERVICES, Latency, Resource, pods)

#: handler(pod, server span, start ms) -> (end ms, status code, error message, exception type)
Handler = Callable[[Resource, Span, float], tuple[float, int, "str | None", "str | None"]]
WINDOW_MS = DURATION_S * 1000.0
_WORDS = ("shoes", "lamp", "desk", "chair", "jacket", "kettle", "laptop bag", "headphones", "tent", "mug")


class Shop:
    """Generates traces for a plan; call :meth:`start_chunk` with a fresh :class:`Rand` per chunk."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._pods: dict[str, tuple[list[Resource], list[Resource], object]] = {}
        for name, spec in SERVICES.items():
            deploy = next((d for d in plan.deploys if d.service == name), None)
            old = pods(name, deploy.from_version if deploy else spec.version)
            new = pods(name, deploy.version) if deploy else []
            self._pods[name] = (old, new, deploy)
        self.skew_host: str | None = None
        if plan.skew_service:
            self.skew_host = self._pods[plan.skew_service][0][plan.skew_pod].host
        self._skew_ns = int(plan.skew_ms * 1_000_000)
        self.poison: dict | None = None
        self._offsets = [0] * ORDERS_PARTITIONS

    # ----------------------------------------------------------------- chunk state
    def start_chunk(self, rand: Rand) -> None:
        self.r = rand
        self.spans: list[Span] = []
        self.logs: list[LogRecord] = []
        #: (t_ms, service, version, method, route, status_code, duration_ms, trace_id, span_id)
        self.server_obs: list[tuple] = []
        #: (t_ms, service, peer, method, route, status_code)
        self.client_obs: list[tuple] = []
        #: (t_ms, service, duration_ms) of database calls (connection held)
        self.db_obs: list[tuple] = []
        #: (t_ms, partition, +1 produced | -1 consumed)
        self.queue_obs: list[tuple] = []
        #: facts the scenarios compute their truth numbers from
        self.facts: dict[str, list[tuple]] = defaultdict(list)

    # ----------------------------------------------------------------- primitives
    def pod(self, service: str, t_ms: float) -> Resource:
        old, new, deploy = self._pods[service]
        if deploy is None or t_ms < deploy.at_s * 1000:
            return self.r.choice(old)
        if deploy.fraction < 1:
            k = max(1, round(len(old) * deploy.fraction))
            return self.r.choice(old[: len(old) - k] + new[:k])
        progress = (t_ms - deploy.at_s * 1000) / (deploy.rollout_s * 1000)
        return self.r.choice(new if self.r.u() < progress else old)

    def _ns(self, res: Resource, t_ms: float) -> int:
        ns = ms_to_ns(t_ms)
        return ns + self._skew_ns if res.host == self.skew_host else ns

    def open(self, res: Resource, name: str, kind: int, t_ms: float, parent: Span | None, scope: str,
             attrs: list) -> Span:
        trace_id = parent.trace_id if parent else self.trace_id
        s = Span(trace_id, f"{self.r.id64():016x}", parent.span_id if parent else None, res, name, kind,
                 self._ns(res, t_ms), scope, attrs)
        self.spans.append(s)
        return s

    def close(self, s: Span, t_ms: float) -> None:
        s.end_ns = max(self._ns(s.res, t_ms), s.start_ns)

    def log(self, res: Resource, t_ms: float, level: str, message: str, span: Span | None, **fields) -> None:
        self.logs.append(LogRecord(self._ns(res, t_ms), level, res, message, span.trace_id if span else None,
                                   span.span_id if span else None, fields))

    def lat(self, key: str, scale: float = 1.0) -> float:
        return self.r.lognormal(LATENCY[key], scale)

    # ----------------------------------------------------------------- dependencies
    def http(self, caller: Resource, parent: Span, t: float, target: str, method: str, route: str, path: str,
             handler: Handler, *, timeout_ms: float | None = None, resend: int | None = None) -> tuple[float, int, str | None]:
        """A client span in ``caller`` and the server span in a pod of ``target``.

        Returns (end of the client span in ms, status code (0 on a client timeout), error)."""
        port = SERVICES[target].port
        attrs = [("http.request.method", method), ("url.full", f"http://{target}:{port}{path}"),
                 ("url.template", route), ("http.route", route), ("server.address", target),
                 ("server.port", port), ("peer.service", target)]
        if resend:
            attrs.append(("http.resend_count", resend))
        cs = self.open(caller, f"{method} {route}", CLIENT, t, parent, "http", attrs)
        t_in = t + self.lat("net")
        callee = self.pod(target, t_in)
        ss = self.open(callee, f"{method} {route}", SERVER, t_in, cs, "http",
                       [("http.request.method", method), ("http.route", route), ("url.path", path.split("?")[0]),
                        ("url.scheme", "http"), ("server.address", target), ("server.port", port),
                        ("client.address", caller.ip), ("user_agent.original", "okhttp/4.12.0")])
        end, code, err, exc = handler(callee, ss, t_in)
        ss.attrs.append(("http.response.status_code", code))
        self.close(ss, end)
        if code >= 500:
            ss.attrs.append(("error.type", exc or str(code)))
            ss.fail(err or f"HTTP {code}", exc)
        self.server_obs.append((t_in, target, callee.version, method, route, code, end - t_in, ss.trace_id, ss.span_id))
        back = end + self.lat("net")
        if timeout_ms is not None and back - t > timeout_ms:
            self.close(cs, t + timeout_ms)
            cs.attrs.append(("error.type", "java.net.SocketTimeoutException"))
            cs.fail(f"Read timed out after {timeout_ms:.0f} ms", "java.net.SocketTimeoutException")
            self.client_obs.append((t, caller.service, target, method, route, 0))
            return t + timeout_ms, 0, f"timeout calling {target}"
        self.close(cs, back)
        cs.attrs.append(("http.response.status_code", code))
        if code >= 500:
            cs.attrs.append(("error.type", str(code)))
            cs.fail(f"HTTP {code}")
        self.client_obs.append((t, caller.service, target, method, route, code))
        return back, code, err

    def db(self, res: Resource, parent: Span, t: float, op: str, table: str, statement: str, lat: str,
           scale: float = 1.0) -> float:
        s = self.open(res, f"{op} shop.{table}", CLIENT, t, parent, "jdbc",
                      [("db.system", POSTGRES[0]), ("db.name", "shop"), ("db.operation", op), ("db.sql.table", table),
                       ("db.statement", statement), ("server.address", POSTGRES[1]), ("server.port", POSTGRES[2]),
                       ("peer.service", "postgres")])
        end = t + self.lat(lat, scale)
        self.close(s, end)
        self.db_obs.append((t, res.service, end - t))
        return end

    def redis(self, res: Resource, parent: Span, t: float, command: str, key: str) -> float:
        s = self.open(res, command, CLIENT, t, parent, "redis",
                      [("db.system", REDIS[0]), ("db.statement", f"{command} {key}"), ("db.operation", command),
                       ("server.address", REDIS[1]), ("server.port", REDIS[2]), ("peer.service", "redis")])
        end = t + self.lat("redis")
        self.close(s, end)
        return end

    def acquire(self, res: Resource, parent: Span, t: float) -> tuple[float, bool]:
        """Wait for a pooled DB connection: (time it was obtained or the wait gave up, obtained)."""
        p = self.plan
        if not p.in_pool_exhaustion(t / 1000):
            return t, True
        if self.r.u() >= p.pool_share:
            return t + self.r.uniform(0.0, 20.0), True
        s = self.open(res, "HikariPool.getConnection", INTERNAL, t, parent, "app",
                      [("db.client.connection.pool.name", "catalog-db"), ("db.system", POSTGRES[0])])
        end = t + p.pool_timeout_ms + self.r.uniform(0.0, 2.0)
        self.close(s, end)
        s.fail(self.pool_error, "java.sql.SQLTransientConnectionException")
        self.db_obs.append((t, res.service, end - t))
        self.facts["pool_timeouts"].append((t / 1000, end - t))
        self.log(res, end, "error", self.pool_error, s, error="SQLTransientConnectionException", pool="catalog-db",
                 timeout_ms=int(p.pool_timeout_ms))
        return end, False

    @property
    def pool_error(self) -> str:
        return f"timeout acquiring connection from pool catalog-db after {self.plan.pool_timeout_ms:.0f} ms"

    def pricing_call(self, caller: Resource, parent: Span, t: float, method: str, route: str, path: str,
                     *, resend_attr: bool) -> tuple[float, int, str | None]:
        """Call pricing-service with the caller's retry policy (storm: many quick retries)."""
        p = self.plan
        storm = p.in_storm(t / 1000)
        attempts = p.storm_attempts if storm else 2
        attempt = 1
        while True:
            end, code, err = self.http(caller, parent, t, "pricing-service", method, route, path, self.pricing,
                                       timeout_ms=p.client_timeout_ms,
                                       resend=attempt - 1 if resend_attr and attempt > 1 else None)
            if 0 < code < 500 or attempt >= attempts:
                self.facts["pricing_calls"].append((t / 1000, caller.service, attempt, code, parent.name))
                return end, code, err
            backoff = self.r.uniform(0.0, p.storm_backoff_ms) if storm else self.r.uniform(*p.base_retry_backoff_ms)
            attempt += 1
            self.log(caller, end, "warn", "retrying call to pricing-service", parent, attempt=attempt,
                     error=err or f"HTTP {code}", backoff_ms=round(backoff, 1))
            t = end + backoff

    # ----------------------------------------------------------------- server handlers
    def pricing(self, res: Resource, span: Span, t: float) -> tuple[float, int, str | None, str | None]:
        p = self.plan
        canary = p.canary_version is not None and res.version == p.canary_version
        scale = p.canary_latency_x if canary else 1.0
        key = {"POST /prices/batch": "pricing_batch", "POST /quote": "pricing_quote"}.get(span.name, "pricing_item")
        if p.in_storm(t / 1000) and self.r.u() < p.storm_fail_p:
            if self.r.u() < p.storm_timeout_share:
                end = t + self.r.uniform(1500.0, 3000.0)
                msg = "upstream request timeout: pricing rules store did not answer"
                self.log(res, end, "error", msg, span, error="TimeoutException", route=span.name.split(" ", 1)[1])
                return end, 504, msg, "java.util.concurrent.TimeoutException"
            end = t + self.lat(key, 0.2)
            return end, 503, "service unavailable: pricing rules cache is rebuilding", None
        work = self.lat(key, scale)
        if canary and self.r.u() < p.canary_error_p:
            end = t + work * 0.4
            self.log(res, end, "error", f"request failed: {p.canary_error}", span,
                     error="java.lang.NullPointerException", route=span.name.split(" ", 1)[1])
            self.facts["pricing"].append((t / 1000, res.version, end - t, 1))
            return end, 500, p.canary_error, "java.lang.NullPointerException"
        if self.r.u() < p.base_fail_p:
            end = t + work * 0.3
            self.facts["pricing"].append((t / 1000, res.version, end - t, 0))
            return end, 503, "service unavailable: too many concurrent requests", None
        end = t + work
        if self.r.u() < 0.1:
            self.db(res, span, t + work * 0.3, "SELECT", "price_rules",
                    "SELECT rule_id, kind, value FROM price_rules WHERE sku = ANY($1)", "pg_item")
        self.facts["pricing"].append((t / 1000, res.version, end - t, 0))
        return end, 200, None, None

    def inventory(self, res: Resource, span: Span, t: float) -> tuple[float, int, str | None, str | None]:
        if span.name == "POST /inventory/batch":
            t2 = self.db(res, span, t + self.lat("inventory_batch", 0.3), "SELECT", "stock",
                         "SELECT sku, available FROM stock WHERE sku = ANY($1)", "pg_batch")
            return t2 + self.lat("inventory_batch", 0.7), 200, None, None
        if span.name == "POST /inventory/reserve":
            t2 = self.db(res, span, t + 1.0, "UPDATE", "stock",
                         "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2", "pg_insert")
            return t2 + self.lat("inventory_reserve"), 200, None, None
        end = t + self.lat("inventory_item")
        if self.r.u() < self.plan.base_inventory_error_p:
            msg = "deadlock detected while reading stock"
            self.log(res, end, "error", msg, span, error="PSQLException")
            return end, 500, msg, "org.postgresql.util.PSQLException"
        return end, 200, None, None

    def _cache_hit(self, t: float, ratio: float) -> bool:
        if self.plan.in_stampede(t / 1000):
            ratio = min(ratio, self.plan.stampede_hit_ratio)
        return self.r.u() < ratio

    def _db_scale(self, t: float) -> float:
        return self.plan.stampede_db_x if self.plan.in_stampede(t / 1000) else 1.0

    def _sku(self) -> int:
        return 10000 + int(self.r.u() * 90000)

    def search(self, res: Resource, span: Span, t0: float) -> tuple[float, int, str | None, str | None]:
        p = self.plan
        t = t0 + self.lat("search_self", 0.3)
        query = self.r.choice(_WORDS)
        t = self.redis(res, span, t, "GET", f"search:{query.replace(' ', '-')}")
        if not self._cache_hit(t, p.search_hit_ratio):
            t, ok = self.acquire(res, span, t)
            if not ok:
                return t + 1.0, 503, self.pool_error, "java.sql.SQLTransientConnectionException"
            self.facts["catalog_db"].append((t / 1000,))
            t = self.db(res, span, t, "SELECT", "products",
                        "SELECT id, name, price FROM products WHERE to_tsvector(name) @@ plainto_tsquery($1) LIMIT $2",
                        "pg_search", self._db_scale(t))
        items = self.r.normal_int(p.items_mean, p.items_sd)
        if p.n_plus_one_version is not None and res.version == p.n_plus_one_version:
            calls = 0
            sku = 10000 + int(self.r.u() * 20000)
            for _ in range(items):
                sku += 1 + int(self.r.u() * 1500)  # distinct item ids, as a result page has
                t, code, err = self.http(res, span, t, "inventory-service", "GET", "/inventory/{id}",
                                         f"/inventory/{sku}", self.inventory)
                calls += 1
        else:
            t, code, err = self.http(res, span, t, "inventory-service", "POST", "/inventory/batch",
                                     "/inventory/batch", self.inventory)
            calls = 1
        t, code, err = self.pricing_call(res, span, t, "POST", "/prices/batch", "/prices/batch", resend_attr=True)
        status = 200 if 0 < code < 500 else 502
        t += self.lat("search_self", 0.7)
        span.attrs.append(("app.items_returned", items))
        span.attrs.append(("app.inventory_calls", calls))
        if status == 200:
            self.log(res, t, "info", "search completed", span, route="/search", query=query, items_returned=items,
                     inventory_calls=calls, duration_ms=round(t - t0, 1))
        else:
            self.log(res, t, "error", f"search failed: {err}", span, route="/search", error=err,
                     items_returned=0, inventory_calls=calls)
        self.facts["search"].append((t0 / 1000, res.version, items, calls, t - t0, status))
        return t, status, (f"dependency failed: {err}" if status != 200 else None), None

    def item(self, res: Resource, span: Span, t0: float) -> tuple[float, int, str | None, str | None]:
        p = self.plan
        sku = int(dict(span.attrs)["url.path"].rsplit("/", 1)[1])
        t = t0 + self.lat("item_self", 0.4)
        t = self.redis(res, span, t, "GET", f"item:{sku}")
        if not self._cache_hit(t, p.item_hit_ratio):
            t, ok = self.acquire(res, span, t)
            if not ok:
                return t + 1.0, 503, self.pool_error, "java.sql.SQLTransientConnectionException"
            self.facts["catalog_db"].append((t / 1000,))
            t = self.db(res, span, t, "SELECT", "products", "SELECT id, name, description, price FROM products WHERE id = $1",
                        "pg_item", self._db_scale(t))
            t = self.redis(res, span, t, "SET", f"item:{sku}")
        t, code, err = self.http(res, span, t, "inventory-service", "GET", "/inventory/{id}", f"/inventory/{sku}",
                                 self.inventory)
        # legitimate small fan-out: one price lookup per variant (1-3 variants, different ids)
        for v in range(1 + int(self.r.u() * 3)):
            vid = sku * 10 + v
            t, pcode, perr = self.pricing_call(res, span, t, "GET", "/prices/{id}", f"/prices/{vid}", resend_attr=True)
            if not 0 < pcode < 500:
                code, err = 502, perr
                break
        t += self.lat("item_self", 0.6)
        status = 502 if code >= 500 or code == 0 else 200
        if status == 200:
            self.log(res, t, "info", "item served", span, route="/item/{id}", item_id=sku, duration_ms=round(t - t0, 1))
        else:
            self.log(res, t, "error", f"item lookup failed: {err}", span, route="/item/{id}", item_id=sku, error=err)
        return t, status, (f"dependency failed: {err}" if status != 200 else None), None

    def consume(self, parent: Span, t: float, message_id: str, partition: int, offset: int, *,
                poison: bool = False, delivery: int = 1) -> float:
        """Consumer span in order-worker for one delivery of a message (child of the producer span)."""
        res = self.pod("order-worker", t)
        cs = self.open(res, f"{ORDERS_TOPIC} process", CONSUMER, t, parent, "kafka",
                       [("messaging.system", KAFKA[0]), ("messaging.destination.name", ORDERS_TOPIC),
                        ("messaging.operation", "process"), ("messaging.message.id", message_id),
                        ("messaging.kafka.consumer.group", "order-worker"),
                        ("messaging.kafka.destination.partition", partition),
                        ("messaging.kafka.message.offset", offset), ("server.address", KAFKA[1])])
        t2 = t + self.lat("consume_self")
        if poison:
            self.close(cs, t2)
            cs.fail(self.plan.poison_error, "org.apache.kafka.common.errors.SerializationException")
            self.log(res, t2, "error", "failed to process message, will retry", cs, message_id=message_id,
                     topic=ORDERS_TOPIC, partition=partition, offset=offset, delivery_attempt=delivery,
                     error=self.plan.poison_error)
            self.server_obs.append((t, "order-worker", res.version, "process", ORDERS_TOPIC, 500, t2 - t, cs.trace_id, cs.span_id))
            return t2
        t2 = self.db(res, cs, t2, "INSERT", "orders", "INSERT INTO orders (id, customer_id, total) VALUES ($1, $2, $3)",
                     "pg_insert")
        t2, code, _ = self.http(res, cs, t2, "inventory-service", "POST", "/inventory/reserve", "/inventory/reserve",
                                self.inventory)
        t2 += self.lat("consume_self", 0.3)
        self.close(cs, t2)
        self.log(res, t2, "info", "order processed", cs, message_id=message_id, topic=ORDERS_TOPIC,
                 partition=partition, offset=offset)
        self.server_obs.append((t, "order-worker", res.version, "process", ORDERS_TOPIC, 200, t2 - t, cs.trace_id, cs.span_id))
        self.queue_obs.append((t, partition, -1))
        return t2

    def orders(self, gw: Resource, root: Span, t: float) -> tuple[float, int, str | None]:
        t, code, err = self.pricing_call(gw, root, t, "POST", "/quote", "/quote", resend_attr=False)
        if not 0 < code < 500:
            return t, 502, err
        partition = int(self.r.u() * ORDERS_PARTITIONS)
        offset = self._offsets[partition] = self._offsets[partition] + 1
        message_id = f"ord-{self.r.id64() % 10**12:012d}"
        ps = self.open(gw, f"{ORDERS_TOPIC} publish", PRODUCER, t, root, "kafka",
                       [("messaging.system", KAFKA[0]), ("messaging.destination.name", ORDERS_TOPIC),
                        ("messaging.operation", "publish"), ("messaging.message.id", message_id),
                        ("messaging.kafka.destination.partition", partition), ("server.address", KAFKA[1]),
                        ("server.port", KAFKA[2]), ("peer.service", "kafka")])
        end = t + self.r.lognormal(Latency(1.8, 0.4))
        self.close(ps, end)
        self.queue_obs.append((t, partition, +1))
        t_c = t + self.lat("queue_lag")
        p = self.plan
        if p.poison_at_s is not None and self.poison is None and t / 1000 >= p.poison_at_s:
            self._poison(ps, t_c, message_id, partition, offset)
        elif self.poison and self.poison["partition"] == partition and t >= self.poison["from_ms"]:
            t_c = max(t_c, self.poison["until_ms"] + self.lat("queue_lag"))
            if t_c < WINDOW_MS:
                self.consume(ps, t_c, message_id, partition, offset)
        elif t_c < WINDOW_MS:
            self.consume(ps, t_c, message_id, partition, offset)
        return end + self.lat("orders_self", 0.5), 202, None

    def _poison(self, producer: Span, t: float, message_id: str, partition: int, offset: int) -> None:
        p = self.plan
        times = []
        for k in range(p.poison_redeliveries):
            if t >= WINDOW_MS:
                break
            t = self.consume(producer, t, message_id, partition, offset, poison=True, delivery=k + 1)
            times.append(t)
            t += p.poison_interval_s * 1000 * (0.8 + 0.4 * self.r.u())
        self.poison = {"message_id": message_id, "partition": partition, "offset": offset,
                       "from_ms": (producer.start_ns - ms_to_ns(0)) / 1e6, "deliveries": len(times),
                       "until_ms": t, "trace_id": producer.trace_id}
        if t < WINDOW_MS:  # gave up: dead-letter the message and move on
            res = self.pod("order-worker", t)
            dl = self.open(res, f"{ORDERS_TOPIC}.DLQ publish", PRODUCER, t, producer, "kafka",
                           [("messaging.system", KAFKA[0]), ("messaging.destination.name", f"{ORDERS_TOPIC}.DLQ"),
                            ("messaging.operation", "publish"), ("messaging.message.id", message_id),
                            ("server.address", KAFKA[1]), ("peer.service", "kafka")])
            self.close(dl, t + 2.0)
            self.log(res, t + 2.0, "warn", "message sent to dead-letter topic", dl, message_id=message_id,
                     topic=f"{ORDERS_TOPIC}.DLQ", deliveries=len(times))
            self.queue_obs.append((t, partition, -1))

    # ----------------------------------------------------------------- root requests
    def request(self, t0: float) -> None:
        """One user request arriving at api-gateway at ``t0`` ms: a whole trace."""
        p = self.plan
        self.trace_id = f"{self.r.id64():016x}{self.r.id64():016x}"
        u = self.r.u()
        gw = self.pod("api-gateway", t0)
        if u < p.search_share:
            method, route, path = "GET", "/search", f"/search?q={self.r.choice(_WORDS).replace(' ', '+')}"
        elif u < p.search_share + p.item_share:
            sku = self._sku()
            method, route, path = "GET", "/item/{id}", f"/item/{sku}"
        else:
            method, route, path = "POST", "/orders", "/orders"
        root = self.open(gw, f"{method} {route}", SERVER, t0, None, "http",
                         [("http.request.method", method), ("http.route", route), ("url.path", path.split("?")[0]),
                          ("url.scheme", "https"), ("server.address", "shop.example.com"), ("server.port", 443),
                          ("client.address", f"203.0.113.{1 + int(self.r.u() * 250)}"),
                          ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")])
        t = t0 + self.lat("gateway", 0.5)
        if route == "/orders":
            t, code, err = self.orders(gw, root, t)
        else:
            handler = self.search if route == "/search" else self.item
            t, code, err = self.http(gw, root, t, "catalog-service", method, route, path, handler)
            code = code or 504
        t += self.lat("gateway", 0.5)
        root.attrs.append(("http.response.status_code", code))
        self.close(root, t)
        level = "info"
        if code >= 500:
            root.attrs.append(("error.type", str(code)))
            root.fail(f"HTTP {code}")
            level = "error"
        self.server_obs.append((t0, "api-gateway", gw.version, method, route, code, t - t0, root.trace_id, root.span_id))
        self.log(gw, t, level, "request completed", root, method=method, route=route, path=path, status=code,
                 duration_ms=round(t - t0, 1), **({"error": err} if err else {}))
