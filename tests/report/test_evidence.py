"""Evidence as a person reads it: units from key names, sensible rounding, lists of records as
tables, every detector's score with its unit; and on the flagship sample no evidence value is
printed as a raw float (the report once showed ``1544.3458845000005``)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import forensics
from forensics.detectors import detectors
from forensics.report.evidence import HIDDEN, SCORE_UNITS, evidence_tables, score_text, value_text

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "catalog_n_plus_one"


@pytest.mark.parametrize("path, value, text", [
    ("p99_ms", 1544.3458845000005, "1.5 s"),
    ("latency.new.p50_ms", 12.3456, "12.3 ms"),
    ("error_pct", 3.14159, "3.14%"),
    ("slow_share", 0.5117, "51%"),
    ("error_share_of_attempts", 1 / 3, "33%"),
    ("error_rate", 0.004, "0.4%"),
    ("share_increase", 0.0916, "+9.2 points"),
    ("share_increase", -0.25, "-25 points"),
    ("dip", 0.11432, "0.114"),
    ("traces", 12345, "12,345"),
    ("onset", "2026-02-18T10:16:00+00:00", "2026-02-18 10:16:00 UTC"),
    ("checked", True, "yes"),
    ("exemplars", ["a", "b"], "a, b"),
])
def test_value_text_units_and_rounding(path, value, text):
    assert value_text(path, value) == text


def test_lists_of_records_become_tables_and_hidden_keys_stay_out():
    rows, tables = evidence_tables({
        "by_version": [{"version": "1.7.9", "p99_ms": 359.04, "error_rate": 0.001},
                       {"version": "1.8.0", "p99_ms": 2512.9, "error_rate": 0.0}],
        "latency": {"new": {"p95_ms": 1800.123}},
        "exemplar_trace_ids": ["t1"], "thresholds": {"min_calls": 5}})
    assert tables == [{"title": "by version", "columns": ["version", "p99", "error rate"],
                       "rows": [["1.7.9", "359 ms", "0.1%"], ["1.8.0", "2.5 s", "0%"]]}]
    assert rows == [("latency / new / p95", "1.8 s")]
    assert {"exemplar_trace_ids", "thresholds"} <= HIDDEN


def test_every_detector_score_has_a_unit():
    assert set(detectors()) <= set(SCORE_UNITS)
    assert score_text("n_plus_one", 1544.3458845000005).startswith("1.5 s (")
    assert score_text("critical_path", 0.81).startswith("81% (")
    assert score_text("n_plus_one", None) == "-"


def test_no_raw_floats_in_the_flagship_evidence():
    if not SAMPLE.is_dir():
        pytest.skip("sample_data/catalog_n_plus_one missing")
    case = forensics.open_case()
    forensics.load(case, SAMPLE, progress=False)
    def raw(text: str) -> bool:  # a decimal with more significant digits than anyone reads
        return any(len(n.replace(".", "").lstrip("0")) > 4 for n in re.findall(r"\d+\.\d+", text))

    texts = []
    for f in forensics.detect(case, explain=True).records():
        rows, tables = evidence_tables(f["evidence"])
        texts += [(f["detector"], label, text) for label, text in rows]
        texts += [(f["detector"], t["title"], cell) for t in tables for row in t["rows"] for cell in row]
        texts.append((f["detector"], "score", score_text(f["detector"], f["score"])))
    assert len(texts) > 100
    assert not [t for t in texts if raw(t[2])]
