"""An external API the application calls but does not trace: plain ``http.server``, no
OpenTelemetry at all (``python -m realapp.external`` with ``REALAPP_SPEC``).

payments-provider answers ``POST /v1/charges``, geoip ``GET /v1/lookup``; both after a short
simulated latency (``knobs["latency_ms"]``).
"""
from __future__ import annotations

import json
import random
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .spec import ServiceSpec


def main() -> None:
    spec = ServiceSpec.from_env()
    rng = random.Random(1)
    lock = threading.Lock()
    latency = float(spec.knobs.get("latency_ms", 12.0))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, doc: dict) -> None:
            with lock:
                f = rng.lognormvariate(0.0, 0.2)
            time.sleep(latency * f / 1000)
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.startswith("/healthz"):
                return self._reply(200, {"ok": True})
            self._reply(200, {"country": "NL", "city": "Amsterdam"})

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            self._reply(201, {"id": f"ch_{rng.randrange(10**12):012d}", "status": "succeeded"})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", spec.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
