"""The HTML report: self-contained, escaped, CSP-locked, redactable, with every finding."""
from __future__ import annotations

import re

import forensics
from forensics.cli import main
from forensics.report import render, report
from forensics.report.build import csp_hash

from .conftest import HOSTILE, SECRETS


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.S)


def test_report_contains_findings_figures_and_provenance(hostile_case, tmp_path):
    case, findings, trace_id = hostile_case
    out = report(case, tmp_path / "r.html", findings=findings)
    html = out.read_text()
    assert "n_plus_one" in html and "inventory-service" in html
    assert 'data-figure="fig-timeline"' in html and 'data-figure="fig-graph"' in html
    assert f'id="trace-{trace_id}"' in html  # exemplar waterfall
    assert "Provenance" in html and "min_calls=5" in html and "traces.jsonl:12" in html
    assert "figure unavailable" not in html


def test_no_unescaped_telemetry_and_only_hashed_scripts(hostile_case):
    case, findings, _ = hostile_case
    html = render(case, findings=findings)
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned" in html  # escaped markup in the findings section
    scripts = _scripts(html)
    assert len(scripts) == 1  # the bootstrap; plotly.js travels gzipped in a data block it unpacks
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    import base64
    import gzip

    packed = re.search(r'<script type="application/gzip-base64" id="plotly-js-gzip">([^<]*)</script>', html).group(1)
    plotly_js = gzip.decompress(base64.b64decode(packed)).decode()
    for s in scripts + [plotly_js]:
        assert csp_hash(s) in csp
    assert len(csp.split("script-src")[1].split(";")[0].split()) == 2  # those two hashes, nothing else
    for block in re.findall(r'<script type="application/json" data-figure="[^"]+">(.*?)</script>', html, flags=re.S):
        assert "<" not in block and ">" not in block


def test_no_network_references(hostile_case):
    case, findings, _ = hostile_case
    html = render(case, findings=findings)
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # the markup outside the two scripts
    assert not re.search(r"""(src|href|action)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "@import" not in markup


def test_redaction_removes_planted_secrets_everywhere(hostile_case):
    case, findings, _ = hostile_case
    plain = render(case, findings=findings)
    assert SECRETS["email"] in plain
    html = render(case, findings=findings, redact=True, redact_patterns=[("customer", r"catalog-service")])
    for name, value in SECRETS.items():
        needle = value.split("=", 1)[1] if name == "api_key" else value
        assert needle not in html, name
    assert "hunter2pass" not in html and "10.20.30.40" not in html
    assert "[REDACTED:email]" in html and "[REDACTED:customer]" in html


def _case_file(case, tmp_path):
    path = tmp_path / "c.duckdb"
    with forensics.open_case(path) as c2:
        c2.con.register("s", case.sql("select * from spans").to_arrow())
        c2.execute("INSERT INTO spans SELECT * FROM s")
    return path


def test_cli_report(hostile_case, tmp_path, capsys):
    case, _, _ = hostile_case
    path = _case_file(case, tmp_path)
    out = tmp_path / "r.html"
    assert main(["report", str(path), "-o", str(out), "--redact"]) == 0
    assert out.exists() and "secrets and PII redacted" in out.read_text()


def test_empty_case_report(tmp_path):
    out = report(forensics.open_case(), tmp_path / "e.html", findings=forensics.Findings.empty())
    assert "No incident: the detectors found nothing" in out.read_text()


def test_markdown_summary_tells_the_incident_and_escapes_telemetry(hostile_case, tmp_path):
    from forensics.report import markdown_report
    from forensics.report.markdown import md

    case, findings, _ = hostile_case
    text = markdown_report(case, tmp_path / "s.md", findings=findings, redact=True).read_text()
    assert text.startswith("# Incident report") and "## What happened" in text
    assert "<script" not in text and "<img" not in text and SECRETS["email"] not in text
    assert md("[x](https://evil.example) <b>|") == "\\[x\\](https:\\/\\/evil.example) &lt;b>\\|"


def test_cli_report_markdown(hostile_case, tmp_path):
    case, _, _ = hostile_case
    path = _case_file(case, tmp_path)
    out = tmp_path / "r.md"
    assert main(["report", str(path), "-o", str(out), "--format", "markdown"]) == 0
    assert "## What happened" in out.read_text()
