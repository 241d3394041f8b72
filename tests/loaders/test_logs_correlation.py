"""Logs next to spans: trace <-> log joins, the time-zone warning, sniffing a directory of logs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

import forensics
from forensics.synth.builder import SpanBuilder

from ._logs_helpers import DATA

BASE = datetime(2026, 2, 18, 10, 12, 33, tzinfo=timezone.utc)
SHORT_TRACE = "7c2b8d8f2d6e5f1a"  # a 64-bit id as some loggers print it


def _case_with_spans() -> tuple[forensics.Case, dict[str, str]]:
    b = SpanBuilder(BASE, seed=7)
    root = b.span("checkout-service", "POST /checkout", kind="server", start_ms=0, duration_ms=2000, status="error")
    charge = b.span("checkout-service", "POST /charge", kind="client", parent=root, start_ms=100, duration_ms=800,
                    status="error", attributes={"peer.service": "payment-service"})
    other = b.span("catalog-service", "GET /search", kind="server", start_ms=50, duration_ms=400,
                   trace_id="0" * 16 + SHORT_TRACE)
    case = forensics.open_case()
    b.insert(case)
    return case, {"trace": root.trace_id, "root": root.span_id, "charge": charge.span_id, "other": other.span_id}


def test_logs_join_spans_by_trace_and_span_id(tmp_path) -> None:
    case, ids = _case_with_spans()
    path = tmp_path / "checkout.jsonl"
    path.write_text(
        f'{{"ts":"2026-02-18T10:12:33.150Z","level":"warn","service":"checkout-service","trace_id":"{ids["trace"]}",'
        f'"span_id":"{ids["charge"]}","msg":"payment-service slow, attempt 1"}}\n'
        f'{{"ts":"2026-02-18T10:12:33.900Z","level":"error","service":"checkout-service","trace_id":"{ids["trace"].upper()}",'
        f'"span_id":"{ids["charge"]}","msg":"timeout calling payment-service after 800 ms"}}\n'
        f'{{"ts":"2026-02-18T10:12:33.100Z","level":"info","service":"catalog-service","trace_id":"{SHORT_TRACE}",'
        f'"msg":"search served"}}\n'
        '{"ts":"2026-02-18T10:12:34Z","level":"info","service":"checkout-service","msg":"no trace context"}\n')
    report = case.load(path)
    assert report.warnings == []
    joined = case.sql(
        "SELECT s.name, s.status, l.severity, l.body FROM logs l JOIN spans s "
        "ON l.trace_id = s.trace_id AND l.span_id = s.span_id ORDER BY l.time").rows()
    assert joined == [
        ("POST /charge", "error", "warn", "payment-service slow, attempt 1"),
        ("POST /charge", "error", "error", "timeout calling payment-service after 800 ms"),
    ]
    # every log of a trace, next to its root span (the 64-bit id joins the left-padded span trace id)
    per_trace = case.sql(
        "SELECT r.name, count(l.body) FROM spans r LEFT JOIN logs l ON l.trace_id = r.trace_id "
        "WHERE r.parent_span_id IS NULL GROUP BY r.name ORDER BY r.name").rows()
    assert per_trace == [("GET /search", 1), ("POST /checkout", 2)]
    # logs fall inside their span's time range
    inside = case.sql(
        "SELECT bool_and(l.time BETWEEN s.start_time AND s.end_time) FROM logs l "
        "JOIN spans s ON l.trace_id = s.trace_id AND l.span_id = s.span_id").scalar()
    assert inside is True


def test_warning_when_log_times_do_not_overlap_spans(tmp_path) -> None:
    case, ids = _case_with_spans()
    path = tmp_path / "local.log"
    # written in UTC+8 local time without an offset
    path.write_text("2026-02-18 18:12:33,150 ERROR [checkout-service] timeout calling payment-service\n"
                    "2026-02-18 18:12:34,000 INFO [checkout-service] retry ok\n")
    report = case.load(path)
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert "do not overlap" in warning and "tz='+08:00'" in warning and str(path.resolve()) in warning

    case2, _ = _case_with_spans()
    report = case2.load(path, tz="Asia/Shanghai")
    assert report.warnings == []
    assert case2.sql("SELECT min(time) FROM logs").scalar() == datetime(2026, 2, 18, 10, 12, 33, 150000,
                                                                       tzinfo=timezone.utc)


def test_no_warning_without_spans(tmp_path) -> None:
    report = forensics.open_case().load(DATA / "log4j.log")
    assert report.warnings == []


EXPECTED_FORMATS = {
    "bunyan.jsonl": "json_logs", "datadog.jsonl": "json_logs", "docker.jsonl": "json_logs", "docker_partial.jsonl": "json_logs",
    "gcp.jsonl": "json_logs", "fluentbit.jsonl": "json_logs", "docker_java.jsonl": "json_logs",
    "cri_java.log": "container_logs",
    "ecs_dotted.jsonl": "json_logs", "ecs_nested.jsonl": "json_logs", "logrus.jsonl": "json_logs",
    "payments.jsonl": "json_logs", "pino.jsonl": "json_logs", "seed.jsonl": "json_logs", "slog.jsonl": "json_logs",
    "structlog.jsonl": "json_logs", "zap.jsonl": "json_logs", "gokit.logfmt": "logfmt", "grafana.logfmt": "logfmt",
    "heroku.log": "logfmt", "logrus_text.log": "logfmt", "catalog.log": "plain_logs", "log4j.log": "plain_logs",
    "python.log": "plain_logs", "spring.log": "plain_logs", "syslog5424.log": "plain_logs",
    "journal.log": "plain_logs", "cri.log": "container_logs", "kubectl_timestamps.log": "container_logs",
}


def test_every_log_file_sniffs_to_its_format() -> None:
    from forensics.loaders import sniff

    assert {p.name: sniff(str(p)) for p in sorted(DATA.iterdir())} == EXPECTED_FORMATS


@pytest.mark.slow
def test_loading_the_directory_loads_every_log_format() -> None:
    case = forensics.open_case()
    report = case.load(DATA)
    got = {f.path.rsplit("/", 1)[-1]: f.format for f in report.files}
    assert got == EXPECTED_FORMATS
    assert report.records_read == report.rows_loaded + report.rows_rejected
    assert case.sql("SELECT count(*) FROM logs WHERE template IS NULL AND body IS NOT NULL").scalar() == 0
