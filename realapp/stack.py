"""Running the application: a collector, one process per service, a load generator's client.

``with Stack(work_dir, ...) as stack: stack.get("/api/products/SKU-0001")`` starts the local
collector and every service (each under ``opentelemetry-instrument`` in its own process, on
its own 127.0.0.1 port), waits until all answer ``/healthz``, and on exit stops them with
SIGTERM (each flushes its exporters) and then the collector.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import requests

from .collector import Collector
from .proxy import DelayProxy
from .spec import EXTERNAL_HOSTS, SERVICES, ServiceSpec

REPO = Path(__file__).resolve().parents[1]
ALL = ("api-gateway", "catalog-service", "inventory-service", "pricing-service", "fleet-service", "device-api",
       "payments-provider", "geoip")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod_name(service: str, salt: str = "") -> str:
    """A Kubernetes-style pod name, stable for a service (and a salt, e.g. a version)."""
    h = hashlib.sha1(f"{service}/{salt}".encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    rs = "".join(alphabet[int(h[i:i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))
    return f"{service}-{rs[:9]}-{rs[5:10]}"


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_inventory_db(path: Path, skus: int = 500) -> None:
    """The inventory database (made here, untraced, so that no setup statement is exported)."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE stock (sku VARCHAR PRIMARY KEY, qty INTEGER, warehouse VARCHAR)")
    con.execute("CREATE TABLE reservations (id INTEGER PRIMARY KEY AUTOINCREMENT, sku VARCHAR, qty INTEGER)")
    rng = random.Random(5)
    con.executemany("INSERT INTO stock VALUES (?, ?, ?)",
                    [(f"SKU-{i:04d}", rng.randrange(0, 200), rng.choice(["ams-1", "fra-2"])) for i in range(1, skus + 1)])
    con.commit()
    con.close()


@dataclass
class Options:
    """How the stack runs (everything a scenario may change)."""

    services: tuple[str, ...] = ALL
    #: per-service knobs (see :mod:`realapp.apps`)
    knobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    clock_offsets_ms: dict[str, float] = field(default_factory=dict)
    #: ``otlp`` (OTLP/HTTP protobuf) or ``zipkin`` (Zipkin v2 JSON) span exporter
    exporter: str = "otlp"
    #: send OTLP bodies gzip-compressed (``OTEL_EXPORTER_OTLP_COMPRESSION=gzip``)
    gzip: bool = False
    #: ``OTEL_SEMCONV_STABILITY_OPT_IN`` (None: the instrumentations' default, old conventions)
    semconv: str | None = None
    #: metrics export interval (ms); None: no metrics
    metrics_interval_ms: int | None = None
    #: put a delaying TCP proxy in front of every service (its callers connect through it)
    proxies: bool = False
    #: batch span processor delay (ms): long, so that bodies are few and large
    bsp_delay_ms: int = 30000


@dataclass
class Proc:
    spec: ServiceSpec
    popen: subprocess.Popen


class Stack:
    def __init__(self, work_dir: Path, options: Options | None = None) -> None:
        self.work = Path(work_dir)
        self.opt = options or Options()
        self.raw = self.work / "raw"
        self.logs = self.work / "logs"
        for d in (self.raw, self.logs, self.work / "proc"):
            d.mkdir(parents=True, exist_ok=True)
        self.collector = Collector(self.raw)
        self.ports = {s: free_port() for s in self.opt.services}
        self.proxies: dict[str, DelayProxy] = {}
        self.procs: dict[str, Proc] = {}
        self.deploys: list[dict[str, Any]] = []
        self.hogs: list[subprocess.Popen] = []
        self.session = requests.Session()

    # ---------------------------------------------------------------- processes
    def host_of(self, service: str) -> str:
        return EXTERNAL_HOSTS.get(service, service)

    def _spec(self, name: str, version: str) -> ServiceSpec:
        hosts = {self.host_of(s): "127.0.0.1" for s in self.opt.services}
        deps = {}
        for s in self.opt.services:
            port = self.proxies[s].port if s in self.proxies else self.ports[s]
            deps[s] = f"http://{self.host_of(s)}:{port}"
        knobs = dict(self.opt.knobs.get(name, {}))
        if name == "inventory-service":
            knobs.setdefault("db_path", "inventory.db")  # relative to the process's directory, the work dir
        pod = pod_name(name, version)
        traced = name not in EXTERNAL_HOSTS
        spec = ServiceSpec(name=name, version=version, port=self.ports[name], pod=pod, host=pod, deps=deps,
                           hosts=hosts, knobs=knobs, clock_offset_ms=self.opt.clock_offsets_ms.get(name, 0.0),
                           log_path=str(self.logs / f"{name}.jsonl") if traced else "", traced=traced,
                           process_metrics=self.opt.metrics_interval_ms is not None)
        spec.otel_env = self._otel_env(spec) if traced else {}
        return spec

    def _otel_env(self, spec: ServiceSpec) -> dict[str, str]:
        base = self.collector.url(spec.name)
        resource = {"service.version": spec.version, "service.namespace": "shop", "deployment.environment": "prod",
                    "host.name": spec.host, "k8s.pod.name": spec.pod, "k8s.namespace.name": "shop",
                    "k8s.deployment.name": spec.name}
        env = {
            "OTEL_SERVICE_NAME": spec.name,
            "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in resource.items()),
            "OTEL_TRACES_EXPORTER": "zipkin_json" if self.opt.exporter == "zipkin" else "otlp_proto_http",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{base}/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{base}/v1/metrics",
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"{base}/api/v2/spans",
            "OTEL_METRICS_EXPORTER": "none" if self.opt.metrics_interval_ms is None else "otlp_proto_http",
            "OTEL_METRIC_EXPORT_INTERVAL": str(self.opt.metrics_interval_ms or 60000),
            "OTEL_LOGS_EXPORTER": "none",
            # the logging instrumentation puts otelTraceID/otelSpanID on every record (JSON lines,
            # realapp.service); no OpenTelemetry log handler
            "OTEL_PYTHON_LOG_CORRELATION": "true",
            "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION": "false",
            "OTEL_BSP_SCHEDULE_DELAY": str(self.opt.bsp_delay_ms),
            # system metrics are asked for explicitly (process metrics only, realapp.service);
            # services without a database do not load the database instrumentations (startup time)
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "system_metrics" if spec.name == "inventory-service"
            else "system_metrics,sqlalchemy,sqlite3",
            "OTEL_PYTHON_FLASK_EXCLUDED_URLS": "healthz,__control",
        }
        if self.opt.gzip:
            env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
        if self.opt.semconv:
            env["OTEL_SEMCONV_STABILITY_OPT_IN"] = self.opt.semconv
        return env

    def _launch(self, name: str, version: str) -> Proc:
        spec = self._spec(name, version)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(spec.to_env())
        env.update(spec.otel_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        if spec.traced:
            instrument = Path(sys.executable).with_name("opentelemetry-instrument")
            cmd = [str(instrument), sys.executable, "-m", "realapp.service"]
        else:
            cmd = [sys.executable, "-m", "realapp.external"]
        out = open(self.work / "proc" / f"{name}-{version or 'ext'}.log", "ab")
        popen = subprocess.Popen(cmd, env=env, cwd=self.work, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return Proc(spec, popen)

    def _wait_ready(self, names: Iterable[str], timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            url = f"http://127.0.0.1:{self.ports[name]}/healthz"
            while True:
                proc = self.procs[name].popen
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.work / 'proc'}")
                try:
                    if requests.get(url, timeout=1).ok:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start within {timeout_s} s; see {self.work / 'proc'}")
                time.sleep(0.1)

    def version(self, name: str) -> str:
        return self.opt.versions.get(name, SERVICES[name][0])

    def start(self) -> "Stack":
        self.collector.__enter__()
        if "inventory-service" in self.opt.services:
            make_inventory_db(self.work / "inventory.db")
        if self.opt.proxies:
            for s in self.opt.services:
                self.proxies[s] = DelayProxy(self.ports[s]).start()
        for name in self.opt.services:
            self.procs[name] = self._launch(name, self.version(name))
        self._wait_ready(self.opt.services)
        return self

    def redeploy(self, name: str, version: str, description: str = "") -> int:
        """Replace ``name``'s process by one running ``version``; returns the deploy time (ns),
        recorded in :attr:`deploys`. With a proxy in front of the service (``proxies=True``) this
        is a rolling update: the new process starts on a new port, the proxy switches to it, then
        the old one stops (no request fails); without, the old process stops first."""
        previous = self.procs[name]
        if name in self.proxies:
            self.ports[name] = free_port()
        else:
            self._stop(name)
        self.opt.versions[name] = version
        self.procs[name] = self._launch(name, version)
        self._wait_ready([name])
        t = time.time_ns()
        if name in self.proxies:
            self.proxies[name].target_port = self.ports[name]
            _terminate(previous.popen)  # drains: its callers reconnect through the proxy
        self.deploys.append({"time": iso(t), "service": name, "version": version,
                             "previous_version": previous.spec.version, "kind": "deploy",
                             "description": description or f"{name} {version}", "environment": "prod",
                             "author": "ci-bot"})
        return t

    def _stop(self, name: str) -> None:
        _terminate(self.procs[name].popen)

    def stop(self) -> None:
        for hog in self.hogs:
            stop_hog(hog)
        for proc in self.procs.values():  # all at once: each drains for a second
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self._stop(name)
        for p in self.proxies.values():
            p.stop()
        time.sleep(0.2)
        self.collector.__exit__(None, None, None)

    def __enter__(self) -> "Stack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- traffic and faults
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['api-gateway']}{path}"

    def request(self, method: str, path: str, *, baggage: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        """One request to the gateway, untraced (the gateway's server span is the root)."""
        headers = kw.pop("headers", {})
        if baggage:
            headers["baggage"] = ",".join(f"{k}={v}" for k, v in baggage.items())
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url(path), headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def run_mix(self, calls: list[tuple[str, str, dict[str, Any]]], *, concurrency: int = 4,
                pace_s: float = 0.0, seconds: float | None = None) -> list[int]:
        """Send ``(method, path, kwargs)`` calls with ``concurrency`` clients; each client waits
        ``pace_s`` between its calls; with ``seconds``, no call starts after that long. Returns
        the status codes of the calls sent, in call order."""
        deadline = time.monotonic() + seconds if seconds is not None else None
        lock = threading.Lock()
        it = iter(enumerate(calls))
        codes = [0] * len(calls)

        def client() -> None:
            s = requests.Session()
            while True:
                with lock:
                    nxt = next(it, None)
                if nxt is None or (deadline is not None and time.monotonic() > deadline):
                    return
                i, (method, path, kw) = nxt
                try:
                    codes[i] = s.request(method, self.url(path), timeout=60, **kw).status_code
                except requests.RequestException:
                    codes[i] = -1
                if pace_s:
                    time.sleep(pace_s)

        with ThreadPoolExecutor(concurrency) as pool:
            for f in [pool.submit(client) for _ in range(concurrency)]:
                f.result()
        return [c for c in codes if c != 0]

    def control(self, name: str, **state: float) -> None:
        """Change a service's injected-fault state (``POST /__control``, not traced)."""
        requests.post(f"http://127.0.0.1:{self.ports[name]}/__control", json=state, timeout=10).raise_for_status()

    def pid(self, name: str) -> int:
        return self.procs[name].popen.pid

    def write_deploys(self, path: Path) -> None:
        with open(path, "w") as f:
            for d in self.deploys:
                f.write(json.dumps(d) + "\n")


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM (a service flushes its exporters), then SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_hog(seconds: float, cpu: int | None = None) -> subprocess.Popen:
    """A CPU hog process (a busy loop that stops by itself after ``seconds``), optionally
    pinned to one core."""
    code = f"import time\nend = time.monotonic() + {float(seconds)}\nwhile time.monotonic() < end:\n    pass\n"
    p = subprocess.Popen([sys.executable, "-c", code])
    if cpu is not None:
        os.sched_setaffinity(p.pid, {cpu})
    return p


def stop_hog(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        p.wait()
