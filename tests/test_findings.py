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
    assert f.to_pandas().shape == (3, 17) and f.to_polars().shape == (3, 17)


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


def test_finding_ids_are_stable_and_incident_columns_start_empty():
    a = Findings.from_records([_rec(), _rec(severity="low")])
    b = Findings.from_records([_rec(), _rec(severity="low")])
    ids = [r["finding_id"] for r in a]
    assert ids == [r["finding_id"] for r in b] and len(set(ids)) == 2
    assert all(i.startswith("n_plus_one-") for i in ids)
    assert {(r["incident_id"], r["role"], r["caused_by"]) for r in a} == {(None, None, None)}


def test_with_columns_sets_incident_fields_and_validates():
    f = Findings.from_records([_rec(), _rec(severity="low")])
    g = f.with_columns(incident_id=["incident-1", None], role=["cause", None], caused_by=[None, None])
    assert [r["role"] for r in g] == ["cause", None]
    assert [r["finding_id"] for r in g] == [r["finding_id"] for r in f]
    data = json.loads(g.to_json())
    assert data[0]["incident_id"] == "incident-1" and "caused_by" in data[0]
    with pytest.raises(ValueError, match="unknown finding column"):
        f.with_columns(colour=["red", "blue"])
    with pytest.raises(ValueError, match="role"):
        Findings.from_records([_rec(role="culprit")])


def test_a_table_without_the_incident_columns_is_accepted():
    import pyarrow as pa

    from forensics.findings import DETECTOR_COLUMNS

    t = Findings.from_records([_rec()]).to_arrow().select(list(DETECTOR_COLUMNS))
    assert isinstance(t, pa.Table) and Findings(t)[0]["finding_id"].startswith("n_plus_one-")
