"""Shared fixtures for detector tests: hand-built cases shaped like the guide's incidents.

The flagship: catalog-service v1.7.9 answers ``GET /search`` with one batch call to
inventory-service; v1.8.0 makes one ``GET /inventory/{id}`` call per item (~50, sequential).
Builders are plain functions taking a :class:`SpanBuilder` so tests can vary sizes and shapes;
fixtures wrap them in an in-memory case.
"""
from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Callable

import pytest

import forensics
from forensics.synth.builder import SpanBuilder, SpanRef

BASE = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)


def inventory_call(b: SpanBuilder, parent: SpanRef, start_ms: float, duration_ms: float, item: int | str,
                   *, version: str, status: str = "unset", http_status: int = 200,
                   child: bool = True, attributes: dict | None = None) -> SpanRef:
    """A catalog-service HTTP client call to ``GET /inventory/<item>`` (+ the server span)."""
    attrs = {"http.request.method": "GET", "url.full": f"http://inventory-service:8080/inventory/{item}",
             "server.address": "inventory-service", "http.response.status_code": http_status, **(attributes or {})}
    call = b.span("catalog-service", "GET", kind="client", parent=parent, start_ms=start_ms,
                  duration_ms=duration_ms, version=version, status=status, attributes=attrs)
    if child:
        b.span("inventory-service", "GET /inventory/{id}", kind="server", parent=call, start_ms=start_ms + 0.5,
               duration_ms=max(duration_ms - 1.0, 0.1), version="3.2.0", status=status,
               attributes={"http.request.method": "GET", "http.route": "/inventory/{id}",
                           "http.response.status_code": http_status})
    return call


def build_orphans(b: SpanBuilder, *, calls: int = 10, **call_kwargs) -> None:
    """Client calls whose parent span was never exported (a broken trace)."""
    ghost = SpanRef("ab" * 16, "cd" * 8, 0.0)
    for i in range(calls):
        inventory_call(b, ghost, i * 20.0, 19.0, i, version=call_kwargs.pop("version", None), child=False, **call_kwargs)


def build_flagship(b: SpanBuilder, *, requests_per_version: int = 40, items: int = 50, seed: int = 7,
                   gap_ms: float = 1000.0) -> None:
    """v1.7.9 (one batch call per /search) then v1.8.0 (``items`` sequential per-item calls)."""
    rng = random.Random(seed)
    t = 0.0
    for version in ("1.7.9", "1.8.0"):
        for _ in range(requests_per_version):
            if version == "1.7.9":
                dur = rng.uniform(150, 380)
                root = b.span("catalog-service", "GET /search", kind="server", start_ms=t, duration_ms=dur,
                              version=version, attributes={"http.request.method": "GET", "http.route": "/search"})
                call = b.span("catalog-service", "POST", kind="client", parent=root, start_ms=t + 5,
                              duration_ms=dur - 20, version=version,
                              attributes={"http.request.method": "POST", "server.address": "inventory-service",
                                          "url.full": "http://inventory-service:8080/inventory/batch"})
                b.span("inventory-service", "POST /inventory/batch", kind="server", parent=call, start_ms=t + 6,
                       duration_ms=dur - 22, version="3.2.0",
                       attributes={"http.request.method": "POST", "http.route": "/inventory/batch"})
            else:
                durs = [rng.uniform(25, 55) for _ in range(items)]
                total = sum(durs) + items * 0.3 + 20
                root = b.span("catalog-service", "GET /search", kind="server", start_ms=t, duration_ms=total,
                              version=version, attributes={"http.request.method": "GET", "http.route": "/search"})
                s = t + 10
                for d in durs:
                    inventory_call(b, root, s, d, rng.randint(10000, 99999), version=version)
                    s += d + 0.3
            t += gap_ms


def build_fanout_clean(b: SpanBuilder, *, requests: int = 40, version: str = "2.0.0") -> None:
    """Healthy shapes: fan-out to different dependencies, a batch of 3, and 20 parallel calls."""
    rng = random.Random(3)
    for i in range(requests):
        t = i * 1000.0
        root = b.span("checkout-service", "POST /checkout", kind="server", start_ms=t, duration_ms=400,
                      version=version, attributes={"http.request.method": "POST", "http.route": "/checkout"})
        s = t + 5
        for dep in ("payment-service", "cart-service", "user-service", "shipping-service", "tax-service", "fraud-service"):
            b.span("checkout-service", "POST", kind="client", parent=root, start_ms=s, duration_ms=30, version=version,
                   attributes={"http.request.method": "POST", "peer.service": dep, "url.full": f"http://{dep}/api/v1/do"})
            s += 31
        for k in range(3):  # a small batch below min_calls
            b.span("checkout-service", "SELECT shop.orders", kind="client", parent=root, start_ms=s, duration_ms=25,
                   version=version, attributes={"db.system": "postgresql",
                                                "db.statement": f"SELECT * FROM orders WHERE id = {rng.randint(1, 9999)}"})
            s += 26
        for k in range(20):  # parallel fan-out: all at once
            b.span("checkout-service", "GET", kind="client", parent=root, start_ms=s + rng.uniform(0, 1),
                   duration_ms=rng.uniform(20, 30), version=version,
                   attributes={"http.request.method": "GET", "peer.service": "price-service",
                               "url.full": f"http://price-service/prices/{rng.randint(100, 99999)}"})


@pytest.fixture
def make_case() -> Callable[..., forensics.Case]:
    """``make_case(builder_fn, **kwargs)``: an in-memory case holding the spans ``builder_fn`` adds."""
    def make(build: Callable[..., None], seed: int = 1, **kwargs) -> forensics.Case:
        b = SpanBuilder(BASE, seed=seed, source_file="traces.json")
        build(b, **kwargs)
        case = forensics.open_case()
        b.insert(case)
        return case
    return make


@pytest.fixture(scope="session")
def flagship_spans():
    """The flagship spans as an Arrow table (built once; each test gets its own case)."""
    b = SpanBuilder(BASE, seed=1, source_file="traces.json")
    build_flagship(b)
    return b.to_arrow()


def case_from_arrow(spans) -> forensics.Case:
    """A fresh in-memory case holding ``spans`` (an Arrow table with the canonical schema)."""
    case = forensics.open_case()
    case.con.register("_test_spans", spans)
    case.execute("INSERT INTO spans BY NAME SELECT * FROM _test_spans")
    case.con.unregister("_test_spans")
    return case


@pytest.fixture
def flagship_case(flagship_spans) -> forensics.Case:
    return case_from_arrow(flagship_spans)


@pytest.fixture
def clean_case(make_case) -> forensics.Case:
    return make_case(build_fanout_clean)


@pytest.fixture
def empty_case() -> forensics.Case:
    return forensics.open_case()


def build_retry_storm(b: SpanBuilder, *, minutes: int = 10, per_minute: int = 30, storm: tuple[int, int] = (5, 8),
                      attempts: int = 4, gap_ms: float = 1.0, seed: int = 11) -> None:
    """checkout-service POST /checkout -> payment-service POST /charge, one call per request;
    during the ``storm`` minutes payment fails (timeouts, 503) and the client retries
    ``attempts`` times ``gap_ms`` apart (no backoff by default) while inbound stays flat."""
    rng = random.Random(seed)
    for m in range(minutes):
        stormy = storm[0] <= m < storm[1]
        for k in range(per_minute):
            t = m * 60_000 + k * (60_000 / per_minute) + rng.uniform(0, 100)
            root = b.span("checkout-service", "POST /checkout", kind="server", start_ms=t, duration_ms=3000,
                          version="5.0.1", attributes={"http.route": "/checkout", "http.request.method": "POST"})
            s = t + 3
            n = attempts if stormy else 1
            for i in range(n):
                fail = stormy and i < n - 1
                dur = 800.0 if fail and i % 2 == 0 else rng.uniform(20, 60)
                code = 503 if fail and i % 2 else (504 if fail else 200)
                call = b.span("checkout-service", "POST", kind="client", parent=root, start_ms=s, duration_ms=dur,
                              version="5.0.1", status="error" if fail else "unset",
                              status_message=("context deadline exceeded" if fail and i % 2 == 0 else None),
                              attributes={"http.request.method": "POST", "peer.service": "payment-service",
                                          "url.full": "http://payment-service/charge", "http.response.status_code": code,
                                          **({"http.request.resend_count": i} if i else {})})
                b.span("payment-service", "POST /charge", kind="server", parent=call, start_ms=s + 1,
                       duration_ms=dur - 2, version="9.9.0", status="error" if fail else "unset",
                       attributes={"http.route": "/charge", "http.request.method": "POST",
                                   "http.response.status_code": code})
                s += dur + gap_ms


def build_normal_retries(b: SpanBuilder, *, requests: int = 300, retried: int = 4, seed: int = 12) -> None:
    """Healthy: a few requests retry once after a 503, with 200 ms backoff."""
    rng = random.Random(seed)
    for k in range(requests):
        t = k * 2000.0
        root = b.span("checkout-service", "POST /checkout", kind="server", start_ms=t, duration_ms=500,
                      version="5.0.1", attributes={"http.route": "/checkout", "http.request.method": "POST"})
        fail = k % (requests // retried) == 0
        s = t + 2
        for i in range(2 if fail else 1):
            bad = fail and i == 0
            dur = rng.uniform(20, 60)
            b.span("checkout-service", "POST", kind="client", parent=root, start_ms=s, duration_ms=dur, version="5.0.1",
                   status="error" if bad else "unset",
                   attributes={"http.request.method": "POST", "peer.service": "payment-service",
                               "url.full": "http://payment-service/charge",
                               "http.response.status_code": 503 if bad else 200})
            s += dur + 200.0


@pytest.fixture(scope="session")
def synth_case(tmp_path_factory) -> Callable[..., tuple]:
    """``synth_case(name, traces=800, seed=1)`` -> ``(case, truth)``: a synth scenario generated
    and loaded once per session, shared by the detector tests (treat the case as read-only)."""
    cache: dict[tuple, tuple] = {}

    def make(name: str, traces: int = 800, seed: int = 1) -> tuple:
        key = (name, traces, seed)
        if key not in cache:
            import forensics.synth as synth

            out = tmp_path_factory.mktemp(f"{name}-{traces}-{seed}")
            truth = synth.generate(name, out, traces=traces, seed=seed)
            case = forensics.open_case()
            case.load(out)
            cache[key] = (case, truth)
        return cache[key]
    return make
