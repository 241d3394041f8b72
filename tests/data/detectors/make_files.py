"""Generate tests/data/detectors/ real-shaped exports (run once; output committed)."""
import json, random
rng = random.Random(42)
T0 = 1771408800000000  # 2026-02-18T10:00:00Z in µs
# --- Zipkin v2: frontend /cart calling productcatalog once per product (120), B3 shared halves
spans = []
tid = "463ac35c9f6413ad48485a3953bb6124"
root = "a2fb4a1d1a96d312"
spans.append({"traceId": tid, "id": root, "kind": "SERVER", "name": "get /cart", "timestamp": T0, "duration": 1_650_000,
              "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.3.17", "port": 8080},
              "remoteEndpoint": {"ipv4": "10.0.0.2", "port": 50112},
              "tags": {"http.method": "GET", "http.path": "/cart", "http.status_code": "200"}})
t = T0 + 2_000
for i in range(120):
    sid = f"{rng.getrandbits(64):016x}"
    dur = rng.randint(9_000, 13_000)
    pid = f"{rng.randint(0, 99999):05d}"
    spans.append({"traceId": tid, "parentId": root, "id": sid, "kind": "CLIENT", "name": "get", "timestamp": t, "duration": dur,
                  "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.3.17"},
                  "remoteEndpoint": {"serviceName": "productcatalog", "ipv4": "10.0.5.4", "port": 3550},
                  "tags": {"http.method": "GET", "http.path": f"/api/products/{pid}", "http.status_code": "200"}})
    spans.append({"traceId": tid, "parentId": root, "id": sid, "kind": "SERVER", "name": "get /api/products/{id}",
                  "timestamp": t + 400, "duration": dur - 900, "shared": True,
                  "localEndpoint": {"serviceName": "productcatalog", "ipv4": "10.0.5.4", "port": 3550},
                  "remoteEndpoint": {"ipv4": "10.0.3.17", "port": 41000 + i},
                  "tags": {"http.method": "GET", "http.path": f"/api/products/{pid}", "http.status_code": "200"}})
    t += dur + rng.randint(100, 400)
with open("tests/data/detectors/zipkin_n_plus_one.json", "w") as fh:
    fh.write("[\n" + ",\n".join(json.dumps(s, separators=(",", ":")) for s in spans) + "\n]\n")

# --- Jaeger /api/traces: order-service repeats one SELECT per order line (30 per request, 3 requests)
traces = []
for r in range(3):
    tid = f"{rng.getrandbits(64):016x}"
    root = f"{rng.getrandbits(64):016x}"
    start = T0 + r * 5_000_000
    sp = [{"traceID": tid, "spanID": root, "flags": 1, "operationName": "GET /orders/{id}", "references": [],
           "startTime": start, "duration": 240_000, "processID": "p1", "warnings": None, "logs": [],
           "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "http.method", "type": "string", "value": "GET"},
                    {"key": "http.route", "type": "string", "value": "/orders/{id}"},
                    {"key": "http.status_code", "type": "int64", "value": 200},
                    {"key": "otel.library.name", "type": "string", "value": "io.opentelemetry.tomcat-10.0"}]}]
    t = start + 1_500
    for i in range(30):
        dur = rng.randint(5_000, 7_000)
        sp.append({"traceID": tid, "spanID": f"{rng.getrandbits(64):016x}", "flags": 1, "operationName": "SELECT orders.order_lines",
                   "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": root}],
                   "startTime": t, "duration": dur, "processID": "p1", "warnings": None, "logs": [],
                   "tags": [{"key": "span.kind", "type": "string", "value": "client"},
                            {"key": "db.system", "type": "string", "value": "postgresql"},
                            {"key": "db.name", "type": "string", "value": "orders"},
                            {"key": "db.statement", "type": "string",
                             "value": f"SELECT id, sku, qty FROM order_lines WHERE order_id = {88000 + r} AND line_no = {i + 1}"},
                            {"key": "net.peer.name", "type": "string", "value": "orders-db"},
                            {"key": "net.peer.port", "type": "int64", "value": 5432},
                            {"key": "otel.library.name", "type": "string", "value": "io.opentelemetry.jdbc"}]})
        t += dur + 150
    traces.append({"traceID": tid, "spans": sp, "processes": {"p1": {"serviceName": "order-service", "tags": [
        {"key": "service.version", "type": "string", "value": "4.1.0"},
        {"key": "host.name", "type": "string", "value": "order-service-7d9f8-abcde"},
        {"key": "telemetry.sdk.language", "type": "string", "value": "java"}]}}, "warnings": None})
with open("tests/data/detectors/jaeger_repeated_db.json", "w") as fh:
    json.dump({"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None}, fh, indent=1)
