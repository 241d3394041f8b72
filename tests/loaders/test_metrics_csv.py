"""Long-format metrics CSV loader."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import LoadError, StrictModeError
from forensics.loaders.core.sniff import sniff

DATA = Path(__file__).parent.parent / "data" / "metrics_csv"


def _t(minute: int, sec: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 2, 18, 10, minute, sec, us, tzinfo=timezone.utc)


def test_sniff_needs_time_name_value_header(tmp_path):
    assert sniff(str(DATA / "samples.csv")) == "metrics_csv"
    other = tmp_path / "deploys.csv"
    other.write_text("time,service,version,kind\n2026-02-18T10:00:00Z,a,1,deploy\n")
    assert sniff(str(other)) != "metrics_csv"


def test_rows_times_labels_and_special_values():
    case = forensics.open_case()
    report = case.load(DATA / "samples.csv")
    rows = [(r["source_line"], r["time"], r["name"], {e["key"]: e["value"] for e in r["labels"]}, r["value"], r["service"])
            for r in case.sql("SELECT source_line, time, name, map_entries(labels) AS labels, value, service "
                              "FROM metrics ORDER BY source_line").dicts()]
    assert rows[:3] == [
        (2, _t(10), "http_server_duration_p99_ms", {"region": "eu-west-1", "pod, name": "catalog-service-7d9f8b6c5-x2x9z"}, 412.5, "catalog-service"),
        (3, _t(11, 0, 250000), "http_server_duration_p99_ms", {"region": "eu-west-1"}, 2510.0, "catalog-service"),
        (4, _t(12), "inventory_requests_per_second", {"pod, name": 'inv-0, "primary"'}, 1200.0, "inventory-service"),
    ]
    assert rows[3][:2] == (5, _t(13, 0, 123000)) and math.isnan(rows[3][4])  # epoch milliseconds
    assert rows[4] == (7, _t(14), "queue_depth", {"region": "eu-west-1", "pod, name": "q"}, math.inf, None)  # epoch µs
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY source_line").rows() == [
        (8, "bad_time", "bad time yesterday (expected ISO 8601 or epoch seconds/ms/us/ns)"),
        (9, "bad_value", "bad value lots (expected a number, NaN or +/-Inf)"),
        (10, "missing_field", "empty metric name"),
        (11, "wrong_shape", "expected 6 fields as in the header, found 4"),
    ]
    assert (report.records_read, report.rows_loaded) == (9, 5)


def test_job_label_gives_service_and_type_unit_columns(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("time,name,value,job,type,unit\n2026-02-18T10:10:00Z,up,1,inventory-service,Gauge,1\n")
    case = forensics.open_case()
    case.load(path)
    assert case.sql("SELECT service, type, unit, map_keys(labels) FROM metrics").rows() == [("inventory-service", "gauge", "1", ["job"])]


def test_strict_mode_and_bad_header(tmp_path):
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(DATA / "samples.csv", strict=True)
    assert "samples.csv" in str(err.value) and "line 8" in str(err.value)
    bad = tmp_path / "x.csv"
    bad.write_text("time,name,value,a,a\n2026-02-18T10:10:00Z,up,1,x,y\n")
    with pytest.raises(LoadError, match="repeated column names"):
        case.load(bad)


def test_wide_csv_one_column_per_series():
    from forensics.loaders.core.sniff import sniff as sniff_path

    path = Path(__file__).parent.parent / "data" / "metrics_csv" / "wide.csv"
    assert sniff_path(str(path)) == "metrics_csv"
    case = forensics.open_case()
    report = case.load(path)
    rows = case.sql("SELECT source_line, strftime(time, '%H:%M:%S'), name, map_entries(labels), value, service "
                    "FROM metrics ORDER BY source_line, name, value").rows()
    err = [{"key": "code", "value": "500"}, {"key": "job", "value": "catalog-service"}]
    assert rows[:5] == [
        (2, "10:00:00", "cpu_seconds", [], 0.5, None),
        (2, "10:00:00", "http_requests_total", err, 3.0, "catalog-service"),
        (2, "10:00:00", "http_requests_total", [{"key": "code", "value": "200"}, {"key": "job", "value": "catalog-service"}],
         120.0, "catalog-service"),
        (2, "10:00:00", "value", [{"key": "job", "value": "inventory"}], 1.0, "inventory"),
        (3, "10:00:15", "http_requests_total", err, 7.0, "catalog-service"),
    ]
    assert case.sql("SELECT count(*) FROM metrics WHERE source_line = 3").scalar() == 3  # the empty cell is no sample
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY 1").rows() == [
        (4, "bad_value", 'bad value n/a in column {job="inventory"} (expected a number, NaN or +/-Inf)'),
        (5, "bad_time", "bad time not a time (expected ISO 8601 or epoch seconds/ms/us/ns)"),
        (6, "wrong_shape", "expected 5 fields as in the header, found 3"),
    ]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (13, 10, 3)
