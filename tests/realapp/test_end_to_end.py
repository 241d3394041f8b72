"""Optional: run one tiny scenario of the real application end to end (REALAPP_E2E=1).

Skipped by default: it starts four service processes under ``opentelemetry-instrument`` and takes
20-60 s on a busy 2-core machine. The committed captures are checked by test_captures.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import forensics

pytestmark = pytest.mark.skipif(os.environ.get("REALAPP_E2E") != "1", reason="set REALAPP_E2E=1 to run the app")

ROOT = Path(__file__).resolve().parents[2]


def test_single_failed_trace_end_to_end(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "realapp", "single_failed_trace", "--out", str(tmp_path)], cwd=ROOT,
                   check=True, timeout=600)
    truth = json.loads((tmp_path / "single_failed_trace" / "truth.json").read_text())
    case = forensics.open_case()
    report = forensics.load(case, tmp_path / "single_failed_trace" / "otlp")
    assert report.rows_rejected == 0
    got = case.sql("SELECT service, status_message FROM spans WHERE span_id = ?",
                   [truth["facts"]["origin_span_id"]]).to_pandas()
    assert got.service.tolist() == ["pricing-service"]
    assert got.status_message.iloc[0].startswith("ZeroDivisionError")
    assert case.sql("SELECT count(DISTINCT trace_id) AS n FROM spans").to_pandas().n.iloc[0] == 1
