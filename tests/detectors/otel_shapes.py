"""Spans shaped like the OpenTelemetry Python SDK's instrumentations write them, for the call
detectors' tests: span names, kinds, scopes and attribute keys as the Flask, requests, sqlite3
(DB-API) and SQLAlchemy instrumentations set them, in the old semantic conventions (the default
of the 0.4x instrumentations: ``http.method``, ``http.url``, ``http.status_code``,
``db.statement``) or the stable ones (``OTEL_SEMCONV_STABILITY_OPT_IN=http``:
``http.request.method``, ``url.full``, ``server.address``, ``http.response.status_code``).

Times are what a real app on a busy machine gives: jitter on every duration and gap.
"""
from __future__ import annotations

import random

from forensics.synth.builder import SpanBuilder, SpanRef

FLASK = "opentelemetry.instrumentation.flask"
REQUESTS = "opentelemetry.instrumentation.requests"
SQLITE3 = "opentelemetry.instrumentation.sqlite3"
SQLALCHEMY = "opentelemetry.instrumentation.sqlalchemy"


def flask_request(b: SpanBuilder, service: str, route: str, path: str, *, start_ms: float, duration_ms: float,
                  status_code: int = 200, parent: SpanRef | None = None, version: str | None = None,
                  stable: bool = False) -> SpanRef:
    """A Flask server span (``GET /orders/<int:order_id>``) as opentelemetry-instrumentation-flask writes it."""
    if stable:
        attrs = {"http.request.method": "GET", "url.scheme": "http", "url.path": path, "http.route": route,
                 "server.address": "127.0.0.1", "server.port": 5000, "network.protocol.version": "1.1",
                 "client.address": "127.0.0.1", "user_agent.original": "python-requests/2.32.3",
                 "http.response.status_code": status_code}
    else:
        attrs = {"http.method": "GET", "http.server_name": "127.0.0.1", "http.scheme": "http", "net.host.port": 5000,
                 "http.host": "127.0.0.1:5000", "http.target": path, "net.peer.ip": "127.0.0.1",
                 "http.user_agent": "python-requests/2.31.0", "net.peer.port": 50412, "http.flavor": "1.1",
                 "http.route": route, "http.status_code": status_code}
    return b.span(service, f"GET {route}", kind="server", parent=parent, start_ms=start_ms, duration_ms=duration_ms,
                  status="error" if status_code >= 500 else "unset", attributes=attrs, version=version, scope=FLASK)


def requests_call(b: SpanBuilder, service: str, parent: SpanRef, url: str, *, start_ms: float, duration_ms: float,
                  status_code: int | None = 200, version: str | None = None, stable: bool = False,
                  method: str = "GET") -> SpanRef:
    """A ``requests`` client span: name ``GET``, only the URL, method and status (old conventions)."""
    if stable:
        host = url.split("://", 1)[1].split("/", 1)[0]
        attrs = {"http.request.method": method, "url.full": url, "server.address": host.split(":")[0],
                 "server.port": int(host.split(":")[1]) if ":" in host else 80, "network.protocol.version": "1.1"}
        if status_code is not None:
            attrs["http.response.status_code"] = status_code
    else:
        attrs = {"http.method": method, "http.url": url}
        if status_code is not None:
            attrs["http.status_code"] = status_code
    failed = status_code is None or status_code >= 400
    return b.span(service, method, kind="client", parent=parent, start_ms=start_ms, duration_ms=duration_ms,
                  status="error" if failed else "unset", attributes=attrs, version=version, scope=REQUESTS)


def sql_query(b: SpanBuilder, service: str, parent: SpanRef, statement: str, *, start_ms: float, duration_ms: float,
              database: str = "shop.db", version: str | None = None, double: str | None = None) -> SpanRef:
    """A query through SQLAlchemy on sqlite. ``double``: how ``opentelemetry-instrument`` with both
    instrumentations records it: ``"siblings"`` (the SQLAlchemy span is not made current, so the
    sqlite3 span is its sibling, nested in time), ``"nested"`` (the sqlite3 span is its child),
    or None (the sqlite3 span only)."""
    verb = statement.split()[0].upper()
    db = {"db.system": "sqlite", "db.name": database, "db.statement": statement}
    if double is None:
        return b.span(service, verb, kind="client", parent=parent, start_ms=start_ms, duration_ms=duration_ms,
                      attributes=db, version=version, scope=SQLITE3)
    outer = b.span(service, f"{verb} {database}", kind="client", parent=parent, start_ms=start_ms,
                   duration_ms=duration_ms + 0.35, attributes=db, version=version, scope=SQLALCHEMY)
    b.span(service, verb, kind="client", parent=outer if double == "nested" else parent, start_ms=start_ms + 0.12,
           duration_ms=duration_ms, attributes={**db, "db.user": ""}, version=version, scope=SQLITE3)
    return outer


def n_plus_one_orders(b: SpanBuilder, *, requests: int = 1, items: int = 20, double: str | None = None,
                      seed: int = 5, version: str | None = "1.4.2") -> None:
    """``GET /orders/<int:order_id>`` loading its order lines one query per item (an N+1 of
    ``items`` sequential sqlite queries), ``requests`` times one second apart."""
    rng = random.Random(seed)
    for r in range(requests):
        t = r * 1000.0
        durs = [rng.uniform(1.5, 4.0) for _ in range(items)]
        root = flask_request(b, "orders", "/orders/<int:order_id>", f"/orders/{70 + r}", start_ms=t,
                             duration_ms=sum(durs) + items * 0.9 + 6, version=version)
        s = t + 3
        for i, d in enumerate(durs):
            sql_query(b, "orders", root, f"SELECT id, sku, qty FROM order_lines WHERE order_id = {70 + r} "
                      f"AND line_no = {i}", start_ms=s, duration_ms=d, version=version, double=double)
            s += d + rng.uniform(0.5, 1.2)


def urllib3_retries(b: SpanBuilder, *, requests: int = 1, failures: int = 2, gap_s: float = 2.0,
                    seed: int = 6) -> None:
    """frontend ``GET /checkout`` calls inventory through ``requests`` with urllib3's
    ``Retry(total=3, status_forcelist=[503])``: one client span, under it ``failures`` inventory
    server spans answering 503 then one answering 200, back to back (no backoff factor)."""
    rng = random.Random(seed)
    for r in range(requests):
        t = r * gap_s * 1000
        attempts = [rng.uniform(3, 9) for _ in range(failures + 1)]
        total = sum(attempts) + (failures + 1) * 0.4
        root = flask_request(b, "frontend", "/checkout", "/checkout", start_ms=t, duration_ms=total + 8)
        call = requests_call(b, "frontend", root, "http://127.0.0.1:5001/stock/sku-1001", start_ms=t + 3,
                             duration_ms=total + 1)
        s = t + 3.5
        for i, d in enumerate(attempts):
            flask_request(b, "inventory", "/stock/<sku>", "/stock/sku-1001", start_ms=s, duration_ms=d, parent=call,
                          status_code=503 if i < failures else 200)
            s += d + rng.uniform(0.2, 0.6)
