"""A small hand-built incident: gateway -> catalog -> inventory (+ an uninstrumented postgres).

Traces 0..9 run catalog-service 1.7.9 (1 inventory call each), traces 10..19 run 1.8.0
(5 inventory calls each, slower); trace 19's last inventory call fails. One trace per 30 s
from BASE; a deploy event for catalog 1.8.0 at BASE + 5 min; logs on the catalog spans.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import forensics
from forensics.synth.builder import SpanBuilder

BASE = datetime(2026, 2, 18, 10, 0, tzinfo=timezone.utc)
HOSTILE = "<script>alert(1)</script>"


def build_incident(b: SpanBuilder, *, hostile: bool = False) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {"traces": [], "catalog_server_span": []}
    for t in range(20):
        new = t >= 10
        t0 = t * 30_000.0
        n_inv = 5 if new else 1
        total = 40.0 + n_inv * 20.0
        root = b.span("gateway", "GET /search", kind="server", start_ms=t0, duration_ms=total + 10, version="2.0",
                      attributes={"http.route": "/search", "http.response.status_code": 200})
        gc = b.span("gateway", "GET", kind="client", parent=root, start_ms=t0 + 2, duration_ms=total + 4,
                    attributes={"peer.service": "catalog-service"})
        cat = b.span("catalog-service", HOSTILE if hostile and t == 0 else "GET /search", kind="server",
                     parent=gc, start_ms=t0 + 3, duration_ms=total, version="1.8.0" if new else "1.7.9",
                     attributes={"http.route": "/search"})
        ids["traces"].append(root.trace_id)
        ids["catalog_server_span"].append(cat.span_id)
        b.span("catalog-service", "SELECT items", kind="client", parent=cat, start_ms=t0 + 4, duration_ms=10,
               version="1.8.0" if new else "1.7.9", attributes={"db.system": "postgresql", "server.address": "pg-0"})
        for i in range(n_inv):
            err = t == 19 and i == n_inv - 1
            c = b.span("catalog-service", "GET /inventory", kind="client", parent=cat, start_ms=t0 + 15 + 20 * i,
                       duration_ms=18, version="1.8.0" if new else "1.7.9", status="error" if err else "unset",
                       attributes={"peer.service": "inventory-service"})
            b.span("inventory-service", "GET /inventory", kind="server", parent=c, start_ms=t0 + 16 + 20 * i,
                   duration_ms=16, version="3.1", status="error" if err else "unset")
    return ids


def insert_logs_and_events(case: forensics.Case, ids: dict[str, list[str]], *, hostile: bool = False) -> None:
    case.execute(
        """INSERT INTO logs (time, service, severity, body, trace_id, span_id, template)
           SELECT ?::TIMESTAMPTZ + to_milliseconds(30000 * i + 50), 'catalog-service',
                  CASE WHEN i = 19 THEN 'error' ELSE 'info' END,
                  CASE WHEN i = 0 THEN ? ELSE 'search done items_returned=5' END,
                  list_extract(?, i + 1), list_extract(?, i + 1), 'search done items_returned=<*>'
           FROM range(20) r(i)""",
        [BASE, HOSTILE if hostile else "search done items_returned=5", ids["traces"], ids["catalog_server_span"]])
    case.execute(
        """INSERT INTO events (time, kind, service, version, reason, message)
           VALUES (?, 'deploy', 'catalog-service', '1.8.0', 'Deployed', ?),
                  (?, 'k8s', 'inventory-service', NULL, 'BackOff', 'Back-off restarting failed container')""",
        [BASE + timedelta(minutes=5), HOSTILE if hostile else "rolled out 1.8.0", BASE + timedelta(minutes=8)])


def make_incident_case(*, seed: int = 3, hostile: bool = False) -> tuple[forensics.Case, dict[str, list[str]]]:
    """An in-memory case holding the incident (spans, logs, events) and its ids."""
    case = forensics.open_case()
    b = SpanBuilder(BASE, seed=seed)
    ids = build_incident(b, hostile=hostile)
    b.insert(case)
    insert_logs_and_events(case, ids, hostile=hostile)
    return case, ids


@pytest.fixture
def incident():
    case, ids = make_incident_case()
    yield case, ids
    case.close()


@pytest.fixture
def hostile_case():
    case, ids = make_incident_case(seed=4, hostile=True)
    yield case, ids
    case.close()


@pytest.fixture
def empty_case():
    case = forensics.open_case()
    yield case
    case.close()
