from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from forensics import Findings


def _rec(**kw):
    base = dict(detector="n_plus_one", severity="high", title="t", service="catalog-service", operation="/search",
                target="inventory-service", target_operation="GET /inventory/{id}", version="1.8.0",
                start_time=datetime(2026, 2, 18, 10, tzinfo=timezone.utc), end_time=None, score=3.0,
                evidence={"exemplar_trace_ids": ["ab" * 16], "thresholds": {"min_calls": 5}}, summary="s <b>")
    base.update(kw)
    return base


def test_round_trip_and_ordering():
    f = Findings.concat([Findings.from_records([_rec(severity="low", score=9)]),
                         Findings.from_records([_rec(severity="critical", score=1), _rec(severity="high", score=2)])])
    assert [r["severity"] for r in f] == ["critical", "high", "low"]
    assert f[0]["evidence"]["thresholds"] == {"min_calls": 5}
    assert len(f.at_least("high")) == 2
    data = json.loads(f.to_json())
    assert data[0]["start_time"].startswith("2026-02-18T10:00:00")
    assert f.to_pandas().shape == (3, 13) and f.to_polars().shape == (3, 13)


def test_html_repr_escapes_telemetry():
    html = Findings.from_records([_rec(summary="<script>alert(1)</script>")])._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_validation():
    with pytest.raises(ValueError, match="severity"):
        Findings.from_records([_rec(severity="urgent")])
    with pytest.raises(ValueError, match="unknown finding fields"):
        Findings.from_records([_rec(colour="red")])
    with pytest.raises(ValueError, match="timezone"):
        Findings.from_records([_rec(start_time=datetime(2026, 1, 1))])
    assert len(Findings.empty()) == 0 and "none" in repr(Findings.empty())
