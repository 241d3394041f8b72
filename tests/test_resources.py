"""Resource limits: one huge trace loads with bounded memory; a full disk gives a clear error.

* 100,000 spans of one trace in a single OTLP/JSON line, and in one Jaeger trace, each loaded
  by ``forensics load`` in a subprocess whose peak RSS (``ru_maxrss`` of the child) is checked
  against a generous bound and printed;
* disk full: a case on a 2 MiB tmpfs (needs root to mount; skipped otherwise) and a
  monkeypatched ``ENOSPC`` write both give a :class:`~forensics.errors.CaseError` naming the
  case file, with the case left as it was before the file.
"""
from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import forensics
from forensics.errors import CaseError
from forensics.loaders.context import LoadContext

N_SPANS = 100_000
T0_NS = 1771408800_000_000_000
#: generous bound on the peak RSS of one load process (the numbers seen are printed)
RSS_LIMIT_MB = 3000
TRACE = "5b8efff798038103d269b633813fc60c"


def _span_ids(n: int) -> list[str]:
    return [f"{i + 1:016x}" for i in range(n)]


def _otlp_line(path: Path) -> None:
    ids = _span_ids(N_SPANS)
    with open(path, "w") as fh:
        fh.write('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"catalog"}}]},'
                 '"scopeSpans":[{"scope":{"name":"s"},"spans":[')
        for i, sid in enumerate(ids):
            parent = ids[(i - 1) // 2] if i else ""
            fh.write(("," if i else "") + json.dumps({
                "traceId": TRACE, "spanId": sid, "parentSpanId": parent, "name": f"op {i % 50}", "kind": 3,
                "startTimeUnixNano": str(T0_NS + i * 1000), "endTimeUnixNano": str(T0_NS + i * 1000 + 500_000),
                "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}}]}, separators=(",", ":")))
        fh.write("]}]}]}\n")


def _jaeger_trace(path: Path) -> None:
    ids = _span_ids(N_SPANS)
    with open(path, "w") as fh:
        fh.write('{"data":[{"traceID":"%s","processes":{"p1":{"serviceName":"catalog","tags":[]}},"spans":[' % TRACE)
        for i, sid in enumerate(ids):
            refs = [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": ids[(i - 1) // 2]}] if i else []
            fh.write(("," if i else "") + json.dumps({
                "traceID": TRACE, "spanID": sid, "operationName": f"op {i % 50}", "references": refs, "flags": 1,
                "startTime": T0_NS // 1000 + i, "duration": 500, "tags": [], "logs": [], "processID": "p1"},
                separators=(",", ":")))
        fh.write("]}]}\n")


_MEASURE = """
import resource, sys
from forensics.cli import main
rc = main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(rc)
"""


@pytest.mark.slow
@pytest.mark.parametrize("fmt,writer", [("otlp_json", _otlp_line), ("jaeger_json", _jaeger_trace)])
def test_one_huge_trace_loads_with_bounded_memory(fmt, writer, tmp_path: Path, capsys) -> None:
    src = tmp_path / f"huge.{fmt}.json"
    writer(src)
    case_path = tmp_path / "c.duckdb"
    done = subprocess.run([sys.executable, "-c", _MEASURE, "load", str(src), "--case", str(case_path),
                           "--format-in", fmt], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024
    with capsys.disabled():
        print(f"\n{fmt}: {N_SPANS} spans in one trace ({src.stat().st_size / 1e6:.0f} MB), peak RSS {peak_mb:.0f} MB")
    assert peak_mb < RSS_LIMIT_MB
    with forensics.open_case(case_path, read_only=True) as case:
        assert case.tables()["spans"] == N_SPANS
        assert case.sql("SELECT count(DISTINCT trace_id), count(parent_span_id) FROM spans").rows() == [(1, N_SPANS - 1)]


def _logs(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"level": "info", "ts": 1771409553 + i / 1000, "msg": f"request {i} " + "x" * 120}) + "\n")
    return path


def _tmpfs(mount_point: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True)
    return done.returncode == 0


def test_disk_full_on_a_tiny_tmpfs_is_a_clear_error(tmp_path: Path) -> None:
    mnt = tmp_path / "tiny"
    if not _tmpfs(mnt, "2m"):
        pytest.skip("mounting a tmpfs needs root (the ENOSPC test below covers the error path)")
    try:
        small, big = _logs(tmp_path / "small.jsonl", 20), _logs(tmp_path / "big.jsonl", 40_000)
        case_path = mnt / "c.duckdb"
        forensics_bin = Path(sys.executable).with_name("forensics")
        run = lambda p: subprocess.run([str(forensics_bin), "load", str(p), "--case", str(case_path),  # noqa: E731
                                        "--no-templates"], capture_output=True, text=True, timeout=600)
        assert run(small).returncode == 0
        done = run(big)
        assert done.returncode == 2, done.stderr
        assert str(case_path) in done.stderr and "No space left on device" in done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert str(big) in done.stderr and "not loaded" in done.stderr
        with forensics.open_case(case_path, read_only=True) as case:
            assert case.tables()["logs"] == 20 and case.tables()["files"] == 1
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_enospc_during_a_load_names_the_case_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case_path = tmp_path / "c.duckdb"
    case = forensics.open_case(case_path)
    case.load(_logs(tmp_path / "a.jsonl", 10), templates=False)
    real_emit = LoadContext.emit

    def emit(self: LoadContext, *args, **kwargs):
        real_emit(self, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(case_path))

    monkeypatch.setattr(LoadContext, "emit", emit)
    big = _logs(tmp_path / "b.jsonl", 50)
    with pytest.raises(CaseError) as err:
        case.load(big, templates=False)
    assert str(case_path) in str(err.value) and str(big) in str(err.value)
    assert "No space left on device" in str(err.value)
    assert case.tables()["logs"] == 10 and case.tables()["files"] == 1
