"""Habits users expect of a command-line tool (issue #17) and inert terminal/CSV output (issue #19.13).

* every usage error is one line, ``forensics: error: ...``; top-level help shows each command's
  whole first sentence; messages spell options as flags on the command line;
* progress bars on a terminal only (load, detect, report, synth, verify), nothing in a pipe;
* ``forensics verify CASE`` re-hashes the source files and checks every file's counts;
* control characters from telemetry never reach the terminal raw; CSV cells a spreadsheet would run
  as formulas are made inert by default when writing a ``.csv`` file.
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from datetime import datetime, timezone
from pathlib import Path

import pytest

import forensics
from forensics._spelling import command_line, option
from forensics._text import csv_formulas_inert, printable
from forensics.cli import main
from forensics.synth.builder import SpanBuilder

FORENSICS = [sys.executable, "-m", "forensics"]
#: what an attacker puts in a service name: clear screen, window title, an OSC-8 link, bidi override
HOSTILE = "api\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\u202egw\r\n"


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]


@pytest.fixture()
def hostile_case(tmp_path: Path) -> Path:
    """A case whose service, operation and attribute values carry terminal escapes and formulas,
    shaped so that n_plus_one finds the hostile service (its names reach `detect`'s table)."""
    path = tmp_path / "hostile.duckdb"
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=7)
    for _ in range(30):
        root = b.span(HOSTILE, "GET /search\x1b[31m", kind="server", duration_ms=400, version="1.8.0")
        for i in range(12):
            b.span(HOSTILE, "GET /inventory/{id}", kind="client", parent=root, start_ms=5 + 30 * i, duration_ms=25,
                   attributes={"peer.service": "=HYPERLINK(\"http://evil.example\",\"x\")", "http.route": "/inventory/{id}"})
    with forensics.open_case(path) as case:
        b.insert(case)
    return path


# -- #19.13: terminal and CSV ------------------------------------------------------------------
def test_printable_escapes_every_control_character() -> None:
    out = printable(HOSTILE)
    assert not _raw_controls(out) and "\n" not in out
    assert out.startswith("api\\x1b[2J\\x1b]0;pwned\\x07") and out.endswith("\\u202egw\\r\\n")
    assert printable("plain ünïcode ✓") == "plain ünïcode ✓"


def test_sql_table_shows_escapes_not_escape_sequences(hostile_case: Path, capsys) -> None:
    assert main(["sql", str(hostile_case), "select distinct service, name as \"col\x1b[1m\" from spans"]) == 0
    out = capsys.readouterr().out
    assert not _raw_controls(out)
    assert "\\x1b]8;;http://evil.example" in out and "col\\x1b[1m" in out


def test_detect_table_shows_escapes_not_escape_sequences(hostile_case: Path) -> None:
    done = subprocess.run(FORENSICS + ["detect", str(hostile_case)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "n_plus_one" in done.stdout and "\\x1b]0;pwned" in done.stdout
    assert not _raw_controls(done.stdout + done.stderr)


def test_csv_file_output_makes_formulas_inert_by_default(hostile_case: Path, tmp_path: Path, capsys) -> None:
    q = "select distinct service, attributes['peer.service'] as peer, '-1+2' as minus, 3 as n from spans where kind = 'client'"
    out = tmp_path / "out.csv"
    assert main(["sql", str(hostile_case), q, "--format", "csv", "-o", str(out)]) == 0
    row = next(csv.DictReader(out.open(newline="")))
    assert row["peer"] == "'=HYPERLINK(\"http://evil.example\",\"x\")" and row["minus"] == "'-1+2" and row["n"] == "3"
    assert row["service"] == HOSTILE  # no formula: the text itself, byte for byte
    assert main(["sql", str(hostile_case), q, "--format", "csv", "-o", str(out), "--no-escape-formulas"]) == 0
    assert next(csv.DictReader(out.open(newline="")))["peer"].startswith("=HYPERLINK")
    assert main(["sql", str(hostile_case), q, "--format", "csv"]) == 0  # stdout: raw unless asked
    assert '"=HYPERLINK(' in capsys.readouterr().out
    assert main(["sql", str(hostile_case), q, "--format", "csv", "--escape-formulas"]) == 0
    assert "\"'=HYPERLINK(" in capsys.readouterr().out


def test_csv_formulas_inert_leaves_numbers_and_nulls() -> None:
    import pyarrow as pa

    t = pa.table({"s": ["@SUM(A1)", "+1", "\t=x", "ok", None], "n": [-1, 2, 3, 4, 5]})
    assert csv_formulas_inert(t).to_pydict() == {"s": ["'@SUM(A1)", "'+1", "'\t=x", "ok", None], "n": [-1, 2, 3, 4, 5]}


def test_error_messages_cannot_drive_the_terminal(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "x\x1b]0;title\x07.duckdb"
    assert main(["detect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not _raw_controls(err) and "\\x1b]0;title\\x07" in err


# -- #17: usage errors, help, flag spelling ---------------------------------------------------
@pytest.mark.parametrize("argv", [["sql"], ["nope"], ["detect", "x.duckdb", "--format", "xml"], ["load", "--case"],
                                  ["load", "x", "--case", "c.duckdb", "-O", "novalue"], ["synth", "no_scenario", "--out", "d"],
                                  ["report", "c.duckdb"]])
def test_every_usage_error_is_one_line(argv: list[str], tmp_path: Path) -> None:
    done = subprocess.run(FORENSICS + argv, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("forensics: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_top_level_help_is_not_truncated() -> None:
    done = subprocess.run(FORENSICS + ["--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    commands = done.stdout.split("Commands:")[1]
    assert done.returncode == 0 and "..." not in commands
    flat = " ".join(done.stdout.split())
    for phrase in ("write report.html.", "nothing else).", "by service and hour.", "loaded/rejected per table."):
        assert phrase in flat


def test_messages_spell_flags_on_the_command_line(tmp_path: Path, capsys) -> None:
    assert option("overwrite") == "overwrite=True" and option("tz", "UTC") == "tz='UTC'"
    with command_line():
        assert option("overwrite") == "--overwrite" and option("templates", False) == "--no-templates"
        assert option("memory_limit", "1GB") == "-O memory_limit=1GB"
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "x").write_text("x")
    case = tmp_path / "c.duckdb"
    forensics.open_case(case).close()
    with pytest.raises(forensics.UsageError, match=r"pass overwrite=True to"):
        with forensics.open_case(case, read_only=True) as c:
            forensics.export(c, tmp_path / "lake")
    assert main(["export", str(case), str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err


# -- #17: progress on a terminal only ---------------------------------------------------------
def _stderr_on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); return its code and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a width
    proc = subprocess.Popen(FORENSICS + argv, stdout=subprocess.PIPE, stderr=slave, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 600)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.stdout.read()
    code = proc.wait()
    os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_and_silence_in_a_pipe(tmp_path: Path) -> None:
    out = tmp_path / "inc"
    steps = [["synth", "n_plus_one", "--out", str(out), "--traces", "300"],
             ["load", str(out), "--case", str(tmp_path / "c.duckdb")],
             ["detect", str(tmp_path / "c.duckdb"), "--only", "n_plus_one,error_origin"],
             ["report", str(tmp_path / "c.duckdb"), "-o", str(tmp_path / "r.html")],
             ["verify", str(tmp_path / "c.duckdb")]]
    bars = {"synth": "trace", "load": "B/s", "detect": "detector", "report": "step", "verify": "file"}
    for argv in steps:
        code, err = _stderr_on_a_terminal(argv, tmp_path)
        assert code == 0, err
        assert "%|" in err and bars[argv[0]] in err, (argv[0], err)
    for argv in steps[2:]:
        done = subprocess.run(FORENSICS + argv, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0 and done.stderr == "", (argv[0], done.stderr)


# -- #17: verify -------------------------------------------------------------------------------
def test_verify_rehashes_sources_and_checks_counts(tmp_path: Path, capsys) -> None:
    logs = tmp_path / "a.jsonl"
    logs.write_text("".join(json.dumps({"level": "info", "ts": 1771409553 + i, "msg": f"m {i}"}) + "\n" for i in range(10))
                    + "not json\n")
    gone = tmp_path / "b.jsonl"
    gone.write_text(json.dumps({"level": "warn", "ts": 1771409553, "msg": "x"}) + "\n")
    case = tmp_path / "c.duckdb"
    assert main(["load", str(logs), str(gone), "--case", str(case)]) == 0
    gone.unlink()
    capsys.readouterr()
    assert main(["verify", str(case)]) == 0
    out = capsys.readouterr().out
    assert f"ok       {logs}" in out and f"missing  {gone}" in out and "1 ok, 1 missing" in out

    assert main(["sql", str(case), "update logs set body = 'edited' where body = 'm 3'", "--write"]) == 0
    capsys.readouterr()
    assert main(["verify", str(case)]) == 0  # an edited value is not a count: the sha256 is of the source
    assert main(["sql", str(case), "delete from rejects", "--write"]) == 0
    assert main(["sql", str(case), "delete from logs where body = 'edited'", "--write"]) == 0
    with logs.open("a") as fh:
        fh.write("tampered\n")
    capsys.readouterr()
    assert main(["verify", str(case)]) == 2
    captured = capsys.readouterr()
    assert f"changed  {logs}" in captured.out and "source file changed" in captured.out
    assert "logs: 9 rows in the case, 10 recorded as loaded" in captured.out
    assert "rejects: 0 rows in the case, 1 recorded" in captured.out
    assert captured.err.count("\n") == 1 and "verification failed for 1 of 2" in captured.err


def test_verify_reports_rows_that_no_file_accounts_for(tmp_path: Path) -> None:
    case_path = tmp_path / "c.duckdb"
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=1)
    b.span("svc", "op", kind="server", duration_ms=5)
    with forensics.open_case(case_path) as case:
        b.insert(case)
    with forensics.open_case(case_path, read_only=True) as case:
        result = forensics.verify(case)
    assert not result.ok and [f.status for f in result.files] == ["orphan"]
    assert "1 spans with no entry in files" in str(result)


def test_load_summary_shows_hostile_file_names_escaped(tmp_path: Path, capsys) -> None:
    d = tmp_path / "exports"
    d.mkdir()
    (d / "app\x1b]0;pwned\x07.jsonl").write_text(json.dumps({"level": "info", "ts": 1771409553, "msg": "m"}) + "\n")
    assert main(["load", str(d), "--case", str(tmp_path / "c.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "app\\x1b]0;pwned\\x07.jsonl" in out and not _raw_controls(out)
