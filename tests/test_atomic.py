"""Atomic loads: a file either loads completely or leaves the case exactly as it was.

* an exception raised by a loader step after some rows of the file were inserted rolls the
  whole file back (monkeypatched ``LoadContext.emit``);
* ``forensics load`` SIGKILLed in a subprocess after the big file's first rows were inserted
  (inside its open transaction) leaves a case that DuckDB reopens (WAL replay) with exactly the
  rows of the files loaded before;
* the same bytes loaded again are skipped (sha256) unless ``force=True``; no duplicate rows.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import forensics
from forensics.errors import LoadError
from forensics.loaders.core.context import LoadContext

T0 = 1771409553.0


def _json_logs(path: Path, n: int, *, tag: str = "x") -> Path:
    """``n`` zap-style JSON log lines (about 200 bytes each)."""
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"level": "info", "ts": T0 + i / 1000, "logger": "catalog", "msg": f"{tag} served {i}",
                                 "trace_id": f"{i:032x}", "span_id": f"{i:016x}", "items": i % 50}) + "\n")
    return path


def _state(case: forensics.Case) -> dict:
    """Row counts of every table and the provenance rows (what "the same case" means here)."""
    files = case.sql("SELECT path, sha256, records_read FROM files ORDER BY path").to_arrow().to_pylist()
    return {"tables": case.tables(), "files": files}


def test_exception_mid_file_rolls_back_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _json_logs(tmp_path / "first.jsonl", 50, tag="first")
    second = _json_logs(tmp_path / "second.jsonl", 3000, tag="second")
    case = forensics.open_case(tmp_path / "c.duckdb")
    case.load(first, templates=False)
    before = _state(case)

    real_emit = LoadContext.emit
    calls = {"n": 0}

    def failing_emit(self: LoadContext, *args, **kwargs):  # the 2nd batch of the 2nd file fails, every time
        n = real_emit(self, *args, **kwargs)
        calls["n"] += 1
        self.warnings.append("batch")
        if self.warnings.count("batch") == 2:
            raise RuntimeError("disk went away between batches")
        return n

    monkeypatch.setattr(LoadContext, "emit", failing_emit)
    with pytest.raises(LoadError, match="internal error.*disk went away") as err:
        case.load(second, templates=False, batch_bytes=64 << 10)  # several batches: rows were inserted
    assert str(second) in str(err.value)
    assert calls["n"] >= 2, "the failure must come after rows of the file were inserted"
    assert _state(case) == before
    monkeypatch.undo()

    # the file was not recorded, so loading it again (no force) works and loads every line once
    report = case.load(second, templates=False)
    assert report.files[0].status == "loaded" and report.files[0].rows_loaded == 3000
    case.close()
    with forensics.open_case(tmp_path / "c.duckdb", read_only=True) as again:
        assert again.tables()["logs"] == 3050


def test_reload_is_detected_by_sha256_and_forced_reload_is_explicit(tmp_path: Path) -> None:
    path = _json_logs(tmp_path / "a.jsonl", 20)
    copy = tmp_path / "renamed.jsonl"
    copy.write_bytes(path.read_bytes())
    case = forensics.open_case()
    assert case.load(path, templates=False).files[0].status == "loaded"
    again = case.load(copy, templates=False).files[0]  # same bytes under another name
    assert again.status == "skipped_duplicate" and str(path) in again.message
    assert case.tables()["logs"] == 20 and case.tables()["files"] == 1
    forced = case.load(path, force=True, templates=False).files[0]
    assert forced.status == "loaded" and case.tables()["logs"] == 40


_DRIVER = textwrap.dedent("""
    import os, sys
    from forensics.loaders.core.context import LoadContext
    from forensics.cli import main

    marker = sys.argv[1]
    real_emit = LoadContext.emit

    def emit(self, *args, **kwargs):
        n = real_emit(self, *args, **kwargs)
        if "big" in self.path and not os.path.exists(marker):
            open(marker, "w").write(str(n))  # rows of the big file are inserted, not committed
        return n

    LoadContext.emit = emit
    sys.exit(main(sys.argv[2:]))
""")


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"load ended (rc={proc.returncode}) before the kill: {err.decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the load did not start in time")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_file_leaves_the_case_as_before_that_file(tmp_path: Path) -> None:
    small = _json_logs(tmp_path / "small.jsonl", 100, tag="small")
    big = _json_logs(tmp_path / "big.jsonl", 400_000, tag="big")  # ~75 MB: three 32 MiB batches
    case_path = tmp_path / "c.duckdb"
    forensics_bin = Path(sys.executable).with_name("forensics")
    done = subprocess.run([str(forensics_bin), "load", str(small), "--case", str(case_path), "--no-templates"],
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    with forensics.open_case(case_path, read_only=True) as c:
        before = _state(c)

    marker = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(marker), "load", str(big), "--case", str(case_path),
                             "--no-templates"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(marker, proc, 300)
    assert int(marker.read_text()) > 0, "rows of the big file were inserted before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    with forensics.open_case(case_path) as c:  # WAL replay, then a normal read-write open
        assert _state(c) == before
        assert c.sql("SELECT count(*) FROM logs WHERE source_file = ?", [str(big)]).to_arrow().column(0)[0].as_py() == 0
        report = c.load(big, templates=False)  # not recorded as loaded: loads in full now
        assert report.files[0].status == "loaded" and report.files[0].rows_loaded == 400_000
        assert c.tables()["logs"] == 400_100


def test_sigkill_of_the_plain_cli_gives_a_consistent_case(tmp_path: Path) -> None:
    """The unmodified CLI killed at an arbitrary moment: the case holds the file fully or not at all."""
    big = _json_logs(tmp_path / "big.jsonl", 40_000, tag="big")
    case_path = tmp_path / "c.duckdb"
    forensics_bin = Path(sys.executable).with_name("forensics")
    proc = subprocess.Popen([str(forensics_bin), "load", str(big), "--case", str(case_path), "--no-templates"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not case_path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    with forensics.open_case(case_path) as c:
        logs, files = c.tables()["logs"], c.tables()["files"]
        assert (logs, files) in {(0, 0), (40_000, 1)}, (logs, files, proc.returncode)
