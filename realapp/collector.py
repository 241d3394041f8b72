"""A tiny local collector: stores each exporter POST body as it arrived.

Each service exports to ``http://127.0.0.1:PORT/<service>/<path>``:

- ``/<service>/v1/traces``, ``/v1/metrics``, ``/v1/logs``: OTLP/HTTP protobuf request bodies
  (``Export*ServiceRequest``), stored as ``<service>/<signal>-NNNN.binpb``, with ``.gz`` when the
  exporter sent ``Content-Encoding: gzip`` (the bytes are still the body as sent);
- ``/<service>/api/v2/spans``: Zipkin v2 JSON bodies, stored as ``<service>/zipkin-NNNN.json``.

The OTLP exporters get ``200`` with an empty response message, Zipkin ``202``, as from a
real collector.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SIGNALS = {"v1/traces": "traces", "v1/metrics": "metrics", "v1/logs": "logs", "api/v2/spans": "zipkin"}


@dataclass
class Received:
    time_ns: int
    service: str
    signal: str
    path: Path
    size: int


class Collector:
    """``with Collector(dir) as c: c.port ...``; ``c.received`` lists what was stored."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._seq: dict[tuple[str, str], int] = {}
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service, _, rest = self.path.lstrip("/").partition("/")
                signal = SIGNALS.get(rest.split("?")[0])
                if not service or signal is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                gz = self.headers.get("Content-Encoding", "") == "gzip"
                collector._store(service, signal, body, gz)
                self.send_response(202 if signal == "zipkin" else 200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _store(self, service: str, signal: str, body: bytes, gz: bool) -> None:
        with self._lock:
            n = self._seq[(service, signal)] = self._seq.get((service, signal), 0) + 1
            ext = ".json" if signal == "zipkin" else ".binpb"
            path = self.out_dir / service / f"{signal}-{n:04d}{ext}{'.gz' if gz else ''}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            self.received.append(Received(time.time_ns(), service, signal, path, len(body)))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port}/{service}"

    def files(self, signal: str, service: str | None = None) -> list[Path]:
        with self._lock:
            return [r.path for r in self.received if r.signal == signal and (service is None or r.service == service)]

    def __enter__(self) -> "Collector":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
