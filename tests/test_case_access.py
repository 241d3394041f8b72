"""How commands open a case file (issue #19, points 1, 14, 15; issue #17, `sql --write`).

* a load reports success only once every row is in the case file itself, not only in its WAL
  (a checkpoint that fails, e.g. on a full disk, is exit 2 with a message naming the ``.wal``);
* `sql`, `detect`, `report` and `export` open a case read-only: a query cannot change the
  evidence without ``--write``, several can run at once, and a writer elsewhere gives one line
  naming its PID;
* only ``load`` (or ``open_case`` in Python) makes a case: another DuckDB database, an empty one or
  a missing path is refused by the reading commands and is never given the case tables.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

import forensics
from forensics import case as case_module
from forensics.cli import main
from forensics.errors import CaseError
from forensics.synth.builder import SpanBuilder

FORENSICS = [sys.executable, "-m", "forensics"]


@pytest.fixture()
def case_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.duckdb"
    b = SpanBuilder(datetime(2026, 2, 18, 10, tzinfo=timezone.utc), seed=3)
    root = b.span("catalog-service", "GET /search", kind="server", duration_ms=120, version="1.8.0")
    b.span("catalog-service", "GET /inventory/{id}", kind="client", parent=root, start_ms=5, duration_ms=10,
           attributes={"peer.service": "inventory-service"})
    with forensics.open_case(path) as case:
        b.insert(case)
    return path


def _logs(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"level": "info", "ts": 1771409553 + i / 1000,
                                 "msg": f"request {i} done with some text abcdefghijklmnop"}) + "\n")
    return path


def _rows_in(db: Path, wal: Path | None, where: Path) -> int:
    """Logs in a copy of ``db`` (with ``wal`` beside it, if given): what an archive of them holds."""
    where.mkdir()
    shutil.copy(db, where / db.name)
    if wal is not None:
        shutil.copy(wal, where / (db.name + ".wal"))
    con = duckdb.connect(str(where / db.name), read_only=True)
    try:
        names = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        return con.execute("select count(*) from logs").fetchone()[0] if "logs" in names else 0
    finally:
        con.close()


# -- point 1: checkpoint before success -------------------------------------------------------
def test_load_leaves_every_row_in_the_case_file_itself(tmp_path: Path) -> None:
    """The ordinary path (a guard for the explicit checkpoint): after exit 0 the case file alone,
    copied without its .wal, holds every row."""
    case_path = tmp_path / "c.duckdb"
    assert main(["load", str(_logs(tmp_path / "a.jsonl", 500)), "--case", str(case_path), "--no-templates"]) == 0
    assert not (tmp_path / "c.duckdb.wal").exists() or (tmp_path / "c.duckdb.wal").stat().st_size == 0
    assert _rows_in(case_path, None, tmp_path / "copy") == 500


def test_a_failed_checkpoint_is_exit_2_naming_the_wal(case_file: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    real_run = case_module.run

    def run(con, query, params=None):
        if query == "CHECKPOINT":
            raise duckdb.IOException(f'Could not write file "{case_file}": No space left on device')
        return real_run(con, query, params)

    monkeypatch.setattr(case_module, "run", run)
    assert main(["load", str(_logs(tmp_path / "a.jsonl", 20)), "--case", str(case_file), "--no-templates"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("forensics: error: ")
    assert f"{case_file}.wal" in err and "No space left on device" in err and "checkpointing" in err


def _tmpfs(mount_point: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    mount_point.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
                          capture_output=True).returncode == 0


def test_disk_full_during_the_final_checkpoint_is_not_success(tmp_path: Path) -> None:
    """The issue's case on a real full disk: the WAL fits on a 3 MiB tmpfs, the checkpoint does not.
    Whatever the outcome, exit 0 means the case file alone holds every row, and exit 2 after a
    failed checkpoint means the case file with its .wal does."""
    mnt = tmp_path / "tiny"
    if not _tmpfs(mnt, "3m"):
        pytest.skip("mounting a tmpfs needs root (the monkeypatched checkpoint test covers the message)")
    outcomes = []
    try:
        for n in (4_000, 12_000, 14_000):
            case_path = mnt / "c.duckdb"
            done = subprocess.run(FORENSICS + ["load", str(_logs(tmp_path / f"l{n}.jsonl", n)), "--case",
                                               str(case_path), "--no-templates"], capture_output=True, text=True)
            wal = mnt / "c.duckdb.wal"
            if done.returncode == 0:
                assert _rows_in(case_path, None, tmp_path / f"ok{n}") == n
                outcomes.append("ok")
            else:
                assert done.returncode == 2, done.stderr
                assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
                assert str(case_path) in done.stderr and "No space left on device" in done.stderr
                if "checkpointing" in done.stderr:
                    assert _rows_in(case_path, wal, tmp_path / f"wal{n}") == n
                    outcomes.append("checkpoint")
                else:
                    outcomes.append("commit")
            for p in mnt.iterdir():
                p.unlink()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    assert "checkpoint" in outcomes, outcomes  # the sizes were chosen so one of them fails at the checkpoint


# -- point 14: only load makes a case ---------------------------------------------------------
@pytest.mark.parametrize("command", [["sql", "{db}", "select 1"], ["detect", "{db}"], ["report", "{db}", "-o", "{out}"],
                                     ["export", "{db}", "{out}"], ["causes", "{db}"], ["sql", "{db}", "select 1", "--write"]])
def test_reading_commands_refuse_a_database_that_is_not_a_case(command, tmp_path: Path, capsys) -> None:
    db = tmp_path / "sales.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table orders (id int)")
    con.close()
    before = db.read_bytes()
    args = [a.format(db=db, out=tmp_path / "out") for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a forensics case" in err and "orders" in err
    con = duckdb.connect(str(db), read_only=True)
    assert [r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()] == ["orders"]
    con.close()
    assert db.read_bytes() == before


def test_a_database_file_is_recognised_by_its_header_not_its_name(tmp_path: Path, capsys) -> None:
    db = tmp_path / "warehouse.db"
    con = duckdb.connect(str(db))
    con.execute("create table t (a int)")
    con.close()
    assert main(["sql", str(db), "select 1"]) == 2
    assert "not a forensics case" in capsys.readouterr().err


def test_missing_and_empty_case_files_are_refused_except_by_load(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "missing.duckdb"
    assert main(["detect", str(missing)]) == 2
    assert "no such case file" in capsys.readouterr().err and not missing.exists()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert main(["sql", str(empty), "select count(*) from spans"]) == 2
    assert "empty DuckDB database" in capsys.readouterr().err
    assert main(["load", str(_logs(tmp_path / "a.jsonl", 3)), "--case", str(empty), "--no-templates"]) == 0
    capsys.readouterr()
    assert main(["sql", str(empty), "select count(*) as n from logs", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ['"n"', "3"]


def test_open_case_refuses_another_database(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table a (x int)")
    con.close()
    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(CaseError, match="not a forensics case"):
            forensics.open_case(db, **kwargs)


# -- point 15 and #17: read-only opens --------------------------------------------------------
def test_sql_is_read_only_unless_write(case_file: Path, capsys) -> None:
    for statement in ("drop table spans", "update files set sha256 = 'x'", "delete from spans"):
        assert main(["sql", str(case_file), statement]) == 2
        err = capsys.readouterr().err
        assert "read-only" in err and "--write" in err and err.count("\n") == 1
    with forensics.open_case(case_file, read_only=True) as case:
        assert case.tables()["spans"] == 2
    assert main(["sql", str(case_file), "delete from spans where kind = ?", "-p", "client", "--write"]) == 0
    with forensics.open_case(case_file, read_only=True) as case:
        assert case.tables()["spans"] == 1


def test_readers_run_beside_each_other(case_file: Path) -> None:
    """A report (read-only) holds the case while `sql` and `detect` run in other processes."""
    with forensics.open_case(case_file, read_only=True) as reader:
        assert reader.tables()["spans"] == 2
        for args in (["sql", str(case_file), "select count(*) from spans"], ["detect", str(case_file), "--format", "json"]):
            done = subprocess.run(FORENSICS + args, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr


def test_a_writer_elsewhere_is_one_line_naming_its_pid(case_file: Path) -> None:
    """DuckDB lets one process write a file or several read it: a reader beside a load is refused
    with one line (what README says), never a traceback."""
    with forensics.open_case(case_file):
        done = subprocess.run(FORENSICS + ["sql", str(case_file), "select 1"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"PID {os.getpid()}" in done.stderr and "in use by another process" in done.stderr


def test_read_only_opens_beside_a_writable_case_in_the_same_process(case_file: Path) -> None:
    with forensics.open_case(case_file) as case:
        with pytest.raises(CaseError, match="already open in this process"):
            forensics.as_case(str(case_file))  # read-only: DuckDB refuses a second configuration
        assert forensics.as_case(case) is case  # what the message advises
