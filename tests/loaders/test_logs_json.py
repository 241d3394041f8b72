"""json_logs: one test per real logging library's output shape, plus rejects, strict mode and mapping."""
from __future__ import annotations

import pytest

import forensics
from forensics.errors import StrictModeError, UsageError
from forensics.loaders import sniff

from ._logs_helpers import DATA, load_rows, rejects, utc

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_zap_production_encoder() -> None:
    rows, case, report = load_rows(DATA / "zap.jsonl")
    assert report.files[0].format == "json_logs"
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "catalog", "severity": "info",
        "body": "search served", "trace_id": TRACE, "span_id": "00f067aa0ba902b7",
        "attributes": {"caller": "search/handler.go:87", "items_returned": "50", "inventory_calls": "50"},
        "source_line": 1,
    }
    assert rows[1]["severity"] == "error" and rows[1]["service"] == "catalog.inventory"
    assert rows[1]["attributes"]["error"] == "context deadline exceeded"
    assert rows[1]["attributes"]["stacktrace"].startswith("main.lookup\n\t/app/inventory/client.go:41")
    assert (rows[2]["time"], rows[2]["severity"], rows[2]["service"]) == (utc(2026, 2, 18, 10, 12, 34), "fatal", None)
    # line 4 is blank, line 5 is cut off: loaded + rejected = read
    assert rejects(case) == [(5, "invalid_json")]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)


def test_logrus_json_formatter_offsets() -> None:
    rows, _, _ = load_rows(DATA / "logrus.jsonl")
    assert [(r["time"], r["severity"], r["body"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33), "warn", "slow query"),
        (utc(2026, 2, 18, 15, 12, 34), "error", "db connect failed"),
        (utc(2026, 2, 18, 10, 12, 35), "info", "listening"),
    ]
    assert rows[0]["attributes"] == {"duration_ms": "812", "table": "items"}
    assert rows[1]["attributes"] == {"error": "dial tcp 10.0.3.7:5432: connect: connection refused"}


def test_pino_numeric_levels_and_epoch_ms() -> None:
    rows, _, _ = load_rows(DATA / "pino.jsonl")
    assert [r["severity"] for r in rows] == ["info", "error", "trace", "fatal"]
    assert rows[0]["time"] == utc(2026, 2, 18, 10, 12, 33, 123000)
    assert rows[0]["attributes"] == {
        "pid": "4123", "hostname": "catalog-7d9f", "req": '{"id":1,"method":"GET","url":"/search?q=lamp"}',
        "res": '{"statusCode":200}', "responseTime": "412",
    }
    assert rows[1]["body"] == "inventory call failed"
    assert rows[1]["attributes"]["err"].startswith('{"type":"Error","message":"ETIMEDOUT"')


def test_bunyan_name_is_the_service() -> None:
    rows, _, _ = load_rows(DATA / "bunyan.jsonl")
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "catalog-service", "severity": "warn",
        "body": "retrying inventory call", "trace_id": None, "span_id": None,
        "attributes": {"hostname": "catalog-7d9f", "pid": "4123", "attempt": "2", "v": "0"}, "source_line": 1,
    }
    assert rows[1]["severity"] == "debug"


def test_ecs_dotted_keys() -> None:
    rows, _, _ = load_rows(DATA / "ecs_dotted.jsonl")
    assert rows == [{
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "checkout-service", "severity": "error",
        "body": "timeout calling payment-service", "trace_id": "7c2b8d8f2d6e5f1a0000000000000001",
        "span_id": "9a3d4e5f60718293",
        "attributes": {"ecs.version": "1.2.0", "event.dataset": "checkout-service.log",
                       "process.thread.name": "http-nio-8080-exec-1", "log.logger": "com.shop.checkout.PaymentClient",
                       "transaction.id": "aa11bb22cc33dd44"},
        "source_line": 1,
    }]


def test_ecs_nested_objects() -> None:
    rows, _, _ = load_rows(DATA / "ecs_nested.jsonl")
    assert rows == [{
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "checkout-service", "severity": "warn",
        "body": "retrying payment", "trace_id": "7c2b8d8f2d6e5f1a0000000000000001", "span_id": "9a3d4e5f60718293",
        # objects a canonical field came from keep their other members as dotted keys; others stay JSON
        "attributes": {"ecs": '{"version":"1.6.0"}', "event": '{"dataset":"checkout"}', "tags": '["payments","retry"]',
                       "log.logger": "checkout.payments", "log.origin": '{"file":{"name":"payments.py","line":88}}',
                       "service.version": "2.4.1"},
        "source_line": 1,
    }]


def test_go_slog_json_handler() -> None:
    rows, _, _ = load_rows(DATA / "slog.jsonl")
    assert [(r["time"], r["severity"], r["body"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33, 123456), "info", "search served"),  # +08:00, nanoseconds truncated
        (utc(2026, 2, 18, 10, 12, 33, 500000), "warn", "inventory slow"),
        (utc(2026, 2, 18, 10, 12, 34), "error", "inventory failed"),
        (utc(2026, 2, 18, 10, 12, 34, 1), "debug", "cache miss"),
    ]
    assert rows[0]["attributes"] == {"source": '{"function":"main.search","file":"/app/search.go","line":87}',
                                     "items": "50", "version": "1.8.0"}


def test_structlog_event_is_the_body() -> None:
    rows, _, _ = load_rows(DATA / "structlog.jsonl")
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "payments", "severity": "error",
        "body": "payment failed", "trace_id": None, "span_id": None,
        "attributes": {"order_id": "42", "amount": "19.99"}, "source_line": 1,
    }
    # no offset: UTC unless tz= says otherwise
    assert [(r["time"], r["severity"]) for r in rows[1:]] == [
        (utc(2026, 2, 18, 18, 12, 34), "warn"), (utc(2026, 2, 18, 18, 12, 35), "fatal")]


def test_structlog_local_time_with_tz_option() -> None:
    rows, _, _ = load_rows(DATA / "structlog.jsonl", tz="Asia/Shanghai")
    assert [r["time"] for r in rows] == [utc(2026, 2, 18, 10, 12, 33, 123456),  # carries Z: kept
                                         utc(2026, 2, 18, 10, 12, 34), utc(2026, 2, 18, 10, 12, 35)]
    rows, _, _ = load_rows(DATA / "structlog.jsonl", tz="+08:00")
    assert rows[2]["time"] == utc(2026, 2, 18, 10, 12, 35)
    rows, _, _ = load_rows(DATA / "structlog.jsonl", tz="-03:30")
    assert rows[2]["time"] == utc(2026, 2, 18, 21, 42, 35)


def test_bad_tz_option_names_the_parameter() -> None:
    with pytest.raises(UsageError, match="tz='Mars/Olympus'"):
        load_rows(DATA / "structlog.jsonl", tz="Mars/Olympus")


def test_datadog_decimal_ids_become_hex() -> None:
    rows, _, report = load_rows(DATA / "datadog.jsonl")
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "checkout-service", "severity": "error",
        "body": "charge failed", "trace_id": "00000000000000007c2b8d8f2d6e5f1a", "span_id": "4bf92f3577b34da6",
        "attributes": {"name": "checkout.payments", "dd.env": "prod", "dd.version": "1.8.0"}, "source_line": 1,
    }
    # dd.trace_id "0" means "no trace": NULL, the value kept in attributes, and a warning
    assert (rows[1]["trace_id"], rows[1]["span_id"]) == (None, None)
    assert rows[1]["attributes"]["dd.trace_id"] == "0"
    assert any("not hex" in w for w in report.warnings)


def test_docker_json_file_unwraps_nested_json() -> None:
    rows, _, _ = load_rows(DATA / "docker.jsonl")
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 30), "service": None, "severity": None,
        "body": "catalog-service listening on :8080", "trace_id": None, "span_id": None,
        "attributes": {"stream": "stdout"}, "source_line": 1,
    }
    assert rows[1] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "catalog", "severity": "error",
        "body": "timeout calling inventory-service after 800 ms", "trace_id": TRACE, "span_id": None,
        "attributes": {"stream": "stderr", "docker.time": "2026-02-18T10:12:33.124567891Z"}, "source_line": 2,
    }
    # the application's record has no time: docker's is used
    assert (rows[2]["time"], rows[2]["body"]) == (utc(2026, 2, 18, 10, 12, 34, 500000), "no time of its own")


def test_seed_guide_example() -> None:
    rows, _, report = load_rows(DATA / "seed.jsonl")
    assert rows == [{
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "checkout-service", "severity": "error",
        "body": "timeout calling payment-service", "trace_id": "00000000000000007c2b8d8f2d6e5f1a", "span_id": None,
        "attributes": {"env": "prod", "span_id": "9a3d...", "route": "/checkout", "user_id_hash": "u_8b1...",
                       "timeout_ms": "800", "attempt": "2"},
        "source_line": 1,
    }]
    assert len(report.warnings) == 1


@pytest.mark.parametrize("value, expected", [
    ("1771409553", utc(2026, 2, 18, 10, 12, 33)),                      # seconds
    ("1771409553.25", utc(2026, 2, 18, 10, 12, 33, 250000)),           # fractional seconds
    ("1771409553123", utc(2026, 2, 18, 10, 12, 33, 123000)),           # milliseconds
    ("1771409553123456", utc(2026, 2, 18, 10, 12, 33, 123456)),        # microseconds
    ("1771409553123456789", utc(2026, 2, 18, 10, 12, 33, 123456)),     # nanoseconds (truncated)
    ('"1771409553123"', utc(2026, 2, 18, 10, 12, 33, 123000)),         # epoch as a string
    ('"2026-02-18T10:12:33.123456789Z"', utc(2026, 2, 18, 10, 12, 33, 123456)),
    ('"2026-02-18 10:12:33,5"', utc(2026, 2, 18, 10, 12, 33, 500000)),
    ('"2026-02-18T12:12:33+0200"', utc(2026, 2, 18, 10, 12, 33)),
])
def test_time_values(tmp_path, value: str, expected) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(f'{{"time": {value}, "msg": "x"}}\n')
    rows, _, _ = load_rows(path)
    assert rows[0]["time"] == expected


def test_rejects_with_line_numbers(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"time": "2026-02-18T10:12:33Z", "msg": "ok"}\n'
                    '[1, 2]\n'
                    '{"time": "yesterday", "msg": "bad time"}\n'
                    '{"msg": "no time"}\n'
                    'not json at all\n'
                    '{"time": "2026-02-18T10:12:34Z", "level": "info"}\n')
    rows, case, report = load_rows(path, format="json_logs")
    assert [r["source_line"] for r in rows] == [1, 6]
    assert rejects(case) == [(2, "wrong_shape"), (3, "bad_time"), (4, "missing_field"), (5, "invalid_json")]
    reasons = dict(case.sql("SELECT source_line, reason FROM rejects").rows())
    assert "time=yesterday" in reasons[3] and 'mapping={"time"' in reasons[4]
    f = report.files[0]
    assert f.records_read == f.rows_loaded + f.rows_rejected == 6


def test_strict_mode_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"time": "2026-02-18T10:12:33Z", "msg": "ok"}\n{"time": "2026-02-18T10:1\n')
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(path, format="json_logs", strict=True)
    assert str(path) in str(err.value) and "line 2" in str(err.value) and "not valid JSON" in str(err.value)
    assert case.sql("SELECT count(*) FROM logs").scalar() == 0  # the file's transaction rolled back


def test_explicit_mapping(tmp_path) -> None:
    path = tmp_path / "custom.jsonl"
    path.write_text('{"eventTime": "2026-02-18T10:12:33Z", "text": "hello", "sev": "W", "ctx": {"tid": "'
                    + TRACE + '"}, "time": "not this one", "svc": "catalog-service"}\n')
    rows, _, _ = load_rows(path, format="json_logs", mapping={
        "time": "eventTime", "body": "text", "level": "sev", "trace_id": "ctx.tid", "service": ["svc"]})
    assert rows == [{
        "time": utc(2026, 2, 18, 10, 12, 33), "service": "catalog-service", "severity": "warn", "body": "hello",
        "trace_id": TRACE, "span_id": None, "attributes": {"time": "not this one"}, "source_line": 1,
    }]
    with pytest.raises(UsageError, match="mapping key 'when'"):
        load_rows(path, format="json_logs", mapping={"when": "eventTime"})


@pytest.mark.parametrize("line, expected", [
    ('{"level":"info","ts":1771409553.1,"msg":"x"}', "json_logs"),
    ('{"@timestamp":"2026-02-18T10:12:33Z","log.level":"info","message":"x"}', "json_logs"),
    ('{"log":"x\\n","stream":"stdout","time":"2026-02-18T10:12:33Z"}', "json_logs"),
])
def test_sniff_positive(tmp_path, line: str, expected: str) -> None:
    path = tmp_path / "x.log"
    path.write_text(line + "\n")
    assert sniff(str(path)) == expected


@pytest.mark.parametrize("line", [
    '{"resourceLogs":[{"resource":{},"scopeLogs":[]}]}',
    '{"traceID":"abc","spans":[],"processes":{}}',
    '{"traceId":"abc","id":"def","localEndpoint":{"serviceName":"x"}}',
    '{"kind":"Event","apiVersion":"v1","message":"x","lastTimestamp":"2026-02-18T10:12:33Z"}',
    '{"time":"2026-02-18T10:12:33Z","service":"catalog-service","version":"1.8.0","kind":"deploy"}',
    '{"time":"2026-02-18T10:12:33Z","service":"catalog-service","version":"1.8.0","type":"deploy","message":"x"}',
])
def test_sniff_leaves_other_formats_alone(tmp_path, line: str) -> None:
    from forensics.loaders.logs.json_logs.json_logs import _sniff
    from forensics.loaders.core.sniff import head_of

    path = tmp_path / "x.json"
    path.write_text(line + "\n")
    assert _sniff(head_of(str(path))) == 0.0


def test_byte_order_mark_is_ignored(tmp_path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"time": "2026-02-18T10:12:33Z", "level": "info", "msg": "first"}\n')
    rows, case, _ = load_rows(path, format="json_logs")
    assert [r["body"] for r in rows] == ["first"] and rejects(case) == []


def test_docker_lines_split_at_16k_are_joined() -> None:
    rows, case, report = load_rows(DATA / "docker_partial.jsonl")
    assert [(r["source_line"], r["severity"], r["body"]) for r in rows] == [
        (1, "error", "huge stack"), (4, None, "after the big one")]
    assert rows[0]["attributes"]["stack"] == "x" * 40000
    assert rows[0]["attributes"]["docker.time"] == "2026-02-18T10:12:33.250000000Z"
    assert rejects(case) == [] and report.files[0].records_read == 2


def _weird_value(rng):
    return rng.choice([
        None, True, False, 0, -1, 1.5, 10**30, -(10**25), 1e300, 1771409553, 1771409553123456789, 99999999999999999999999,
        "", " ", "-", "null", "NaN", "1e99", "2026-02-18", "2026-02-18T25:99:99Z", "2026-02-18T10:12:33Z",
        "2026-02-18T10:12:33+99:99", "10:12:33", "\u00e9\u6f22\u5b57", "a\"b\\c", "\n\t", "0x1f", "4bf92f3577b34da6",
        "ZZZZ", "WARNING", "50", "-50", [], [1, {"a": None}], {}, {"level": {"deep": [1]}}, {"id": 7},
    ])


def test_weird_values_never_break_a_batch(tmp_path) -> None:
    import json
    import random

    rng = random.Random(1234)
    keys = ["time", "ts", "@timestamp", "timestamp", "level", "lvl", "severity", "msg", "message", "event", "log",
            "trace_id", "span_id", "dd.trace_id", "traceId", "service", "service.name", "app", "name", "v", "stream",
            "log.level", "trace", "span", "", " ", "a.b", "k\"q", "\u00e9"]
    lines = []
    for _ in range(400):
        obj = {rng.choice(keys): _weird_value(rng) for _ in range(rng.randint(0, 8))}
        lines.append(json.dumps(obj))
    lines += ['{"log": 5, "stream": "stdout"}', '{"log": "{\\"ts\\": []}", "stream": "x", "time": 1}', "{", "[]", "7",
              '"text"', "null", '{"time": "2026-02-18T10:12:33Z", "msg": "ok"}']
    path = tmp_path / "weird.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rows, case, report = load_rows(path, format="json_logs")
    f = report.files[0]
    assert f.status == "loaded"
    assert f.records_read == len(lines) == f.rows_loaded + f.rows_rejected
    assert rows and all(r["time"] is not None for r in rows)
    codes = {c for _, c in rejects(case)}
    assert codes <= {"invalid_json", "wrong_shape", "missing_field", "bad_time"}
    for r in rows:
        assert r["trace_id"] is None or len(r["trace_id"]) == 32
        assert r["severity"] in (None, "trace", "debug", "info", "warn", "error", "fatal")


def test_google_cloud_structured_logging() -> None:
    rows, _, _ = load_rows(DATA / "gcp.jsonl")
    assert rows == [{
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "checkout-service", "severity": "error",
        "body": "charge failed", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
        "attributes": {"logging.googleapis.com/trace_sampled": "true", "serviceContext.version": "2.4.1"},
        "source_line": 1,
    }]


def test_fluent_bit_keeps_kubernetes_metadata_and_xray_ids() -> None:
    rows, _, _ = load_rows(DATA / "fluentbit.jsonl")
    assert rows[0] == {
        # the level of a text payload is read from its first words
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "catalog-service", "severity": "error",
        "body": "2026-02-18T10:12:33.123Z ERROR inventory call failed", "trace_id": None, "span_id": None,
        "attributes": {"date": "1771409553.123", "stream": "stderr", "kubernetes.pod_name": "catalog-7d9f-x2x",
                       "kubernetes.namespace_name": "prod", "kubernetes.labels": '{"app":"catalog"}'},
        "source_line": 1,
    }
    # an AWS X-Ray id becomes the 32-hex id OpenTelemetry uses
    assert (rows[1]["severity"], rows[1]["trace_id"]) == ("warn", "5759e988bd862e3fe1be46a994272793")
