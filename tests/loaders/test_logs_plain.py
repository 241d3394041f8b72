"""plain_logs: built-in prefixes, user patterns, stack-trace continuation lines, rejects."""
from __future__ import annotations

import pytest

import forensics
from forensics.errors import LoadError, StrictModeError, UsageError
from forensics.loaders.logs.plain.plaintext import _sniff
from forensics.loaders.core.sniff import head_of

from ._logs_helpers import DATA, load_rows, rejects, utc

STACK = ("inventory lookup failed\njava.net.SocketTimeoutException: Read timed out\n"
         "\tat java.base/java.net.SocketInputStream.socketRead0(Native Method)\n"
         "\tat com.shop.catalog.InventoryClient.lookup(InventoryClient.java:88)")


def test_iso_level_service_prefix_with_stack_trace() -> None:
    rows, case, report = load_rows(DATA / "catalog.log")
    assert report.files[0].format == "plain_logs"
    assert rows == [
        {"time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "catalog-service", "severity": "info",
         "body": "GET /search served 50 items in 2.5s trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
         "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": None, "attributes": {}, "source_line": 1},
        {"time": utc(2026, 2, 18, 10, 12, 33, 456000), "service": "catalog-service", "severity": "error",
         "body": STACK, "trace_id": None, "span_id": None, "attributes": {}, "source_line": 2},
        {"time": utc(2026, 2, 18, 10, 12, 34), "service": "catalog-service", "severity": "warn",
         "body": "retrying inventory call, attempt 2 of 3", "trace_id": None, "span_id": None, "attributes": {},
         "source_line": 7},
        {"time": utc(2026, 2, 18, 2, 12, 35), "service": None, "severity": "debug", "body": "cache warmed",
         "trace_id": None, "span_id": None, "attributes": {}, "source_line": 8},
    ]
    assert rejects(case) == []
    # the template is mined from the first line only
    assert case.sql("SELECT template FROM logs WHERE source_line = 2").scalar() == "inventory lookup failed"


def test_log4j_banner_is_rejected_and_local_time_with_tz() -> None:
    rows, case, report = load_rows(DATA / "log4j.log", tz="Asia/Shanghai")
    assert rejects(case) == [(1, "unparsed_line")]
    assert [(r["source_line"], r["time"], r["severity"]) for r in rows] == [
        (2, utc(2026, 2, 18, 10, 12, 33, 123000), "warn"),
        (3, utc(2026, 2, 18, 10, 12, 33, 456000), "error"),
        (8, utc(2026, 2, 18, 10, 12, 34), "info"),
    ]
    assert rows[0]["attributes"] == {"thread": "http-nio-8080-exec-1", "class": "com.shop.catalog.SearchController"}
    assert rows[1]["body"].endswith("Caused by: java.net.SocketTimeoutException: Read timed out\n\t... 12 more")
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)


def test_python_logging_traceback() -> None:
    rows, _, _ = load_rows(DATA / "python.log")
    assert [(r["time"], r["service"], r["severity"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33, 123000), "payments", "warn"),
        (utc(2026, 2, 18, 10, 12, 33, 500000), "payments", "error"),
        (utc(2026, 2, 18, 10, 12, 34), "payments", "fatal"),
    ]
    assert rows[1]["body"].splitlines() == [
        "charge failed", "Traceback (most recent call last):", '  File "/app/payments.py", line 88, in charge',
        "    resp = client.post(url, json=body, timeout=0.8)", "TimeoutError: timed out"]


def test_spring_boot() -> None:
    rows, _, _ = load_rows(DATA / "spring.log")
    assert rows[1] == {
        "time": utc(2026, 2, 18, 2, 12, 33, 456000), "service": "catalog", "severity": "error",
        "body": "inventory call failed", "trace_id": None, "span_id": None,
        "attributes": {"pid": "12345", "thread": "nio-8080-exec-2", "class": "c.s.catalog.InventoryClient"},
        "source_line": 2,
    }


def test_records_cut_by_batch_boundaries_are_carried() -> None:
    whole, _, _ = load_rows(DATA / "log4j.log", tz="+08:00")
    tiny, case, report = load_rows(DATA / "log4j.log", tz="+08:00", batch_bytes=64)
    assert tiny == whole
    assert rejects(case) == [(1, "unparsed_line")]
    assert report.files[0].records_read == 4


def test_user_pattern(tmp_path) -> None:
    path = tmp_path / "nginx-ish.log"
    path.write_text("2026/02/18 10:12:33 catalog E req=42 upstream timed out\n"
                    "    continuation of 42\n"
                    "2026/02/18 10:12:34 catalog W req=43 slow upstream\n")
    pattern = r"^(?P<time>\S+ \S+) (?P<service>\S+) (?P<severity>[EWI]) req=(?P<request_id>\d+) (?P<message>.*)$"
    rows, case, _ = load_rows(path, format="plain_logs", pattern=pattern)
    assert rows == [
        {"time": utc(2026, 2, 18, 10, 12, 33), "service": "catalog", "severity": "error",
         "body": "upstream timed out\n    continuation of 42", "trace_id": None, "span_id": None,
         "attributes": {"request_id": "42"}, "source_line": 1},
        {"time": utc(2026, 2, 18, 10, 12, 34), "service": "catalog", "severity": "warn", "body": "slow upstream",
         "trace_id": None, "span_id": None, "attributes": {"request_id": "43"}, "source_line": 3},
    ]


def test_unparseable_time_from_pattern_is_rejected(tmp_path) -> None:
    path = tmp_path / "x.log"
    path.write_text("[18 Feb 26 10h12] boom\n[18/Feb/2026:10:12:33] Common Log Format time without offset\n")
    rows, case, _ = load_rows(path, format="plain_logs", pattern=r"^\[(?P<time>[^\]]+)\] (?P<msg>.*)$")
    assert [r["time"] for r in rows] == [utc(2026, 2, 18, 10, 12, 33)] and rejects(case) == [(1, "bad_time")]
    reason = case.sql("SELECT reason FROM rejects").scalar()
    assert "18 Feb 26 10h12" in reason and "time_format=" in reason


@pytest.mark.parametrize("pattern, message", [
    (r"^(?P<msg>.*)$", "named group 'time'"),
    (r"^(?P<time>[", "not a valid regular expression"),
])
def test_bad_patterns(tmp_path, pattern: str, message: str) -> None:
    path = tmp_path / "x.log"
    path.write_text("2026-02-18T10:12:33Z INFO x\n")
    with pytest.raises(UsageError, match=message):
        load_rows(path, format="plain_logs", pattern=pattern)


def test_forced_format_without_any_matching_line_fails_clearly(tmp_path) -> None:
    path = tmp_path / "prose.txt"
    path.write_text("just some prose\nand more\n")
    with pytest.raises(LoadError, match="pass pattern="):
        forensics.open_case().load(path, format="plain_logs")


def test_strict_mode_names_file_and_line() -> None:
    with pytest.raises(StrictModeError) as err:
        forensics.open_case().load(DATA / "log4j.log", strict=True)
    assert "log4j.log" in str(err.value) and "line 1" in str(err.value)


def test_sniff_never_guesses(tmp_path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello\nworld\n2026-02-18T10:12:33Z INFO one line with a time\nmore prose\nand more\n")
    assert _sniff(head_of(str(path))) == 0.0
    path.write_text("2026-02-18T10:12:33Z some line without a level\n2026-02-18T10:12:34Z another\n")
    assert _sniff(head_of(str(path))) == 0.0
    path.write_text("2026-02-18T10:12:33Z INFO ok\nfree text\nmore free text\nyet more\n")
    assert _sniff(head_of(str(path))) == 0.0


def test_byte_order_mark_is_ignored(tmp_path) -> None:
    path = tmp_path / "bom.log"
    path.write_bytes(b"\xef\xbb\xbf2026-02-18T10:12:33Z INFO [catalog-service] first\n")
    rows, case, _ = load_rows(path, format="plain_logs")
    assert [(r["body"], r["service"]) for r in rows] == [("first", "catalog-service")] and rejects(case) == []


def test_syslog_rfc5424_priority_gives_the_level() -> None:
    rows, _, _ = load_rows(DATA / "syslog5424.log")
    assert rows[0] == {
        "time": utc(2026, 2, 18, 10, 12, 33, 123000), "service": "catalog-service", "severity": "error",  # 131 % 8 = 3
        "body": "inventory call failed after 800 ms", "trace_id": None, "span_id": None,
        "attributes": {"pri": "131", "host": "catalog-7d9f", "pid": "4123", "msgid": "search"}, "source_line": 1,
    }
    assert rows[1]["severity"] == "info" and rows[1]["attributes"]["structured_data"] == '[origin ip="10.0.3.7"]'
    # nil values ("-") are absent
    assert (rows[2]["severity"], rows[2]["body"], rows[2]["attributes"]) == (
        "warn", "disk 91% full", {"pri": "12", "host": "catalog-7d9f"})


def test_journald_short_iso() -> None:
    rows, _, _ = load_rows(DATA / "journal.log")
    assert [(r["time"], r["service"], r["severity"], r["body"], r["attributes"]) for r in rows] == [
        (utc(2026, 2, 18, 10, 12, 33), "catalog-service", None, "inventory call failed after 800 ms",
         {"host": "catalog-7d9f", "pid": "4123"}),
        (utc(2026, 2, 18, 10, 12, 34), "kernel", None, "Out of memory: Killed process 4123 (java)",
         {"host": "catalog-7d9f"}),
    ]


def test_weird_lines_never_break_a_batch(tmp_path) -> None:
    import random

    rng = random.Random(7)
    starts = ["2026-02-18T10:12:33.123Z INFO ", "2026-02-18 10:12:33,123 WARN [svc] ", "2026-13-45T99:99:99Z ERROR ",
              "\tat x.y(Z.java:1)", "", "Caused by: e", "2026-02-18T10:12:33Z", "<1>1 2026-02-18T10:12:33Z h a - - - "]
    tails = ["", "msg", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736", "\u00e9\u6f22", "a\\b\"c", "- - -"]
    lines = ["some banner"] + [rng.choice(starts) + rng.choice(tails) for _ in range(300)]
    path = tmp_path / "weird.log"
    path.write_text("\n".join(lines) + "\n")
    rows, case, report = load_rows(path, format="plain_logs", batch_bytes=512)
    f = report.files[0]
    assert f.status == "loaded" and f.records_read == f.rows_loaded + f.rows_rejected
    assert (1, "unparsed_line") in rejects(case)
    assert {c for _, c in rejects(case)} <= {"unparsed_line", "bad_time"}
    # small batches (records carried across boundaries) give the same records as one batch
    whole, whole_case, _ = load_rows(path, format="plain_logs")
    assert rows == whole and rejects(case) == rejects(whole_case)
