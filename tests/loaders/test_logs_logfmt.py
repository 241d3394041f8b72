"""logfmt: Go kit, logrus text formatter, Grafana/log15 and Heroku lines."""
from __future__ import annotations

import pytest

import forensics
from forensics.errors import StrictModeError

from ._logs_helpers import DATA, load_rows, rejects, utc


def test_go_kit_lines_and_rejects() -> None:
    rows, case, report = load_rows(DATA / "gokit.logfmt")
    assert report.files[0].format == "logfmt"
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123456), "service": "catalog-service", "severity": "info",
        "body": "search served", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": None,
        "attributes": {"caller": "main.go:42", "items_returned": "50", "inventory_calls": "50"}, "source_line": 1,
    }
    # quoted value with escaped quotes; a bare value keeps its backslashes
    assert rows[1]["attributes"] == {"caller": "inventory.go:88",
                                     "err": 'Get "http://inventory:8080/items/42": context deadline exceeded',
                                     "path": "C:\\\\temp"}
    # a repeated key keeps its first value; an empty value is an empty string
    assert (rows[2]["source_line"], rows[2]["body"], rows[2]["attributes"]) == (4, "retrying", {"attempt": "2", "empty": ""})
    assert rejects(case) == [(3, "unparsed_line")]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)


def test_escapes_in_quoted_values(tmp_path) -> None:
    path = tmp_path / "x.logfmt"
    path.write_text('ts=2026-02-18T10:12:33Z level=error msg="line one\\nline \\"two\\"\\ttab \\\\ end"\n')
    rows, _, _ = load_rows(path)
    assert rows[0]["body"] == 'line one\nline "two"\ttab \\ end'


def test_logrus_text_formatter_offsets() -> None:
    rows, _, _ = load_rows(DATA / "logrus_text.log")
    assert [(r["time"], r["severity"], r["body"], r["attributes"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33), "warn", "slow query", {"duration_ms": "812", "table": "items"}),
        (utc(2026, 2, 18, 10, 12, 34), "error", "db connect failed",
         {"error": "dial tcp 10.0.3.7:5432: connect: connection refused"}),
    ]


def test_grafana_log15_levels() -> None:
    rows, _, _ = load_rows(DATA / "grafana.logfmt")
    assert [(r["time"], r["severity"], r["service"], r["body"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33, 120000), "error", "alerting.notifier", "Failed to send alert"),
        (utc(2026, 2, 18, 10, 12, 34, 500000), "debug", "alerting.evalContext", "Alert rule evaluated"),
    ]


def test_heroku_logs_prefix_router_and_app_lines() -> None:
    rows, case, _ = load_rows(DATA / "heroku.log")
    assert rejects(case) == []
    router = rows[0]
    assert (router["time"], router["severity"], router["service"], router["body"]) == (
        utc(2026, 2, 18, 10, 12, 33, 123456), "info", None, None)
    # service=412ms is the router's service time, not a service name
    assert router["attributes"]["service"] == "412ms"
    assert router["attributes"]["heroku.dyno"] == "router" and router["attributes"]["status"] == "200"
    assert "heroku.time" not in router["attributes"]
    assert (rows[1]["body"], rows[1]["attributes"]) == (
        "search served", {"items_returned": "50", "heroku.source": "app", "heroku.dyno": "web.1"})
    # an app's plain output after the prefix is loaded with its text as the body
    assert (rows[2]["body"], rows[2]["severity"]) == ('Started GET "/search" for 204.204.204.204', None)
    assert (rows[3]["severity"], rows[3]["body"], rows[3]["attributes"]["code"]) == ("error", "Request timeout", "H12")


def test_tz_option_for_local_times(tmp_path) -> None:
    path = tmp_path / "local.logfmt"
    path.write_text('time="2026-02-18 18:12:33" level=info msg="local time"\n')
    rows, _, _ = load_rows(path, tz="Asia/Shanghai")
    assert rows[0]["time"] == utc(2026, 2, 18, 10, 12, 33)


def test_strict_mode_names_file_and_line() -> None:
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(DATA / "gokit.logfmt", strict=True)
    assert "gokit.logfmt" in str(err.value) and "line 3" in str(err.value) and "not logfmt" in str(err.value)


def test_plain_prose_is_not_sniffed_as_logfmt(tmp_path) -> None:
    from forensics.loaders.logs.logfmt.logfmt import _sniff
    from forensics.loaders.core.sniff import head_of

    path = tmp_path / "prose.txt"
    path.write_text("hello world\nthis is text with a=b inside\n")
    assert _sniff(head_of(str(path))) == 0.0
    path.write_text('http_requests_total{code="200"} 1027\n')
    assert _sniff(head_of(str(path))) == 0.0


def test_weird_lines_never_break_a_batch(tmp_path) -> None:
    import random

    rng = random.Random(99)
    tokens = ['ts=2026-02-18T10:12:33Z', 'time="2026-02-18 10:12:33"', "t=1771409553", "ts=yesterday", "ts=",
              "level=info", "lvl=eror", "level=", 'msg="a \\"q\\" b"', "msg=x", 'msg="unterminated', "a=b=c", "=v",
              "k==v", '"k"=v', "\u00e9=\u6f22", "trace_id=4bf92f3577b34da6", "trace_id=zz", "service=s", "x",
              'err="\\\\"', "dup=1", "dup=2"]
    lines = [" ".join(rng.choice(tokens) for _ in range(rng.randint(1, 7))) for _ in range(300)]
    path = tmp_path / "weird.logfmt"
    path.write_text("\n".join(lines) + "\n")
    rows, case, report = load_rows(path, format="logfmt")
    f = report.files[0]
    assert f.status == "loaded" and f.records_read == len(lines) == f.rows_loaded + f.rows_rejected
    assert rows and {c for _, c in rejects(case)} <= {"unparsed_line", "missing_field", "bad_time"}
