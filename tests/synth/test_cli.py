"""forensics synth and forensics demo from the command line."""
from __future__ import annotations

import json

import pytest

from forensics.cli import main
from forensics.synth import Truth
from forensics.synth.demo import run_demo


def test_synth_command_writes_incident_and_truth(tmp_path, capsys):
    out = tmp_path / "tmp"
    assert main(["synth", "n_plus_one", "--out", str(out), "--traces", "200"]) == 0
    text = capsys.readouterr().out
    assert "expect n_plus_one: catalog-service GET /search -> inventory-service GET /inventory/{id} (version 1.8.0)" in text
    truth = json.loads((out / "truth.json").read_text())
    assert truth["traces"] == 200 and truth["format"] == "otlp"
    assert (out / "traces.otlp.jsonl").is_file() and (out / "metrics.prom").is_file()


def test_synth_command_format_seed_subtle_param(tmp_path, capsys):
    out = tmp_path / "z"
    assert main(["synth", "retry_storm", "--out", str(out), "--format", "zipkin", "--traces", "30", "--seed", "4",
                 "--subtle", "--param", "attempts=2"]) == 0
    truth = Truth.read(out)
    assert truth.subtle and truth.seed == 4 and truth.params["attempts"] == 2
    assert list((out / "zipkin").glob("spans-*.json"))


@pytest.mark.parametrize("argv, message", [
    (["synth", "nope", "--out", "x"], "unknown scenario 'nope'"),
    (["synth", "clean", "--out", "x", "--format", "csv"], "--format 'csv' is not a trace format"),
    (["synth", "clean", "--out", "x", "--traces", "0"], "--traces must be at least 1"),
    (["synth", "clean", "--out", "x", "--param", "oops"], "--param expects NAME=VALUE"),
])
def test_synth_command_bad_usage_exits_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_demo_command(tmp_path, capsys):
    """The flagship demo on the committed sample (about a minute: 44k spans, every detector, the report)."""
    out = tmp_path / "tmp"
    assert main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (out / "case.duckdb").is_file()
    assert "loaded: spans " in text and "rejected 0" in text
    assert "expected (truth.json):" in text and "n_plus_one: catalog-service GET /search -> inventory-service" in text
    assert ("report: " + str(out / "report.html")) in text or "report is not available yet" in text


@pytest.mark.slow
def test_run_demo_on_a_generated_incident(tmp_path):
    """run_demo on a small generated incident (every registered detector runs: tens of seconds)."""
    from forensics.synth import generate

    generate("n_plus_one", tmp_path / "inc", traces=150, seed=2, scrape_interval_s=300)
    result = run_demo(tmp_path / "out", source=tmp_path / "inc")
    assert result.load_report.rows_rejected == 0 and not result.generated
    assert result.load_report.by_table()["spans"] == result.truth.counts["spans"]
    if "n_plus_one" in result.detectors_run:
        assert dict((e["detector"], ok) for e, ok in result.matched())["n_plus_one"]
    if result.report_path is not None:
        assert result.report_path.read_text().lstrip().lower().startswith("<!doctype html")
