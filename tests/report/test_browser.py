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


def test_first_screen_of_the_demo_report_tells_the_incident(tmp_path_factory):
    """The flagship incident's report in Chromium: the first screen (1400x900) holds the incident
    sentence and the table of contents; no console error, no request; the screenshot is kept under
    the pytest base temp dir's ``artifacts/`` (and ``$FORENSICS_ARTIFACTS`` when set)."""
    import os
    from pathlib import Path

    import forensics

    sample = Path(__file__).resolve().parents[2] / "sample_data" / "catalog_n_plus_one"
    if not sample.is_dir():
        import pytest

        pytest.skip("sample_data/catalog_n_plus_one missing")
    work = tmp_path_factory.mktemp("demo-report")
    with forensics.open_case(work / "case.duckdb") as case:
        forensics.load(case, sample, progress=False)
        out = report(case, work / "report.html")
    artifacts = [tmp_path_factory.getbasetemp() / "artifacts"]
    if os.environ.get("FORENSICS_ARTIFACTS"):
        artifacts.append(Path(os.environ["FORENSICS_ARTIFACTS"]))
    with chromium_page(out.as_uri(), width=1400, height=900) as (page, log):
        page.wait_for_selector("#fig-timeline .main-svg", timeout=60000)
        first = page.evaluate("""() => {
          const story = document.querySelector('.story');
          const toc = document.querySelector('nav.toc');
          const r = story.getBoundingClientRect(), t = toc.getBoundingClientRect();
          return {text: story.innerText, storyBottom: r.bottom, tocBottom: t.bottom, height: window.innerHeight,
                  links: Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href')),
                  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id)};
        }""")
        for folder in artifacts:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / "report-first-screen.png"))
    assert "deploy catalog-service 1.7.9 -> 1.8.0" in first["text"] and "cause: N+1" in first["text"]
    assert "p99" in first["text"] and "requests affected" in first["text"]
    assert first["storyBottom"] < first["height"] and first["tocBottom"] < first["height"]  # above the fold
    ids = set(first["ids"])
    assert [h for h in first["links"] if h[1:] not in ids] == []  # every link resolves in the report
    assert log.errors == [] and log.external_requests() == []
    assert (artifacts[0] / "report-first-screen.png").stat().st_size > 10_000
