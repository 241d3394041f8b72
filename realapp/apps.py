"""The Flask services. Each is built by :func:`build` from a :class:`~realapp.spec.ServiceSpec`.

Tracing is not done here: the process runs under ``opentelemetry-instrument``, which patches
Flask, requests, urllib3, sqlite3, SQLAlchemy, logging and threading before this module loads.
The only OpenTelemetry API calls here are what an application would do itself: an attribute on
the current span, a baggage read.

Behaviour switches (``spec.knobs``) and injected faults (``POST /__control``, kept in
:data:`STATE`) are documented on each handler. Latencies come from sleeps (I/O stand-ins) with a
seeded jitter; CPU burn is real CPU work.
"""
from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import flask
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .spec import ServiceSpec

log = logging.getLogger("app")

#: injected faults, changed at run time by ``POST /__control``:
#: cpu_burn_ms (CPU work per request), error_rate (fraction of requests raising),
#: bad_data_rate (fraction of responses with wrong values but 200)
STATE: dict[str, float] = {"cpu_burn_ms": 0.0, "error_rate": 0.0, "bad_data_rate": 0.0}
_rng = random.Random(0)
_rng_lock = threading.Lock()
#: pricing-service: attempts seen per trace (for the fail_first baggage entry)
_attempts: dict[str, int] = {}


class InjectedFault(RuntimeError):
    """The exception an injected error fault raises."""


def rand() -> float:
    with _rng_lock:
        return _rng.random()


def pause(ms: float, jitter: float = 0.15) -> None:
    """Sleep ``ms`` milliseconds with a seeded multiplicative jitter (an I/O stand-in)."""
    with _rng_lock:
        f = _rng.lognormvariate(0.0, jitter)
    time.sleep(ms * f / 1000.0)


def burn(ms: float) -> None:
    """Spend ``ms`` milliseconds of this thread's CPU time (real work, not a sleep)."""
    end = time.thread_time() + ms / 1000.0
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) % 1000003


def sku_hash(sku: str) -> int:
    return int(hashlib.sha1(sku.encode()).hexdigest()[:8], 16)


def retrying_session(total: int, backoff: float) -> requests.Session:
    """A requests session retrying 502/503/504 with urllib3's ``Retry`` (as many services do)."""
    s = requests.Session()
    retry = Retry(total=total, status_forcelist=(502, 503, 504), backoff_factor=backoff, allowed_methods=None,
                  raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    return s


def _base(spec: ServiceSpec) -> flask.Flask:
    app = flask.Flask(spec.name)

    @app.get("/healthz")
    def healthz() -> Any:
        return {"ok": True, "service": spec.name, "version": spec.version}

    @app.route("/__control", methods=["GET", "POST"])
    def control() -> Any:
        if flask.request.method == "POST":
            STATE.update({k: float(v) for k, v in (flask.request.get_json() or {}).items()})
            log.info("fault state changed", extra={"fields": dict(STATE)})
        return dict(STATE)

    @app.before_request
    def inject() -> None:
        if flask.request.path in ("/healthz", "/__control"):
            return
        flask.g.bad_data = STATE["bad_data_rate"] > 0 and rand() < STATE["bad_data_rate"]
        if STATE["cpu_burn_ms"] > 0:
            burn(STATE["cpu_burn_ms"])
        if STATE["error_rate"] > 0 and rand() < STATE["error_rate"]:
            raise InjectedFault(f"{spec.name}: injected failure in {flask.request.path}")

    return app


def bad() -> bool:
    return bool(getattr(flask.g, "bad_data", False))


def _client(spec: ServiceSpec) -> Callable[..., requests.Response]:
    """``call(dep, method, path, **kw)``: a request to a dependency that raises on 4xx/5xx."""
    sessions: dict[str, requests.Session] = {}
    retries = spec.knobs.get("retries", {})

    def call(dep: str, method: str, path: str, **kw: Any) -> requests.Response:
        if dep not in sessions:
            r = retries.get(dep)
            sessions[dep] = retrying_session(int(r[0]), float(r[1])) if r else requests.Session()
        kw.setdefault("timeout", 10)
        resp = sessions[dep].request(method, spec.deps[dep] + path, **kw)
        resp.raise_for_status()
        return resp

    return call


def build(spec: ServiceSpec) -> flask.Flask:
    builders: dict[str, Callable[[ServiceSpec], flask.Flask]] = {
        "api-gateway": gateway, "catalog-service": catalog, "inventory-service": inventory,
        "pricing-service": pricing, "fleet-service": fleet, "device-api": device_api,
    }
    return builders[spec.name](spec)


# --------------------------------------------------------------------------------------------
def gateway(spec: ServiceSpec) -> flask.Flask:
    """api-gateway: thin routes onto the services, plus checkout (pricing, inventory, payments).

    Masks wrong values: a product without a price -> warning and a direct call to pricing;
    a fleet status without ``online`` -> warning and one more call to fleet-service.
    """
    app = _base(spec)
    call = _client(spec)

    @app.get("/api/products/<sku>")
    def product(sku: str) -> Any:
        pause(spec.knobs.get("gateway_ms", 1.0))
        item = call("catalog-service", "GET", f"/products/{sku}").json()
        if not isinstance(item.get("price"), (int, float)):
            log.warning("catalog returned a product without a price; asking pricing-service",
                        extra={"fields": {"sku": sku}})
            item["price"] = call("pricing-service", "GET", f"/prices/{sku}").json().get("price")
        return item

    @app.get("/api/search")
    def search() -> Any:
        q = flask.request.args.get("q", "")
        limit = flask.request.args.get("limit", "20")
        res = call("catalog-service", "GET", "/search", params={"q": q, "limit": limit}).json()
        missing = [i["sku"] for i in res["items"] if not isinstance(i.get("price"), (int, float))]
        if missing:
            log.warning("search results without prices; asking pricing-service",
                        extra={"fields": {"q": q, "missing": len(missing)}})
            prices = call("pricing-service", "GET", "/prices", params={"skus": ",".join(missing)}).json()
            for i in res["items"]:
                i.setdefault("price", prices.get(i["sku"]))
        log.info("search served", extra={"fields": {"q": q, "items": len(res["items"])}})
        return res

    @app.post("/api/checkout")
    def checkout() -> Any:
        body = flask.request.get_json()
        items = body["items"]
        quote = call("pricing-service", "POST", "/quote", json={"items": items}).json()
        if not isinstance(quote.get("total"), (int, float)) or quote["total"] <= 0:
            log.warning("pricing returned an invalid quote; pricing items one by one",
                        extra={"fields": {"items": len(items)}})
            quote["total"] = sum(call("pricing-service", "GET", f"/prices/{i['sku']}").json().get("price") or 0
                                 for i in items)
        call("inventory-service", "POST", "/reservations", json={"items": items})
        if spec.deps.get("geoip"):
            call("geoip", "GET", "/v1/lookup", params={"ip": body.get("ip", "198.51.100.7")})
        if spec.deps.get("payments-provider"):
            call("payments-provider", "POST", "/v1/charges", json={"amount": quote["total"], "currency": "EUR"})
        log.info("checkout completed", extra={"fields": {"items": len(items), "total": quote["total"]}})
        return {"status": "confirmed", "total": quote["total"]}

    @app.get("/api/fleets/<fid>/status")
    def fleet_status(fid: str) -> Any:
        status = call("fleet-service", "GET", f"/fleets/{fid}/status").json()
        if status.get("online") is None:
            log.warning("fleet status incomplete; asking again", extra={"fields": {"fleet": fid}})
            status = call("fleet-service", "GET", f"/fleets/{fid}/status").json()
        return status

    return app


# --------------------------------------------------------------------------------------------
def catalog(spec: ServiceSpec) -> flask.Flask:
    """catalog-service.

    Knobs: ``slow_fraction`` (products whose sku hash falls below it take the uncached slow
    path, ``slow_ms``), ``product_ms`` (own work per product), ``retries`` (urllib3 Retry on the
    pricing session: ``{"pricing-service": [total, backoff]}``).
    Masks wrong values: invalid stock -> warning, per-item stock lookups for those skus;
    a missing price -> warning, the list price.
    """
    app = _base(spec)
    call = _client(spec)
    slow_fraction = float(spec.knobs.get("slow_fraction", 0.0))
    slow_ms = float(spec.knobs.get("slow_ms", 950.0))

    def valid_qty(v: Any) -> bool:
        return isinstance(v, int) and v >= 0

    @app.get("/products/<sku>")
    def product(sku: str) -> Any:
        from opentelemetry import trace

        cold = (sku_hash(sku) % 1000) < slow_fraction * 1000
        trace.get_current_span().set_attribute("app.cache_hit", not cold)
        pause(slow_ms if cold else spec.knobs.get("product_ms", 4.0))
        stock = call("inventory-service", "GET", f"/stock/{sku}").json()
        if not valid_qty(stock.get("qty")):
            log.warning("inventory returned an invalid stock level; assuming in stock",
                        extra={"fields": {"sku": sku, "qty": stock.get("qty")}})
            stock["qty"] = 1
        price = call("pricing-service", "GET", f"/prices/{sku}").json().get("price")
        if not isinstance(price, (int, float)):
            log.warning("pricing returned no price; using the list price", extra={"fields": {"sku": sku}})
            price = 9.99
        item = {"sku": sku, "name": f"Product {sku}", "qty": stock["qty"], "price": price}
        if bad():
            item.pop("price")
        return item

    @app.get("/search")
    def search() -> Any:
        q = flask.request.args.get("q", "")
        limit = int(flask.request.args.get("limit", "20"))
        start = sku_hash(q) % 400
        skus = [f"SKU-{start + i + 1:04d}" for i in range(limit)]
        pause(spec.knobs.get("search_ms", 3.0))
        stock = call("inventory-service", "GET", "/stock", params={"skus": ",".join(skus)}).json()
        invalid = [s for s in skus if not valid_qty(stock.get(s))]
        if invalid:
            log.warning("inventory returned invalid stock levels; looking them up one by one",
                        extra={"fields": {"q": q, "invalid": len(invalid)}})
            for s in invalid:
                stock[s] = call("inventory-service", "GET", f"/stock/{s}").json().get("qty")
        prices = call("pricing-service", "GET", "/prices", params={"skus": ",".join(skus)}).json()
        items = [{"sku": s, "qty": stock[s], "price": prices.get(s)} for s in skus]
        if bad():
            for i in items:
                i.pop("price")
        log.info("search completed", extra={"fields": {"q": q, "items_returned": len(items)}})
        return {"q": q, "items": items}

    return app


# --------------------------------------------------------------------------------------------
def inventory(spec: ServiceSpec) -> flask.Flask:
    """inventory-service: stock levels in sqlite through SQLAlchemy Core.

    Knobs: ``db_path`` (made by the generator), ``stock_query`` = ``per_item`` (one SELECT per
    sku: the N+1) or ``batched`` (one ``IN`` query), ``stock_ms`` (own work).
    Wrong values: ``qty`` -1.
    """
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

    app = _base(spec)
    engine = create_engine(f"sqlite:///{spec.knobs['db_path']}")
    md = MetaData()
    stock = Table("stock", md, Column("sku", String, primary_key=True), Column("qty", Integer),
                  Column("warehouse", String))
    reservations = Table("reservations", md, Column("id", Integer, primary_key=True, autoincrement=True),
                         Column("sku", String), Column("qty", Integer))
    per_item = spec.knobs.get("stock_query", "batched") == "per_item"

    def qty(v: int) -> int:
        return -1 if bad() else v

    @app.get("/stock/<sku>")
    def one(sku: str) -> Any:
        pause(spec.knobs.get("stock_ms", 2.0))
        with engine.connect() as conn:
            row = conn.execute(select(stock.c.qty).where(stock.c.sku == sku)).first()
        return {"sku": sku, "qty": qty(row[0] if row else 0)}

    @app.get("/stock")
    def many() -> Any:
        skus = [s for s in flask.request.args.get("skus", "").split(",") if s]
        pause(spec.knobs.get("stock_ms", 2.0))
        with engine.connect() as conn:
            if per_item:
                found = {}
                for s in skus:
                    row = conn.execute(select(stock.c.sku, stock.c.qty).where(stock.c.sku == s)).first()
                    if row:
                        found[row[0]] = row[1]
            else:
                found = dict(conn.execute(select(stock.c.sku, stock.c.qty).where(stock.c.sku.in_(skus))).all())
        return {s: qty(found.get(s, 0)) for s in skus}

    @app.post("/reservations")
    def reserve() -> Any:
        items = flask.request.get_json()["items"]
        with engine.begin() as conn:
            conn.execute(reservations.insert(), [{"sku": i["sku"], "qty": i["qty"]} for i in items])
        return {"reserved": len(items)}

    return app


# --------------------------------------------------------------------------------------------
def pricing(spec: ServiceSpec) -> flask.Flask:
    """pricing-service.

    Knobs: ``poison_sku`` (its discount rule divides by zero: a ZeroDivisionError, 500),
    ``price_ms`` (own work). Baggage ``realapp.fail_first=N``: the first N attempts of a trace
    get 503 (what a client's retry policy then retries). Wrong values: ``price`` null, quote
    total 0.
    """
    from opentelemetry import baggage, trace

    app = _base(spec)
    poison = spec.knobs.get("poison_sku")
    lock = threading.Lock()

    def price_of(sku: str) -> float:
        n = sku_hash(sku)
        base = 5 + (n % 9000) / 100
        divisor = 0 if sku == poison else 1 + (n % 3)
        return round(base - base / divisor / 10, 2)

    @app.before_request
    def fail_first() -> Any:
        wanted = baggage.get_baggage("realapp.fail_first")
        if not wanted:
            return None
        tid = format(trace.get_current_span().get_span_context().trace_id, "032x")
        with lock:
            _attempts[tid] = n = _attempts.get(tid, 0) + 1
        if n <= int(str(wanted)):
            log.warning("overloaded, shedding request", extra={"fields": {"attempt": n}})
            return flask.Response("overloaded", status=503, headers={"Retry-After": "0"})
        return None

    @app.get("/prices/<sku>")
    def one(sku: str) -> Any:
        pause(spec.knobs.get("price_ms", 3.0))
        return {"sku": sku, "price": None if bad() else price_of(sku), "currency": "EUR"}

    @app.get("/prices")
    def many() -> Any:
        skus = [s for s in flask.request.args.get("skus", "").split(",") if s]
        pause(spec.knobs.get("price_ms", 3.0))
        return {s: (None if bad() else price_of(s)) for s in skus}

    @app.post("/quote")
    def quote() -> Any:
        items = flask.request.get_json()["items"]
        pause(spec.knobs.get("price_ms", 3.0))
        total = round(sum(price_of(i["sku"]) * i["qty"] for i in items), 2)
        return {"total": 0 if bad() else total, "currency": "EUR"}

    return app


# --------------------------------------------------------------------------------------------
def fleet(spec: ServiceSpec) -> flask.Flask:
    """fleet-service: a fleet's status from every device, asked in parallel (ThreadPoolExecutor).

    Knobs: ``fleet_size`` (devices per fleet, 52), ``workers`` (pool size, 64).
    Masks wrong values: a device without ``battery`` -> warning, that device asked again.
    Wrong values itself: ``online`` null.
    """
    app = _base(spec)
    call = _client(spec)
    pool = ThreadPoolExecutor(max_workers=int(spec.knobs.get("workers", 64)), thread_name_prefix="devices")
    size = int(spec.knobs.get("fleet_size", 52))

    def device(did: str) -> dict[str, Any]:
        d = call("device-api", "GET", f"/devices/{did}").json()
        if not isinstance(d.get("battery"), int):
            log.warning("device returned no battery level; asking again", extra={"fields": {"device": did}})
            d = call("device-api", "GET", f"/devices/{did}").json()
        return d

    @app.get("/fleets/<fid>/status")
    def status(fid: str) -> Any:
        ids = [f"{fid}-{i:03d}" for i in range(size)]
        devices = list(pool.map(device, ids))
        online = sum(1 for d in devices if d.get("online"))
        log.info("fleet status collected", extra={"fields": {"fleet": fid, "devices": len(devices), "online": online}})
        return {"fleet": fid, "devices": len(devices), "online": None if bad() else online}

    return app


# --------------------------------------------------------------------------------------------
def device_api(spec: ServiceSpec) -> flask.Flask:
    """device-api: one device's status after a simulated device round trip (``device_ms``, 20).
    Wrong values: ``battery`` missing."""
    app = _base(spec)

    @app.get("/devices/<did>")
    def device(did: str) -> Any:
        pause(spec.knobs.get("device_ms", 20.0), jitter=0.3)
        n = sku_hash(did)
        d = {"id": did, "online": n % 7 != 0, "battery": n % 100, "firmware": "4.0.0"}
        if bad():
            d.pop("battery")
        return d

    return app
