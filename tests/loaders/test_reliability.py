"""Loading what an unlucky user or an attacker hands over (issue #19, points 2 to 10).

Each test is one point of the issue: a long first record still sniffs (2); a file no format reads
has its ``files`` row and is not rejected twice, and a load of nothing but such files exits 2 (3);
``-O`` options are typed and checked (4); an over-long line is skipped and counted (5); an
out-of-memory error inside a load is retried, not masked (6); FIFOs, devices, dangling symlinks and
symlink loops in a directory are skipped with the reason, and refused with it when named (7, 8);
deep JSON is a reject, never a crash (9); decompression stops at its limits with flat memory (10).
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import duckdb
import pytest

import forensics
from forensics.cli import main
from forensics.errors import UsageError
from forensics.loaders import LoadContext, sniff

FORENSICS = [sys.executable, "-m", "forensics"]
TRACE = "5b8efff798038103d269b633813fc60c"


def _log(i: int, **extra) -> dict:
    return {"level": "info", "ts": 1771409553 + i, "msg": f"served {i}", **extra}


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _peak_rss_mb(code: str, *args: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak RSS in MB (VmHWM: ``ru_maxrss`` would count the
    forking test process) and its stdout."""
    done = subprocess.run([sys.executable, "-c", code + "\nprint('RSS', next(int(line.split()[1]) for line in "
                           "open('/proc/self/status') if line.startswith('VmHWM:')) / 1024)", *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    rss = float(done.stdout.rsplit("RSS", 1)[1])
    return rss, done.stdout


# -- 2: sniffing on complete records ----------------------------------------------------------
STACK = "java.lang.IllegalStateException: timeout" + "\n\tat com.shop.Search.run(Search.java:42)" * 2000


@pytest.mark.parametrize("fmt, first, rest", [
    ("json_logs", json.dumps(_log(0, msg=STACK)), [json.dumps(_log(i)) for i in range(1, 1001)]),
    ("logfmt", 'level=error ts=2026-02-18T10:12:30Z msg="' + STACK.replace("\n", "\\n").replace("\t", "\\t") + '"',
     [f"level=info ts=2026-02-18T10:12:3{i % 10}Z msg=ok{i}" for i in range(1000)]),
    ("deploy_log", json.dumps({"time": "2026-02-18T10:00:00Z", "service": "a", "version": "1", "description": STACK}),
     [json.dumps({"time": f"2026-02-18T10:0{i % 10}:00Z", "service": "a", "version": str(i)}) for i in range(1000)]),
    ("prometheus_text", "# HELP big " + "h" * 100_000 + "\n# TYPE big gauge\nbig 1",
     [f'requests_total{{code="{i}"}} {i}' for i in range(1000)]),
    ("container_logs", "2026-02-18T10:12:29.1Z stdout F " + json.dumps(_log(0, msg=STACK)),
     [f"2026-02-18T10:12:3{i % 10}.1Z stdout F " + json.dumps(_log(i)) for i in range(1, 1000)]),
])
def test_a_first_record_longer_than_the_head_still_sniffs(fmt, first, rest, tmp_path: Path) -> None:
    assert len(first) > 65536
    path = tmp_path / "x.log"
    path.write_text(first + "\n" + "\n".join(rest) + "\n")
    assert sniff(str(path)) == fmt
    case = forensics.open_case()
    report = case.load(path, templates=False)
    f = report.files[0]
    assert f.format == fmt and f.status == "loaded" and f.records_read >= len(rest)
    assert case.files().dicts()[0]["format"] == fmt


def test_a_first_record_longer_than_what_is_kept_is_skipped_for_sniffing(tmp_path: Path, monkeypatch) -> None:
    from forensics.loaders.core import head

    monkeypatch.setattr(head, "RECORD_BYTES", 1 << 16)
    path = _jsonl(tmp_path / "x.jsonl", [_log(0, msg="m" * (1 << 18))] + [_log(i) for i in range(1, 50)])
    assert sniff(str(path)) == "json_logs"


# -- 3: unknown files in the chain of custody -------------------------------------------------
def test_an_unknown_file_gets_a_files_row_and_one_reject_however_often_it_is_loaded(tmp_path: Path) -> None:
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"\x00\x01 binary notes \xff")
    case = forensics.open_case()
    first = case.load(junk).files[0]
    assert (first.status, first.records_read, first.rows_rejected) == ("unknown", 1, 1)
    assert case.sql("SELECT format, records_read, rows_loaded, rows_rejected FROM files").rows() == [(None, 1, 0, 1)]
    assert case.sql("SELECT reason_code, source_offset FROM rejects").rows() == [("unknown_format", 0)]
    again = case.load(junk).files[0]
    assert again.status == "skipped_duplicate"
    assert case.tables()["rejects"] == 1 and case.tables()["files"] == 1


def test_a_load_with_no_export_exits_2_and_licences_are_ignored(tmp_path: Path, capsys) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    (d / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    (d / "README.txt").write_text("what these files are\n")
    (d / "notes.bin").write_bytes(b"\x00\x01\x02")
    case = tmp_path / "c.duckdb"
    assert main(["load", str(d), "--case", str(case)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "no export file among 3 files: 1 not a format forensics reads (notes.bin); 2 ignored" in captured.err
    assert main(["load", str(d), "--case", str(case)]) == 2  # again: the unknown file is a duplicate, still no export
    capsys.readouterr()
    _jsonl(d / "app.jsonl", [_log(1)])
    assert main(["load", str(d), "--case", str(case)]) == 0
    out = capsys.readouterr().out
    assert "LICENSE" in out and "ignored" in out and "failed" not in out


# -- 4: typed options -------------------------------------------------------------------------
def test_options_are_typed_from_text(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [_log(i) for i in range(100)])
    case = forensics.open_case(tmp_path / "c.duckdb")
    report = case.load(path, batch_bytes="1048576", templates="no")
    assert report.files[0].status == "loaded" and report.rows_rejected == 0 and report.rows_loaded == 100
    assert case.sql("SELECT count(*) FROM logs WHERE template IS NOT NULL").scalar() == 0  # templates=no is False
    assert case.load(path, force=True, batch_bytes="4KiB").rows_loaded == 100


@pytest.mark.parametrize("option, message", [
    ("batchbytes=1", "unknown loader option -O batchbytes=..."),
    ("batch_bytes=lots", "-O batch_bytes=lots is not a size in bytes"),
    ("templates=maybe", "-O templates=maybe is not a boolean"),
    ("dialect=influx", "-O dialect=influx is not one of: prometheus, openmetrics"),
    ("max_compression_ratio=0.5", "-O max_compression_ratio=0.5 is below its minimum 1"),
])
def test_an_unknown_or_ill_typed_option_is_a_usage_error(option: str, message: str, tmp_path: Path, capsys) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [_log(1)])
    assert main(["load", str(path), "--case", str(tmp_path / "c.duckdb"), "-O", option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "c.duckdb").exists()  # refused before the case was touched
    with pytest.raises(UsageError):
        forensics.open_case().load(path, **dict([option.split("=", 1)]))


# -- 5: over-long lines -----------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
def test_a_line_over_the_limit_is_skipped_and_the_rest_read(compress: bool, tmp_path: Path) -> None:
    records = [_log(i) for i in range(1000)]
    records[500] = _log(500, msg="x" * 300_000)
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    path = tmp_path / ("a.jsonl.gz" if compress else "a.jsonl")
    path.write_bytes(gzip.compress(text) if compress else text)
    case = forensics.open_case()
    f = case.load(path, max_line_bytes="64KiB", batch_bytes="32KiB", templates=False).files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (1000, 999, 1)
    (line, code, reason, raw), = case.sql("SELECT source_line, reason_code, reason, raw FROM rejects").rows()
    assert (line, code) == (501, "too_large") and "300" in reason and raw.startswith('{"level": "info"')
    assert case.sql("SELECT max(source_line) FROM logs").scalar() == 1000


# -- 6: out of memory inside a load -----------------------------------------------------------
def test_out_of_memory_inside_a_load_is_retried_not_masked(tmp_path: Path, monkeypatch) -> None:
    """The first emit runs out of DuckDB memory under the load's limit; the loader's cleanup must
    not turn it into a TransactionException, so the load retries with the case's own limit."""
    path = _jsonl(tmp_path / "a.jsonl", [_log(i) for i in range(20)])
    real_emit = LoadContext.emit
    calls = []

    def emit(self: LoadContext, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            from forensics._db import run

            run(self.con, "SELECT string_agg(x::VARCHAR || repeat('y', 100), ',') FROM range(2000000) t(x)")
        return real_emit(self, *args, **kwargs)

    monkeypatch.setattr(LoadContext, "emit", emit)
    case = forensics.open_case(tmp_path / "c.duckdb")
    with pytest.raises(duckdb.OutOfMemoryException):  # the query does run out under the load's limit
        run_under = forensics.open_case(tmp_path / "probe.duckdb")
        run_under.execute("SET memory_limit = '32MB'")
        run_under.con.execute("SELECT string_agg(x::VARCHAR || repeat('y', 100), ',') FROM range(2000000) t(x)").fetchall()
    calls.clear()
    report = case.load(path, memory_limit="32MB", templates=False)
    assert report.files[0].status == "loaded" and report.rows_loaded == 20 and len(calls) >= 2


def _events_document(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        fh.write('{\n    "apiVersion": "v1",\n    "items": [\n')
        for i in range(n):
            ev = {"apiVersion": "v1", "kind": "Event", "count": 1, "type": "Normal", "reason": "Pulled",
                  "firstTimestamp": "2026-02-18T10:05:00Z", "lastTimestamp": "2026-02-18T10:05:00Z",
                  "involvedObject": {"kind": "Pod", "name": f"catalog-service-7d9f8b6c5-x2x{i % 90:02d}",
                                     "namespace": "prod"},
                  "metadata": {"name": f"catalog-service.{i:016x}", "namespace": "prod"},
                  "message": f"Successfully pulled image \"registry/shop/catalog-service:1.8.{i % 7}\" " + "x" * 300,
                  "source": {"component": "kubelet", "host": "node-1"}}
            fh.write(("," if i else "") + json.dumps(ev, indent=4))
        fh.write('\n    ],\n    "kind": "List",\n    "metadata": {"resourceVersion": ""}\n}\n')
    return path


@pytest.mark.slow
def test_a_large_events_document_streams(tmp_path: Path) -> None:
    """A kubectl events document loads within the load's memory bound (it was read whole: a 600 MB
    document needed 9 GB; this 135 MB one peaked at 2.7 GB read whole, ~0.7 GB streamed)."""
    code = ("import sys, forensics\ncase = forensics.open_case(sys.argv[2])\n"
            "r = case.load(sys.argv[1], templates=False)\nprint('ROWS', r.rows_loaded, r.rows_rejected)")
    big = _events_document(tmp_path / "big.json", 150_000)
    rss, out = _peak_rss_mb(code, str(big), str(tmp_path / "b.duckdb"))
    print(f"k8s events: {big.stat().st_size >> 20} MB document -> {rss:.0f} MB peak RSS")
    assert "ROWS 150000 0" in out
    assert rss < 1000, rss


# -- 7, 8: what is not a regular file ---------------------------------------------------------
def test_fifos_devices_and_broken_symlinks_in_a_directory_are_skipped(tmp_path: Path) -> None:
    d = tmp_path / "var-log-containers"
    d.mkdir()
    _jsonl(d / "app.jsonl", [_log(i) for i in range(3)])
    os.mkfifo(d / "pipe")
    os.symlink("/dev/zero", d / "zero")
    os.symlink(tmp_path / "gone.log", d / "dangling.log")
    os.symlink(d / "loop-b", d / "loop-a")
    os.symlink(d / "loop-a", d / "loop-b")
    code = ("import sys, json, forensics\nr = forensics.load(forensics.open_case(sys.argv[2]), sys.argv[1])\n"
            "print(json.dumps({f.path.rsplit('/', 1)[1]: [f.status, f.message] for f in r.files}))")
    done = subprocess.run([sys.executable, "-c", code, str(d), str(tmp_path / "c.duckdb")],
                          capture_output=True, text=True, timeout=120)  # it used to hang on the FIFO
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["app.jsonl"][0] == "loaded"
    assert got["pipe"][0] == "ignored" and got["pipe"][1].startswith("a FIFO (named pipe), not a regular file")
    assert got["zero"][1].startswith("a character device (through a symlink to /dev/zero)")
    assert got["dangling.log"] == ["ignored", f"a dangling symlink (to {tmp_path / 'gone.log'})"]
    assert got["loop-a"] == got["loop-b"] == ["ignored", "a symlink loop"]
    done = subprocess.run(FORENSICS + ["load", str(d), "--case", str(tmp_path / "c2.duckdb")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ignored (a FIFO" in done.stdout, done.stderr


def test_named_non_files_are_refused_with_the_exact_reason(tmp_path: Path, capsys) -> None:
    os.mkfifo(tmp_path / "pipe")
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    for name, reason in [("pipe", "a FIFO (named pipe), not a regular file"), ("zero", "a character device"),
                         ("dangling", "a dangling symlink"), ("nothing", "no such file or directory")]:
        assert main(["load", str(tmp_path / name), "--case", str(tmp_path / "c.duckdb")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{tmp_path / name}: {reason}" in err, err


# -- 9: depth ---------------------------------------------------------------------------------
def test_deep_json_is_a_reject_not_a_crash(tmp_path: Path) -> None:
    open_, close = '{"kvlistValue":{"values":[{"key":"k","value":', "}]}}"
    deep = ('{"resourceSpans":[{"resource":{"attributes":[{"key":"deep","value":' + open_ * 400
            + '{"stringValue":"x"}' + close * 400 + '}]},"scopeSpans":[]}]}')
    span = {"traceId": TRACE, "spanId": "eee19b7ec3c1b174", "name": "GET /", "kind": 2,
            "startTimeUnixNano": "1771408800000000000", "endTimeUnixNano": "1771408800100000000"}
    good = json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]})
    path = tmp_path / "otlp.jsonl"
    path.write_text(deep + "\n" + good + "\n")
    assert sniff(str(path)) == "otlp_json"  # stdlib json in the document check raised RecursionError
    case = forensics.open_case()
    assert case.load(path).rows_loaded == 1
    logs = tmp_path / "deep.jsonl"
    logs.write_text(json.dumps(_log(0)) + "\n" + '{"a":' * 1_000_000 + "1" + "}" * 1_000_000 + "\n" + json.dumps(_log(1)) + "\n")
    f = forensics.open_case(tmp_path / "c.duckdb").load(logs, templates=False).files[0]
    assert (f.status, f.records_read, f.rows_loaded, f.rows_rejected) == ("loaded", 3, 2, 1)


# -- 10: decompression limits -----------------------------------------------------------------
def _bomb(path: Path, zeros_mb: int) -> Path:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [comp.compress(b"".join(json.dumps(_log(i)).encode() + b"\n" for i in range(10)))]
    parts += [comp.compress(b"\0" * (1 << 20)) for _ in range(zeros_mb)]
    path.write_bytes(b"".join(parts) + comp.flush())
    return path


def test_decompression_stops_at_the_ratio_with_flat_memory(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.jsonl.gz", 1024)  # ~1 MB of gzip, 1 GiB of zeros after 10 records
    case = forensics.open_case()
    f = case.load(bomb, templates=False).files[0]
    assert (f.records_read, f.rows_loaded) == (12, 10)  # the cut line of zeros and the limit: 2 rejects
    limit, = case.sql("SELECT source_offset, reason FROM rejects WHERE reason_code = 'decompression_limit'").rows()
    assert limit[0] < 64 << 20 and "max_compression_ratio" in limit[1]
    code = ("import sys\nfrom forensics.loaders.core import io as fio\n"
            "hits = []\nlimits = fio.Limits(ratio=float(sys.argv[2]))\n"
            "blocks = list(fio.iter_blocks(sys.argv[1], 16 << 20, 1 << 20, limits, hits.append))\n"
            "print('SKIPPED', sum(t[1] for b in blocks for t in b.too_long), 'HITS', len(hits))")
    rss_stopped, out_stopped = _peak_rss_mb(code, str(bomb), "200")
    rss_whole, out_whole = _peak_rss_mb(code, str(bomb), "1e9")  # no ratio: all 1 GiB decompressed
    assert "HITS 1" in out_stopped and f"SKIPPED {1 << 30} HITS 0" in out_whole, (out_stopped, out_whole)
    assert rss_whole < 250 and rss_whole - rss_stopped < 50, (rss_stopped, rss_whole)


def test_decompression_limits_are_options(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.jsonl.gz", 40)
    case = forensics.open_case()
    f = case.load(bomb, templates=False, max_compression_ratio=1e6, max_line_bytes="128MiB").files[0]
    assert (f.rows_loaded, f.rows_rejected) == (10, 1)  # the line of zeros: not JSON, but read in full
    f = case.load(bomb, templates=False, force=True, max_decompressed_bytes="1MiB").files[0]
    codes = case.sql("SELECT reason_code FROM rejects WHERE reason LIKE '%max_decompressed_bytes%'").rows()
    assert f.rows_loaded == 10 and codes == [("decompression_limit",)]
