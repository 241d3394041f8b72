"""Open the report offline in Debian's chromium: plots render, no console errors, no planted
script runs, no network request. Skipped (with the reason) when chromium is not installed."""
from __future__ import annotations

from forensics.report import report

from .conftest import chromium_page, needs_chromium

pytestmark = needs_chromium


def test_report_renders_offline_without_errors_or_injection(hostile_case, tmp_path):
    case, findings, _ = hostile_case
    out = report(case, tmp_path / "r.html", findings=findings)
    with chromium_page(out.as_uri()) as (page, log):
        page.wait_for_selector("#fig-timeline .main-svg", timeout=30000)
        rendered = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
    assert rendered >= 3  # timeline, service graph, exemplar waterfall
    assert pwned is None
    assert log.errors == []
    assert log.external_requests() == []
