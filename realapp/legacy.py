"""OpenTracing-era spans from the real jaeger-client (Python), as the Jaeger UI downloads them.

Two services, each with its own ``jaeger_client.Tracer`` (const sampler): ``web-frontend`` serves
``GET /orders/{id}`` and calls ``orders-service`` over real HTTP on 127.0.0.1, propagating the
``uber-trace-id`` header with the tracer's ``inject``/``extract``. orders-service runs its
queries against sqlite and traces each one the way a Java JDBC tracing integration did: a span
per ``HikariProxyPreparedStatement.executeQuery`` with OpenTracing tags (``component=java-jdbc``,
``db.type``, ``db.instance``, ``db.statement``, ``peer.service``, ``peer.hostname``,
``peer.address``) and no ``span.kind``, plus an older custom integration's audit insert
(tags ``sql`` and ``database``).

The spans go through jaeger-client's own Thrift conversion (``thrift.make_process`` and
``thrift.make_jaeger_batch``, what its reporter sends to the agent); :func:`ui_trace` then
renders them as the Jaeger query service does for spans received in Jaeger Thrift: ids as
hex (64-bit trace ids: 16 hex digits), ``parentSpanId`` as a ``CHILD_OF`` reference, the
collector's ``internal.span.format=jaeger`` tag, tags sorted by key, ``flags``, microsecond
times, ``warnings: null``, processes ``p1``, ``p2``... in order of first appearance.
"""
from __future__ import annotations

import base64
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

#: repeats of executeQuery under one parent, one request each (from issue #16)
REPEATS = (9, 12, 14)
STATEMENT = "select ol.id, ol.sku, ol.qty, ol.price from order_lines ol where ol.order_id=? and ol.line_no=?"

_TYPES = {0: "string", 1: "float64", 2: "bool", 3: "int64", 4: "binary"}


class Recorder:
    """A jaeger-client reporter that keeps what the real one would send: the Thrift process made
    by ``thrift.make_process`` and the finished spans (Thrift batch made at the end)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.process: Any = None
        self.lock = threading.Lock()

    def set_process(self, service_name: str, tags: dict, max_length: int) -> None:
        from jaeger_client import thrift

        self.process = thrift.make_process(service_name=service_name, tags=tags, max_length=max_length)

    def report_span(self, span: Any) -> None:
        with self.lock:
            self.spans.append(span)

    def close(self) -> Any:
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(True)
        return f

    def batch(self) -> Any:
        from jaeger_client import thrift

        return thrift.make_jaeger_batch(spans=self.spans, process=self.process)


def tracer(service: str, hostname: str, ip: str) -> tuple[Any, Recorder]:
    from jaeger_client import Tracer
    from jaeger_client.sampler import ConstSampler

    rec = Recorder()
    return Tracer(service_name=service, reporter=rec, sampler=ConstSampler(True),
                  tags={"hostname": hostname, "ip": ip}), rec


def _orders_db() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:", check_same_thread=False)
    con.execute("CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER, line_no INTEGER, sku TEXT, "
                "qty INTEGER, price REAL)")
    con.executemany("INSERT INTO order_lines (order_id, line_no, sku, qty, price) VALUES (?, ?, ?, ?, ?)",
                    [(o, n, f"SKU-{o * 31 + n:04d}", 1 + n % 3, 4.5 + n) for o in range(1000, 1010) for n in range(20)])
    con.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, order_id INTEGER, at REAL)")
    return con


def run() -> tuple[list[Any], dict[str, Any]]:
    """Serve three requests; returns (Thrift batches, facts)."""
    from opentracing import Format
    from opentracing.ext import tags as ext

    front, front_rec = tracer("web-frontend", "web-frontend-6c9f7d8b5-qx2lm", "10.42.1.17")
    orders, orders_rec = tracer("orders-service", "orders-service-84d5b6c7f-t8vzn", "10.42.2.31")
    db = _orders_db()
    db_lock = threading.Lock()

    class Orders(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            ctx = orders.extract(Format.HTTP_HEADERS, dict(self.headers))
            order_id, _, query = self.path.rpartition("/")[2].partition("?")
            lines = int(query.split("=")[1])
            with orders.start_active_span("GET /orders/{id}", child_of=ctx, tags={
                    ext.SPAN_KIND: ext.SPAN_KIND_RPC_SERVER, ext.COMPONENT: "java-web-servlet",
                    ext.HTTP_METHOD: "GET", ext.HTTP_URL: f"http://orders-service:8080/orders/{order_id}"}) as srv:
                with orders.start_active_span("OrderRepository.findLines", tags={"component": "spring-data-jpa"}):
                    for n in range(lines):
                        with orders.start_active_span("HikariProxyPreparedStatement.executeQuery", tags={
                                ext.COMPONENT: "java-jdbc", ext.DATABASE_TYPE: "sql", ext.DATABASE_INSTANCE: "orders",
                                ext.DATABASE_STATEMENT: STATEMENT, ext.DATABASE_USER: "orders_app",
                                ext.PEER_SERVICE: "mysql", ext.PEER_HOSTNAME: "orders-db.internal",
                                "peer.address": "orders-db.internal:3306", ext.PEER_PORT: 3306}):
                            with db_lock:
                                db.execute(STATEMENT.replace("ol.id", "id"), (int(order_id), n)).fetchall()
                            time.sleep(0.002)  # the database's network round trip
                with orders.start_active_span("AuditLog.insert", tags={
                        "sql": "insert into audit (order_id, at) values (?, ?)", "database": "audit",
                        ext.COMPONENT: "audit-jdbc"}):
                    with db_lock:
                        db.execute("INSERT INTO audit (order_id, at) VALUES (?, ?)", (int(order_id), time.time()))
                body = b'{"ok": true}'
                srv.span.set_tag(ext.HTTP_STATUS_CODE, 200)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Orders)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    session = requests.Session()
    try:
        for i, lines in enumerate(REPEATS):
            order_id = 1000 + i
            with front.start_active_span("HTTP GET /orders/{id}", tags={
                    ext.SPAN_KIND: ext.SPAN_KIND_RPC_SERVER, ext.HTTP_METHOD: "GET",
                    ext.HTTP_URL: f"/orders/{order_id}", ext.COMPONENT: "tornado"}) as root:
                with front.start_active_span("GET", tags={
                        ext.SPAN_KIND: ext.SPAN_KIND_RPC_CLIENT, ext.HTTP_METHOD: "GET", ext.COMPONENT: "requests",
                        ext.HTTP_URL: f"http://orders-service:8080/orders/{order_id}", ext.PEER_SERVICE: "orders-service"}) as cl:
                    headers: dict[str, str] = {}
                    front.inject(cl.span.context, Format.HTTP_HEADERS, headers)
                    r = session.get(f"http://127.0.0.1:{port}/orders/{order_id}?lines={lines}", headers=headers, timeout=30)
                    cl.span.set_tag(ext.HTTP_STATUS_CODE, r.status_code)
                root.span.set_tag(ext.HTTP_STATUS_CODE, 200)
    finally:
        server.shutdown()
        server.server_close()
    return [front_rec.batch(), orders_rec.batch()], {"requests": len(REPEATS)}


# ------------------------------------------------------------------------------ Jaeger UI JSON
def _u64(v: int) -> int:
    return v & 0xFFFFFFFFFFFFFFFF


def _trace_hex(high: int, low: int) -> str:
    return f"{_u64(high):016x}{_u64(low):016x}" if high else f"{_u64(low):016x}"


def _tag(t: Any) -> dict[str, Any]:
    kind = _TYPES[t.vType]
    v = {"string": t.vStr, "float64": t.vDouble, "bool": t.vBool, "int64": t.vLong, "binary": t.vBinary}[kind]
    if kind == "binary":
        v = base64.b64encode(v).decode()
    return {"key": t.key, "type": kind, "value": v}


def ui_trace(batches: list[Any], trace_low: int) -> dict[str, Any]:
    """The Jaeger query trace object of one trace (64-bit id ``trace_low``) from Thrift batches."""
    processes: dict[str, dict[str, Any]] = {}
    spans = []
    for b in batches:
        proc = {"serviceName": b.process.serviceName, "tags": sorted((_tag(t) for t in b.process.tags),
                                                                     key=lambda t: t["key"])}
        pid = None
        for s in b.spans:
            if _u64(s.traceIdLow) != _u64(trace_low):
                continue
            if pid is None:
                pid = next((k for k, p in processes.items() if p == proc), f"p{len(processes) + 1}")
                processes[pid] = proc
            tid = _trace_hex(s.traceIdHigh, s.traceIdLow)
            refs = [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{_u64(s.parentSpanId):016x}"}] \
                if s.parentSpanId else []
            tags = [_tag(t) for t in s.tags] + [{"key": "internal.span.format", "type": "string", "value": "jaeger"}]
            spans.append({"traceID": tid, "spanID": f"{_u64(s.spanId):016x}", "flags": s.flags,
                          "operationName": s.operationName, "references": refs, "startTime": s.startTime,
                          "duration": s.duration, "tags": sorted(tags, key=lambda t: t["key"]),
                          "logs": [{"timestamp": lg.timestamp, "fields": [_tag(f) for f in lg.fields]}
                                   for lg in (s.logs or [])],
                          "processID": pid, "warnings": None})
    return {"traceID": spans[0]["traceID"], "spans": spans, "processes": processes, "warnings": None}
