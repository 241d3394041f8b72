from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

import forensics
from forensics import Findings
from forensics.synth.builder import SpanBuilder

HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned=2\">"
SECRETS = {
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU",
    "url_password": "https://admin:hunter2pass@db.internal.example.com/orders",
    "email": "alice.smith@example.org",
    "ip": "10.20.30.40",
    "api_key": "api_key=sk_test_ABCDEFGH12345678",
}


@pytest.fixture()
def hostile_case():
    """A small case whose telemetry carries markup and secrets, plus one finding with an exemplar."""
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=7)
    first = None
    for i in range(20):
        root = b.span("catalog-service", HOSTILE if i == 0 else "GET /search", kind="server", start_ms=i * 1000,
                      duration_ms=100 + i, version="1.8.0", status="error" if i % 5 == 0 else "ok",
                      status_message=SECRETS["bearer"] if i == 0 else None,
                      attributes={"http.url": SECRETS["url_password"], "user.email": SECRETS["email"],
                                  "client.address": SECRETS["ip"]})
        b.span("catalog-service", "GET /inventory/{id}", kind="client", parent=root, start_ms=i * 1000 + 5,
               duration_ms=20, attributes={"peer.service": "inventory-service", "http.url": "http://inv/?" + SECRETS["api_key"]})
        first = first or root
    case = forensics.open_case()
    b.insert(case)
    case.execute("INSERT INTO events (time, kind, service, version, message, source_file) VALUES "
                 "(TIMESTAMPTZ '2026-02-18 10:00:05+00', 'deploy', 'catalog-service', '1.8.0', ?, 'deploys.jsonl')",
                 [HOSTILE + " by " + SECRETS["email"]])
    findings = Findings.from_records([{
        "detector": "n_plus_one", "severity": "high", "title": HOSTILE, "service": "catalog-service",
        "operation": "GET /search", "target": "inventory-service", "target_operation": "GET /inventory/{id}",
        "version": "1.8.0", "start_time": datetime(2026, 2, 18, 10, tzinfo=timezone.utc),
        "end_time": datetime(2026, 2, 18, 10, 1, tzinfo=timezone.utc), "score": 9.5,
        "evidence": {"exemplar_trace_ids": [first.trace_id], "thresholds": {"min_calls": 5},
                     "source": "traces.jsonl:12", "note": SECRETS["url_password"]},
        "summary": f"{HOSTILE} contacted {SECRETS['email']} at {SECRETS['ip']}"}])
    return case, findings, first.trace_id


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
needs_chromium = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium); .ci/run installs it"),
]


class PageLog:
    """What a page did: console errors and uncaught exceptions, and every URL it requested."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]


@contextlib.contextmanager
def chromium_page(url: str, *, width: int = 1400, height: int = 900) -> Iterator[tuple[Any, PageLog]]:
    """Open ``url`` in headless Debian chromium (offline flags); yields (page, log)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    log = PageLog()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            page.on("request", lambda r: log.requests.append(r.url))
            page.goto(url, timeout=180_000)  # a shared, loaded machine: a large report can take a while
            yield page, log
        finally:
            browser.close()
