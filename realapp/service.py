"""A service process: ``opentelemetry-instrument python -m realapp.service`` with ``REALAPP_SPEC``.

``opentelemetry-instrument`` (with ``opentelemetry-distro``) has configured the SDK from the
``OTEL_*`` environment and patched Flask, requests, urllib3, sqlite3, SQLAlchemy, logging and
threading before this module runs. This module adds what a deployment would: the host's clock
(optionally ahead), name resolution of the other services (a hosts file for this process),
JSON log lines with the current trace and span ids, process metrics, and a clean shutdown that
flushes the exporters on SIGTERM.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .spec import ServiceSpec

_ORIGINAL_TIME = time.time
_ORIGINAL_TIME_NS = time.time_ns


def shift_clock(offset_ms: float) -> None:
    """Move this process's wall clock ``offset_ms`` ahead (a host whose clock is off).

    ``time.time``/``time.time_ns`` are replaced, and so is every module-level name already bound
    to them (the SDK takes span start/end and event times from ``time_ns`` imported at module
    level in ``opentelemetry.sdk.trace``; the Flask instrumentation takes the request start the
    same way). Monotonic clocks (timeouts, durations measured by the SDK's batch processor) are
    untouched, as on a real host whose wall clock is wrong.
    """
    off_ns = int(offset_ms * 1_000_000)

    def time_ns() -> int:
        return _ORIGINAL_TIME_NS() + off_ns

    def time_s() -> float:
        return _ORIGINAL_TIME() + off_ns / 1e9

    for mod in list(sys.modules.values()):
        for attr, new in (("time_ns", time_ns), ("time", time_s)):
            try:
                if getattr(mod, attr, None) is (_ORIGINAL_TIME_NS if attr == "time_ns" else _ORIGINAL_TIME):
                    setattr(mod, attr, new)
            except Exception:  # noqa: BLE001 - modules that refuse attribute writes keep their clock
                pass
    time.time_ns = time_ns
    time.time = time_s


def install_hosts(hosts: dict[str, str]) -> None:
    """Resolve the given host names to the given addresses in this process (like /etc/hosts)."""
    if not hosts:
        return
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in hosts:
            host = hosts[host]
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, service, version, pod, logger, message, the
    trace and span ids the logging instrumentation put on the record, extra ``fields``, and the
    formatted exception."""

    def __init__(self, spec: ServiceSpec) -> None:
        super().__init__()
        self.static = {"service": spec.name, "version": spec.version, "pod": spec.pod, "host": spec.host}

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=timezone.utc)
        doc: dict[str, Any] = {"timestamp": ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                               "level": record.levelname.lower(), **self.static, "logger": record.name,
                               "message": record.getMessage()}
        trace_id = getattr(record, "otelTraceID", "0")
        if trace_id and trace_id != "0":
            doc["trace_id"] = trace_id
            doc["span_id"] = getattr(record, "otelSpanID", None)
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(spec: ServiceSpec) -> None:
    handler = logging.FileHandler(spec.log_path, encoding="utf-8") if spec.log_path else logging.StreamHandler()
    handler.setFormatter(JsonLines(spec))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log lines
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)


#: process metrics asked of the system-metrics instrumentation (the rest would be host-wide)
PROCESS_METRICS = {
    "process.cpu.time": ["user", "system"],
    "process.memory.usage": None,
    "process.thread.count": None,
}


#: how long a stopping process keeps serving, answering ``Connection: close`` (graceful drain)
DRAIN_S = 1.0


class Drain:
    """WSGI middleware: once :attr:`draining` is set, every response says ``Connection: close``,
    so that callers holding a keep-alive connection reconnect (to the new process, during a
    rolling update) instead of sending their next request to a process about to exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.draining = threading.Event()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if not self.draining.is_set():
            return self.app(environ, start_response)

        def closing(status: str, headers: list, *exc: Any) -> Any:
            return start_response(status, [*headers, ("Connection", "close")], *exc)

        return self.app(environ, closing)


def _flush() -> None:
    """Export what the SDK still holds (spans in the batch processor, the last metrics)."""
    from opentelemetry import metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        shutdown = getattr(provider, "shutdown", None)
        if shutdown:
            shutdown()
    logging.shutdown()


def main() -> None:
    spec = ServiceSpec.from_env()
    if spec.clock_offset_ms:
        shift_clock(spec.clock_offset_ms)
    install_hosts(spec.hosts)
    configure_logging(spec)
    if spec.process_metrics:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

        SystemMetricsInstrumentor(config=PROCESS_METRICS).instrument()

    from werkzeug.serving import make_server

    from .apps import build

    app = build(spec)
    drain = Drain(app.wsgi_app)
    app.wsgi_app = drain
    server = make_server("127.0.0.1", spec.port, app, threaded=True)

    def stop() -> None:
        drain.draining.set()
        time.sleep(DRAIN_S)
        server.shutdown()  # serve_forever runs on the main thread: shutdown() must come from another one

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop).start())
    logging.getLogger("app").info("started", extra={"fields": {"port": spec.port}})
    server.serve_forever()
    _flush()
    os._exit(0)


if __name__ == "__main__":
    main()
