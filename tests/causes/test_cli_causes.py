"""`forensics causes`: the table, --explain, --format json and exit codes."""
from __future__ import annotations

import json

import pytest

from forensics.cli import main

from .faultapp import capture


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    case, app = capture("network_delay", "cart", seed=4)
    path = tmp_path_factory.mktemp("causes") / "case.duckdb"
    case.execute(f"ATTACH '{path}' AS out")
    for table in ("spans", "logs", "metrics", "events", "rejects", "files"):
        case.execute(f"CREATE TABLE out.{table} AS SELECT * FROM {table}")
    case.execute("DETACH out")
    return str(path), app


def test_table_names_the_cause_first(case_file, capsys):
    path, app = case_file
    assert main(["causes", path, "--window", f"{app.onset.isoformat()}.."]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("window 2026-03-02 14:05:00-") and "(given) vs baseline 2026-03-02 14:00:00-" in out[0]
    assert out[1].startswith("  1. cart  score ") and "[network" in out[1]
    assert out[2].strip().startswith("cart changed most: calls frontend -> cart GET /cart/{id} spend 1.2 ms -> 1")
    assert out[3].strip().startswith("exemplars: ")
    assert "why:" not in "\n".join(out)


def test_explain_says_why_each_ranks_lower(case_file, capsys):
    path, app = case_file
    assert main(["causes", path, "--window", f"{app.onset.isoformat()}..", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "why: rank 1, score " in out and "why: rank 2, score " in out and "below cart (score " in out


def test_json_is_one_document(case_file, capsys):
    path, app = case_file
    assert main(["causes", path, "--window", f"{app.onset.isoformat()}..", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["periods"]["how"] == "given"
    assert doc["causes"][0]["service"] == "cart" and doc["causes"][0]["strong"] is True
    assert {"rank", "service", "kind", "score", "strong", "signals", "summary", "explain", "evidence"} <= set(doc["causes"][0])


def test_found_onset_without_a_window(case_file, capsys):
    path, app = case_file
    assert main(["causes", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(onset of entry latency" in out[0]
    assert out[1].startswith("  1. cart  score ")


@pytest.mark.parametrize("args, message", [
    (["--window", "2030-01-01.."], "is outside the data"),
    (["--window", "noon"], "expected START..END"),
    (["--baseline", "..2026-03-02T14:05"], "baseline given without window"),
])
def test_bad_periods_exit_2_with_one_line(case_file, capsys, args, message):
    path, _ = case_file
    assert main(["causes", path, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("forensics: error: ") and message in err[0]
