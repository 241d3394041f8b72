"""The report over a case made of hostile strings in every field (tests/report/hostile.py), with the
real detectors' findings: in Chromium no script runs, nothing is requested, no element comes from
telemetry (no link, no styled or bold text, no image) even with every hover label drawn, and after
``--redact`` no secret of a documented class is left anywhere in the file."""
from __future__ import annotations

import pytest

import forensics
from forensics.report import report

from .conftest import chromium_page, needs_chromium
from .hostile import SECRETS, make_hostile_case


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    path = make_hostile_case(work)
    with forensics.open_case(path) as case:
        findings = forensics.detect(case)
        redacted = report(case, work / "redacted.html", findings=findings, redact=True)
        plain = report(case, work / "plain.html", findings=findings)
    return findings, plain, redacted


def test_findings_carry_the_hostile_strings(hostile_report):
    findings, plain, _ = hostile_report
    assert len(findings) >= 2  # the N+1 incident is still found under the hostile names
    assert any("evil.example" in (f["service"] or "") for f in findings.records())
    html = plain.read_text()
    assert SECRETS["email"][1] in html  # unredacted reports keep the telemetry as it is (escaped)


def test_redacted_report_holds_no_secret_of_a_documented_class(hostile_report):
    _, _, redacted = hostile_report
    html = redacted.read_text()
    left = {kind: needle for kind, (_, needle) in SECRETS.items() if needle in html}
    assert left == {}
    assert "[REDACTED:" in html


#: run in the page: hover the first points of every trace of every figure; after each hover,
#: collect elements that only telemetry markup could have made
_PROBE = """() => {
  const bad = [];
  const check = (where) => {
    const found = document.querySelectorAll(
      'a[href*="evil"], svg a, [style*="123456"], [style*="18, 52, 86"], img, tspan[style*="bold"], ' +
      'main script:not([type="application/json"]), svg script, script[src]');
    for (const el of found) {
      bad.push(where + ': <' + el.tagName + '> ' + (el.outerHTML || '').slice(0, 120));
    }
  };
  check('page');
  let hovered = 0;
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const subplots = Object.keys((gd._fullLayout || {})._plots || {});
    (gd.data || []).forEach((trace, i) => {
      const n = Math.min(3, (trace.x || trace.y || []).length || 1);
      for (let p = 0; p < n; p++) {
        try { Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: p}], subplots); hovered++; } catch (e) {}
        check(gd.id + ' trace ' + i + ' point ' + p);
      }
    });
  }
  return {bad: bad, hovered: hovered};
}"""


@pytest.mark.parametrize("which", ["plain", "redacted"])
@needs_chromium[0]
@needs_chromium[1]
def test_no_element_script_or_request_from_telemetry_in_chromium(hostile_report, which):
    _, plain, redacted = hostile_report
    out = plain if which == "plain" else redacted
    with chromium_page(out.as_uri()) as (page, log):
        page.wait_for_selector("#fig-timeline .main-svg", timeout=60000)
        result = page.evaluate(_PROBE)
        labels = page.evaluate("document.querySelectorAll('.hoverlayer .hovertext').length")
        pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
        text = page.evaluate("document.body.innerText")
    assert pwned is None
    assert result["hovered"] > 10 and labels >= 0
    assert result["bad"] == []
    assert log.errors == []
    assert log.external_requests() == []
    assert '<a href="https://evil.example/x"' in text  # the markup is shown as text
