"""Deploy / change log loader (CSV with header, JSON lines)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff

DATA = Path(__file__).parent.parent / "data" / "deploys"


def _t(h: int, m: int, s: int = 0, us: int = 0) -> datetime:
    return datetime(2026, 2, 18, h, m, s, us, tzinfo=timezone.utc)


def _events(case):
    return [(r["source_line"], r["time"], r["kind"], r["service"], r["version"], r["message"],
             {e["key"]: e["value"] for e in r["attributes"]})
            for r in case.sql("SELECT source_line, time, kind, service, version, message, map_entries(attributes) AS attributes "
                              "FROM events ORDER BY source_line").dicts()]


@pytest.mark.parametrize("name", ["changes.csv", "changes.jsonl"])
def test_sniffed(name):
    assert sniff(str(DATA / name)) == "deploy_log"


def test_sniff_leaves_logs_and_metrics_alone(tmp_path):
    log = tmp_path / "app.jsonl"
    log.write_text('{"time":"2026-02-18T10:00:00Z","level":"info","service":"a","version":"1","msg":"hi"}\n')
    csv = tmp_path / "m.csv"
    csv.write_text("time,service,version,value\n2026-02-18T10:00:00Z,a,1,3\n")
    from forensics.loaders.core.registry import formats

    spec = formats()["deploy_log"]
    from forensics.loaders.core.sniff import head_of

    assert spec.sniff(head_of(str(log))) == 0 and spec.sniff(head_of(str(csv))) == 0


def test_csv_rows_kinds_quotes_zones_and_rejects():
    case = forensics.open_case()
    report = case.load(DATA / "changes.csv")
    assert _events(case) == [
        (2, _t(9, 40), "deploy", "inventory-service", "2.3.1", "routine dependency bump", {"author": "ci-bot"}),
        (3, _t(10, 5), "deploy", "catalog-service", "1.8.0", 'Search: per-item availability lookup ("faster" UI)',
         {"author": "alice", "ticket": "CAT-1234"}),
        (4, _t(10, 30), "rollback", "catalog-service", "1.7.9", "rolled back after p99 alert", {"author": "bob", "ticket": "CAT-1234"}),
        (5, _t(9, 20), "feature_flag", "catalog-service", None, "enable search.v2 for 10%", {"author": "carol"}),
    ]
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects ORDER BY source_line").rows() == [
        (6, "bad_time", "missing or unreadable time not-a-time (expected ISO 8601 or epoch seconds/ms/us/ns)"),
        (7, "wrong_shape", "expected 7 fields as in the header, found 3"),
    ]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (6, 4, 2)


def test_json_lines_field_aliases_and_attributes():
    case = forensics.open_case()
    case.load(DATA / "changes.jsonl")
    assert _events(case) == [
        (1, _t(10, 5, 0, 250000), "deploy", "catalog-service", "1.8.0", "canary 10%", {"env": "prod", "meta": '{"pipeline":42}'}),
        (2, _t(10, 10), "config", "checkout-service", None, "timeout_ms 800 -> 300", {}),
        (3, _t(10, 12), "deploy", "payment-service", "v5.0.2", None, {}),
    ]
    assert case.sql("SELECT source_line, reason_code FROM rejects ORDER BY source_line").rows() == [
        (4, "bad_time"), (5, "invalid_json")]


def test_strict_mode_names_file_and_line():
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(DATA / "changes.jsonl", strict=True)
    assert "changes.jsonl" in str(err.value) and "line 4" in str(err.value)
    assert case.sql("SELECT count(*) FROM events").scalar() == 0


OTHERS = sorted(p for d in ("jaeger", "zipkin", "otlp", "logs") for p in (DATA.parent / d).glob("*") if p.is_file())
MINE = ("deploy_log", "metrics_csv", "prometheus_text", "prom_api_json", "k8s_events", "k8s_pods")


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_metrics_and_events_sniffers_leave_other_formats_alone(path):
    """Traces (OTLP, Jaeger, Zipkin) and logs of the other loaders' test data score 0 here."""
    from forensics.loaders.core.registry import formats
    from forensics.loaders.core.sniff import head_of

    head = head_of(str(path))
    assert {name: formats()[name].sniff(head) for name in MINE} == dict.fromkeys(MINE, 0.0)


@pytest.mark.parametrize("text", [
    '{"resourceSpans":[{"resource":{},"scopeSpans":[]}]}\n',
    '{"traceID":"abc","spans":[],"processes":{}}\n',
    '[{"traceId":"abc","id":"def","name":"get","localEndpoint":{"serviceName":"a"}}]\n',
    '{"time":"2026-02-18T10:00:00Z","level":"info","msg":"started","service":"a","version":"1.0"}\n',
    'time=2026-02-18T10:00:00Z level=info msg=started service=a\n',
])
def test_metrics_and_events_sniffers_score_zero_on_foreign_shapes(tmp_path, text):
    from forensics.loaders.core.registry import formats
    from forensics.loaders.core.sniff import head_of

    path = tmp_path / "x.json"
    path.write_text(text)
    head = head_of(str(path))
    assert {name: formats()[name].sniff(head) for name in MINE} == dict.fromkeys(MINE, 0.0)


def test_csv_quoted_fields_spanning_lines_are_one_record():
    assert sniff(str(DATA / "changes_multiline.csv")) == "deploy_log"
    case = forensics.open_case()
    report = case.load(DATA / "changes_multiline.csv")
    assert [(e[0], e[2], e[3], e[4], e[5], e[6]) for e in _events(case)] == [
        (2, "deploy", "catalog-service", "1.8.0",
         'Release 1.8.0:\n- search uses the new inventory client\n\n- "N+1" fix postponed', {"author": "alice"}),
        (6, "rollback", "catalog-service", "1.7.9", "Rolled back: p99 latency\n(see INC-2031)", {"author": "bob"}),
        (8, "deploy", "payments", "4.2.0", "plain one-line note", {"author": "carol"}),
    ]
    assert case.sql("SELECT source_line, reason_code, reason FROM rejects").rows() == [
        (9, "wrong_shape", "a quoted field opened on line 9 never closes (the file ends on line 10 inside it)")]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)


def test_csv_record_spanning_a_batch_boundary(tmp_path):
    rows = "".join(f'2026-02-18T10:{i % 60:02d}:00Z,svc-{i},1.{i}.0,deploy,"line one of {i}\nline two of {i}",x\n'
                   for i in range(300))
    path = tmp_path / "changes.csv"
    path.write_text("time,service,version,kind,description,author\n" + rows)
    case = forensics.open_case()
    case.load(path, batch_bytes=1000)
    assert case.sql("SELECT count(*), count(DISTINCT message), min(source_line), max(source_line) FROM events").rows() == [
        (300, 300, 2, 600)]
    assert case.sql("SELECT message FROM events WHERE service = 'svc-7'").scalar() == "line one of 7\nline two of 7"
    assert case.sql("SELECT count(*) FROM rejects").scalar() == 0
