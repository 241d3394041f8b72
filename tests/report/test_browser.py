"""Open the report offline in Debian's chromium: plots render, no console errors, no planted
script runs, no network request. Skipped (with the reason) when chromium is not installed."""
from __future__ import annotations

import os
import shutil

import pytest

from forensics.report import report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium); .ci/run installs it"),
]


def test_report_renders_offline_without_errors_or_injection(hostile_case, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    case, findings, _ = hostile_case
    out = report(case, tmp_path / "r.html", findings=findings)
    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(out.as_uri())
        page.wait_for_selector("#fig-timeline .main-svg", timeout=30000)
        rendered = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        browser.close()
    assert rendered >= 3  # timeline, service graph, exemplar waterfall
    assert pwned is None
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))] == []
