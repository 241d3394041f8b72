"""plain_logs on the log shapes of public log collections (lines shaped like Loghub's samples,
written here): HDFS, Spark, Zookeeper, Hadoop, OpenSSH (syslog without a year), Apache, OpenStack
and BGL; their time shapes, the year of year-less times, implausible years, patterns with many
groups, threads that are not services, records vs continuation lines, trace ids in the text."""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

import forensics
from forensics.errors import StrictModeError, UsageError
from forensics.loaders.core.sniff import sniff
from forensics.synth.builder import SpanBuilder

from ._logs_helpers import DATA, load_rows, rejects, utc

LOGHUB = DATA.parent / "loghub"


@pytest.mark.parametrize("name", sorted(p.name for p in LOGHUB.glob("*.log")))
def test_every_loghub_shape_is_detected_and_loads_without_rejects(name: str) -> None:
    assert sniff(str(LOGHUB / name)) == "plain_logs"
    rows, case, report = load_rows(LOGHUB / name, year=2015)
    assert rejects(case) == [] and rows
    f = report.files[0]
    assert f.records_read == f.rows_loaded == len(rows)
    assert all(r["time"] is not None and 2005 <= r["time"].year <= 2017 for r in rows)


def test_hdfs_yymmdd_hhmmss() -> None:
    rows, _, _ = load_rows(LOGHUB / "hdfs.log")
    assert [(r["time"], r["severity"], r["service"]) for r in rows[:2]] == [
        (utc(2008, 11, 9, 20, 36, 15), "info", None), (utc(2008, 11, 9, 20, 38, 7), "info", None)]
    assert rows[0]["attributes"] == {"pid": "148", "class": "dfs.DataNode$PacketResponder"}
    assert rows[0]["body"] == "PacketResponder 1 for block blk_38865049064139660 terminating"
    assert rows[4]["severity"] == "warn"


def test_spark_two_digit_year_and_its_stack_trace() -> None:
    rows, _, _ = load_rows(LOGHUB / "spark.log")
    assert rows[0]["time"] == utc(2017, 6, 9, 20, 10, 40)
    assert rows[0]["attributes"] == {"class": "executor.CoarseGrainedExecutorBackend"}
    assert rows[-1]["severity"] == "error" and rows[-1]["body"].splitlines() == [
        "Exception in task 3.0 in stage 0.0 (TID 3)", "java.io.IOException: Connection reset by peer",
        "\tat sun.nio.ch.FileDispatcherImpl.read0(Native Method)"]


def test_zookeeper_thread_with_brackets_is_an_attribute() -> None:
    rows, _, _ = load_rows(LOGHUB / "zookeeper.log")
    assert rows[0]["time"] == utc(2015, 7, 29, 17, 41, 44, 747000)
    assert rows[0]["service"] is None
    assert rows[0]["attributes"] == {"thread": "QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774"}
    assert rows[0]["body"] == "Notification time out: 3200"
    assert [r["severity"] for r in rows] == ["info", "info", "warn", "error"]


def test_hadoop_thread_is_not_the_service() -> None:
    rows, case, _ = load_rows(LOGHUB / "hadoop.log")
    assert case.sql("SELECT count(*) FROM logs WHERE service IS NOT NULL").scalar() == 0
    assert [r["attributes"]["thread"] for r in rows] == [
        "main", "main", "IPC Server handler 14 on 62270", "LeaseRenewer:msrabi@msra-sa-41:9000", "RMCommunicator Allocator"]
    assert rows[2]["attributes"]["class"] == "org.apache.hadoop.mapred.TaskAttemptListenerImpl"
    assert rows[3]["body"].endswith("\tat sun.nio.ch.SocketChannelImpl.checkConnect(Native Method)")


@pytest.mark.parametrize("bracket, service, thread", [
    ("catalog-service", "catalog-service", None),
    ("main", None, "main"),
    ("http-nio-8080-exec-1", None, "http-nio-8080-exec-1"),
    ("pool-1-thread-3", None, "pool-1-thread-3"),
])
def test_a_bracket_after_the_level_is_a_service_unless_it_names_a_thread(tmp_path, bracket, service, thread) -> None:
    path = tmp_path / "app.log"
    path.write_text(f"2026-02-18T10:12:33.123Z ERROR [{bracket}] payment declined\n")
    rows, _, _ = load_rows(path)
    assert rows[0]["service"] == service and rows[0]["attributes"].get("thread") == thread


def test_syslog_year_from_the_year_option_and_new_year(tmp_path) -> None:
    rows, _, report = load_rows(LOGHUB / "openssh.log", year=2016)
    assert [r["time"] for r in rows] == [utc(2016, 12, 10, 6, 55, 46), utc(2016, 12, 10, 6, 55, 46),
                                         utc(2016, 12, 10, 6, 55, 48), utc(2016, 12, 31, 23, 59, 59),
                                         utc(2016, 1, 1, 0, 0, 2)]
    assert rows[0]["service"] == "sshd" and rows[0]["attributes"] == {"host": "LabSZ", "pid": "24200"}
    assert any("the year=2016 option" in w for w in report.warnings)


def test_syslog_year_from_the_files_mtime_crossing_new_year(tmp_path) -> None:
    path = tmp_path / "auth.log"
    path.write_bytes((LOGHUB / "openssh.log").read_bytes())
    stamp = datetime(2017, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    os.utime(path, (stamp, stamp))
    rows, _, report = load_rows(path)
    assert [r["time"].year for r in rows] == [2016, 2016, 2016, 2016, 2017]
    assert any("the file's modification time (2017-01-01)" in w and "year=YYYY" in w for w in report.warnings)


def test_syslog_year_from_the_cases_other_signals(tmp_path) -> None:
    case = forensics.open_case()
    spans = SpanBuilder(datetime(2009, 12, 10, 6, 55, tzinfo=timezone.utc))
    spans.span("sshd", "auth", duration_ms=5)
    spans.insert(case)
    report = case.load(LOGHUB / "openssh.log")
    years = [r[0] for r in case.sql("SELECT year(time) FROM logs ORDER BY source_line").rows()]
    assert years == [2009, 2009, 2009, 2009, 2010]  # each in the year nearest the spans' Dec 10 2009
    assert any("the case's other data (latest time 2009-12-10)" in w for w in report.warnings)


def test_february_29th_without_a_leap_year_is_a_reject(tmp_path) -> None:
    path = tmp_path / "auth.log"
    path.write_text("Feb 28 10:00:00 h sshd[1]: a\nFeb 29 10:00:00 h sshd[1]: b\n")
    rows, case, _ = load_rows(path, year=2015)
    assert [r["body"] for r in rows] == ["a"] and rejects(case) == [(2, "bad_time")]
    rows, case, _ = load_rows(path, year=2016)
    assert [r["time"] for r in rows] == [utc(2016, 2, 28, 10), utc(2016, 2, 29, 10)]


def test_bad_year_option(tmp_path) -> None:
    with pytest.raises(UsageError, match="year='soon' is not a whole number"):
        load_rows(LOGHUB / "openssh.log", year="soon")
    with pytest.raises(UsageError, match="year=17 is outside 1980..2099"):
        load_rows(LOGHUB / "openssh.log", year=17)


def test_apache_error_log_both_versions() -> None:
    rows, _, _ = load_rows(LOGHUB / "apache_error.log")
    assert [(r["time"], r["severity"]) for r in rows] == [
        (utc(2005, 12, 4, 4, 47, 44), "info"), (utc(2005, 12, 4, 4, 47, 44), "error"),
        (utc(2005, 12, 4, 4, 51, 8), "info"), (utc(2005, 12, 4, 4, 51, 9, 123456), "error")]
    assert rows[3]["attributes"] == {"module": "core", "pid": "6725", "tid": "140", "client": "10.0.0.7:51234"}
    assert rows[3]["body"] == "File does not exist: /var/www/html/favicon.ico"


def test_openstack_request_ids_and_log_file_are_attributes() -> None:
    rows, _, _ = load_rows(LOGHUB / "openstack.log")
    assert rows[0]["time"] == utc(2017, 5, 16, 0, 0, 0, 8000)
    assert rows[0]["attributes"]["log_file"] == "nova-api.log.1.2017-05-16_13:53:08"
    assert rows[0]["attributes"]["request"].startswith("req-38101a0b-2096-447d-96ea-a692162415ae ")
    assert rows[0]["body"].startswith('10.11.10.1 "GET /v2/')
    assert rows[3]["severity"] == "warn"


def test_bgl_ras_lines() -> None:
    rows, _, _ = load_rows(LOGHUB / "bgl.log")
    assert rows[0]["time"] == utc(2005, 6, 3, 15, 42, 50, 675872)
    assert "alert" not in rows[0]["attributes"] and rows[2]["attributes"]["alert"] == "APPREAD"
    assert [r["severity"] for r in rows] == ["info", "info", "fatal", "fatal"]


@pytest.mark.parametrize("text, expected", [
    ("1117838570 first\n", utc(2005, 6, 3, 22, 42, 50)),
    ("1117838570123 first\n", utc(2005, 6, 3, 22, 42, 50, 123000)),
])
def test_epoch_seconds_and_millis_with_a_pattern(tmp_path, text, expected) -> None:
    path = tmp_path / "epoch.log"
    path.write_text(text)
    rows, _, _ = load_rows(path, format="plain_logs", pattern=r"^(?P<time>\d+) (?P<msg>.*)$")
    assert rows[0]["time"] == expected


def test_time_format_option_reads_any_strftime_shape(tmp_path) -> None:
    path = tmp_path / "de.log"
    path.write_text("18.02.2026 10:12:33 FEHLER Zahlung abgelehnt\n18.02.2026 10:12:34 INFO ok\n")
    pattern = r"^(?P<time>\S+ \S+) (?P<level>\S+) (?P<msg>.*)$"
    rows, case, _ = load_rows(path, format="plain_logs", pattern=pattern, time_format="%d.%m.%Y %H:%M:%S", tz="+01:00")
    assert [r["time"] for r in rows] == [utc(2026, 2, 18, 9, 12, 33), utc(2026, 2, 18, 9, 12, 34)]
    rows, case, _ = load_rows(path, format="plain_logs", pattern=pattern)  # without it: no time read
    assert rows == [] and [code for _, code in rejects(case)] == ["bad_time", "bad_time"]
    with pytest.raises(UsageError, match="time_format='%Q' is not a format"):
        load_rows(path, format="plain_logs", pattern=pattern, time_format="%Q")


def test_time_format_without_a_year_takes_the_year_option(tmp_path) -> None:
    path = tmp_path / "x.log"
    path.write_text("02/18 10:12:33 boom\n")
    rows, _, report = load_rows(path, format="plain_logs", pattern=r"^(?P<time>\S+ \S+) (?P<msg>.*)$",
                                time_format="%m/%d %H:%M:%S", year=2026)
    assert rows[0]["time"] == utc(2026, 2, 18, 10, 12, 33)
    assert any("year=2026" in w for w in report.warnings)


@pytest.mark.parametrize("time, year", [("0017-06-09 20:10:40", 17), ("1970-01-01 00:00:01", 1970),
                                        ("2200-01-01 00:00:00", 2200)])
def test_implausible_years_are_rejects_never_data(tmp_path, time, year) -> None:
    path = tmp_path / "x.log"
    path.write_text(f"{time} INFO a\n2026-02-18 10:12:33 INFO b\n")
    rows, case, _ = load_rows(path)
    assert [r["body"] for r in rows] == ["b"] and rejects(case) == [(1, "bad_time")]
    assert f"gives year {year}, outside 1980..2099" in case.sql("SELECT reason FROM rejects").scalar()
    with pytest.raises(StrictModeError, match=rf"x.log.*line 1.*gives year {year}"):
        load_rows(path, strict=True)


def test_json_logs_with_a_two_digit_year_time_are_read_right_or_rejected(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"time": "17/06/09 20:10:40", "msg": "spark time"}\n{"time": "0017-06-09T20:10:40Z", "msg": "bad"}\n')
    rows, case, _ = load_rows(path)
    assert [(r["time"], r["body"]) for r in rows] == [(utc(2017, 6, 9, 20, 10, 40), "spark time")]
    assert rejects(case) == [(2, "bad_time")]


def test_a_pattern_with_twelve_named_groups(tmp_path) -> None:
    path = tmp_path / "wide.log"
    path.write_text("2015-07-29 17:41:44,747 a b c d e f g h i j k message one\n")
    names = [f"g{i}" for i in range(1, 12)]
    pattern = r"^(?P<time>\S+ \S+) " + " ".join(f"(?P<{n}>\\S+)" for n in names) + r" (?P<msg>.*)$"
    rows, _, _ = load_rows(path, format="plain_logs", pattern=pattern)
    assert rows[0]["body"] == "message one"
    assert rows[0]["attributes"] == dict(zip(names, "abcdefghijk"))


def test_unnamed_groups_before_named_ones_keep_their_numbers(tmp_path) -> None:
    path = tmp_path / "x.log"
    path.write_text("<<2026-02-18 10:12:33>> WARN [a] disk full\n")
    rows, _, _ = load_rows(path, format="plain_logs",
                           pattern=r"^(<<)(?P<time>[^>]+)(>>) (?P<level>\w+) (\[(?P<zone>\w)\]) (?P<msg>.*)$")
    assert (rows[0]["severity"], rows[0]["body"], rows[0]["attributes"]) == ("warn", "disk full", {"zone": "a"})


LINES = """2026-02-18 10:00:00 INFO first
java.lang.IllegalStateException: boom
\tat x.y.Z(Z.java:1)
18/02/2026 10:00:03 INFO a time the pattern misses
\tat still.part.of.it(X.java:2)
    indented continuation of the rejected record
2026-02-18 10:00:04 WARN last
   indented continuation
"""


def test_timestamped_lines_a_pattern_misses_are_rejected_not_folded(tmp_path) -> None:
    path = tmp_path / "x.log"
    path.write_text(LINES)
    rows, case, report = load_rows(path, format="plain_logs",
                                   pattern=r"^(?P<time>\d{4}-\S+ \S+) (?P<level>\w+) (?P<msg>.*)$")
    assert [(r["source_line"], r["body"]) for r in rows] == [
        (1, "first\njava.lang.IllegalStateException: boom\n\tat x.y.Z(Z.java:1)"),
        (7, "last\n   indented continuation")]
    assert rejects(case) == [(4, "unparsed_line")]
    reason, raw = case.sql("SELECT reason, raw FROM rejects").rows()[0]
    assert reason == ("line starts with a time but does not match the log line pattern "
                      "(rejected with the 2 continuation line(s) after it)")
    assert raw.splitlines()[0] == "18/02/2026 10:00:03 INFO a time the pattern misses" and len(raw.splitlines()) == 3
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (3, 2, 1)
    with pytest.raises(StrictModeError, match=r"x.log.*line 4.*starts with a time but does not match"):
        load_rows(path, format="plain_logs", strict=True,
                  pattern=r"^(?P<time>\d{4}-\S+ \S+) (?P<level>\w+) (?P<msg>.*)$")


def test_a_record_cut_by_a_batch_boundary_keeps_its_continuation_and_rejects(tmp_path) -> None:
    path = tmp_path / "x.log"
    path.write_text(LINES * 200)
    pattern = r"^(?P<time>\d{4}-\S+ \S+) (?P<level>\w+) (?P<msg>.*)$"
    rows, case, _ = load_rows(path, format="plain_logs", pattern=pattern, batch_bytes=1000)
    whole, case2, _ = load_rows(path, format="plain_logs", pattern=pattern)
    assert rows == whole and len(rows) == 400
    assert rejects(case) == rejects(case2) and len(rejects(case)) == 200


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize("text, trace_id, span_id", [
    (f"call failed TraceID: {TRACE}", TRACE, None),
    (f"call failed trace_id={TRACE} span_id={SPAN}", TRACE, SPAN),
    (f'payload {{"traceId":"{TRACE.upper()}","spanId":"{SPAN}"}}', TRACE, SPAN),
    (f"outgoing traceparent: 00-{TRACE}-{SPAN}-01", TRACE, SPAN),
    (f"trace.id: {TRACE}", TRACE, None),
    ("trace_id=00000000000000000000000000000000 is not an id", None, None),
    ("no trace context here 4bf92f3577b34da6", None, None),
])
def test_trace_context_in_the_text_fills_the_id_columns(tmp_path, text, trace_id, span_id) -> None:
    path = tmp_path / "x.log"
    path.write_text(f"2026-02-18T10:12:33Z INFO {text}\n")
    rows, _, _ = load_rows(path)
    assert (rows[0]["trace_id"], rows[0]["span_id"]) == (trace_id, span_id)
    assert rows[0]["body"] == text


def test_trace_context_in_json_and_logfmt_messages(tmp_path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(f'{{"time": "2026-02-18T10:12:33Z", "msg": "upstream said traceparent=00-{TRACE}-{SPAN}-01"}}\n'
                    f'{{"time": "2026-02-18T10:12:34Z", "msg": "x", "trace_id": "{"a" * 32}"}}\n')
    rows, _, _ = load_rows(path)
    assert [(r["trace_id"], r["span_id"]) for r in rows] == [(TRACE, SPAN), ("a" * 32, None)]
    path = tmp_path / "x.logfmt"
    path.write_text(f'time=2026-02-18T10:12:33Z level=info msg="got TraceID: {TRACE}"\n')
    rows, _, _ = load_rows(path)
    assert rows[0]["trace_id"] == TRACE


def test_cli_year_and_time_format(tmp_path, capsys) -> None:
    from forensics.cli import main

    case_file = str(tmp_path / "c.duckdb")
    assert main(["load", str(LOGHUB / "openssh.log"), "--case", case_file, "--year", "2014"]) == 0
    assert "warning: " in (out := capsys.readouterr().out) and "the year=2014 option" in out
    path = tmp_path / "de.log"
    path.write_text("18.02.2026 10:12:33 WARN disk\n")
    assert main(["load", str(path), "--case", case_file, "--format-in", "plain_logs", "--pattern",
                 r"^(?P<time>\S+ \S+) (?P<level>\S+) (?P<msg>.*)$", "--time-format", "%d.%m.%Y %H:%M:%S"]) == 0
    with forensics.open_case(case_file, read_only=True) as case:
        assert case.sql("SELECT min(year(time)), max(year(time)), count(*) FROM logs").rows() == [(2014, 2026, 6)]
