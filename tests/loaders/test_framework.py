"""The loading framework: accounting, rejects, strict mode, atomic per-file loads, provenance,
duplicate detection, directory walks and sniffing errors."""
from __future__ import annotations

import gzip
import os

import pytest

import forensics
from forensics.errors import StrictModeError, UnknownFormatError, UsageError
from forensics.loaders import FORMATS, LoadContext, register_format
from forensics.loaders.core.options import LoadOption


def _never(head) -> float:
    return 0.0


def _load_pipe(ctx: LoadContext) -> None:
    for batch in ctx.line_batches(batch_bytes=ctx.options.get("batch_bytes", 1 << 20)):
        src = ctx.register(batch)
        ctx.emit("events", f"""
            SELECT TRY_CAST(split_part(raw, '|', 1) AS TIMESTAMPTZ) AS time, split_part(raw, '|', 2) AS kind,
                   split_part(raw, '|', 3) AS message, line AS source_line, raw AS _raw,
                   CASE WHEN TRY_CAST(split_part(raw, '|', 1) AS TIMESTAMPTZ) IS NULL THEN 'bad_time' END AS _reject_code,
                   'expected an ISO time before the first |, found ' || split_part(raw, '|', 1) AS _reject_reason
            FROM {src}""")
        ctx.unregister(src)
        if ctx.options.get("boom"):
            raise RuntimeError("simulated crash after the first batch")


@pytest.fixture(autouse=True, scope="module")
def _test_format():
    """Register the test-only format for this module's tests, and only for them."""
    register_format("test_pipe_events", signal="events", description="test only: time|kind|message lines",
                    sniff=_never, options=(LoadOption("boom", "bool", False, "test only: crash mid-file"),))(_load_pipe)
    yield
    FORMATS.pop("test_pipe_events", None)


GOOD = "2026-02-18T10:00:00Z|deploy|catalog-service 1.8.0\n2026-02-18T10:05:00Z|alert|p99 high\n"
BAD = "not-a-time|deploy|oops\n"


def test_loaded_plus_rejected_equals_read_and_rejects_name_line(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text(GOOD + BAD + "\n" + GOOD)
    case = forensics.open_case()
    report = forensics.load(case, p, format="test_pipe_events")
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_rejected) == (5, 4, 1)
    assert report.records_read == report.rows_loaded + report.rows_rejected
    rej = case.rejects().dicts()
    assert rej[0]["source_line"] == 3 and rej[0]["reason_code"] == "bad_time"
    assert "found not-a-time" in rej[0]["reason"] and rej[0]["raw"] == "not-a-time|deploy|oops"
    assert case.sql("select source_line from events order by 1").to_pandas()["source_line"].tolist() == [1, 2, 5, 6]
    files = case.files().dicts()[0]
    assert files["records_read"] == 5 and files["rows_loaded"] == 4 and files["rows_rejected"] == 1
    assert files["sha256"] and files["size_bytes"] == os.path.getsize(p) and files["format"] == "test_pipe_events"


def test_strict_mode_names_file_and_line_and_loads_nothing(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text(GOOD + BAD)
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        forensics.load(case, p, format="test_pipe_events", strict=True)
    assert str(p) in str(err.value) and "line 3" in str(err.value)
    assert case.tables()["events"] == 0 and case.tables()["files"] == 0


def test_a_crash_mid_file_leaves_the_case_as_before_that_file(tmp_path):
    ok = tmp_path / "a.txt"
    ok.write_text(GOOD)
    crash = tmp_path / "b.txt"
    crash.write_text(GOOD * 50)
    case = forensics.open_case()
    forensics.load(case, ok, format="test_pipe_events")
    with pytest.raises(forensics.LoadError, match="internal error"):
        forensics.load(case, crash, format="test_pipe_events", boom=True, batch_bytes=64)
    assert case.tables()["events"] == 2 and case.tables()["files"] == 1 and case.tables()["rejects"] == 0


def test_reloading_the_same_file_is_skipped_unless_forced(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text(GOOD)
    case = forensics.open_case()
    forensics.load(case, p, format="test_pipe_events")
    again = forensics.load(case, p, format="test_pipe_events")
    assert again.files[0].status == "skipped_duplicate" and case.tables()["events"] == 2
    forensics.load(case, p, format="test_pipe_events", force=True)
    assert case.tables()["events"] == 4


def test_case_file_persists_and_gzip_is_transparent(tmp_path):
    p = tmp_path / "e.txt.gz"
    p.write_bytes(gzip.compress(GOOD.encode()))
    path = tmp_path / "c.duckdb"
    with forensics.open_case(path) as case:
        forensics.load(case, p, format="test_pipe_events")
    with forensics.open_case(path, read_only=True) as case:
        assert case.sql("select count(*) from events where kind = ?", ["deploy"]).scalar() == 1
        assert case.files().dicts()[0]["path"] == str(p)


def test_unknown_format_is_a_clear_error_or_a_reject_naming_the_file(tmp_path):
    p = tmp_path / "mystery.dat"
    p.write_text("hello world, no known format here\n")
    case = forensics.open_case()
    with pytest.raises(UnknownFormatError) as err:
        forensics.load(case, p, strict=True)
    assert str(p) in str(err.value) and "forensics formats" in str(err.value)
    report = forensics.load(case, p)
    assert report.files[0].status == "unknown" and report.rows_rejected == 1
    assert case.rejects().dicts()[0]["reason_code"] == "unknown_format"


def test_empty_file_is_reported(tmp_path):
    p = tmp_path / "empty.json"
    p.write_text("")
    with pytest.raises(UnknownFormatError, match="empty"):
        forensics.load(forensics.open_case(), p, strict=True)


def test_directory_walk_recurses_and_ignores_docs(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.txt").write_text(GOOD)
    (tmp_path / "README.md").write_text("# notes")
    (tmp_path / "truth.json").write_text("{}")
    (tmp_path / ".hidden").write_text("x")
    case = forensics.open_case()
    report = forensics.load(case, tmp_path, format="test_pipe_events")
    statuses = {os.path.basename(f.path): f.status for f in report.files}
    assert statuses == {"README.md": "ignored", "truth.json": "ignored", "e.txt": "loaded"}
    assert "events" in str(report) and "rejects" in str(report)


def test_bad_arguments_are_usage_errors(tmp_path):
    case = forensics.open_case()
    with pytest.raises(UsageError, match="no such file"):
        forensics.load(case, tmp_path / "missing.json")
    with pytest.raises(UsageError, match="unknown format"):
        forensics.load(case, tmp_path, format="nope")


def test_sql_uses_bind_parameters_and_converts():
    case = forensics.open_case()
    hostile = "x'; DROP TABLE spans; --"
    assert case.sql("select ? as v", [hostile]).scalar() == hostile
    assert "spans" in case.tables()
    res = case.sql("select 1 as a, 'b' as b")
    assert res.to_pandas().shape == (1, 2) and res.to_polars().shape == (1, 2) and res.to_arrow().num_rows == 1
    with pytest.raises(forensics.ForensicsError, match="query failed"):
        case.sql("select * from no_such_table")


def test_load_into_a_case_file_runs_under_the_loading_memory_limit_and_restores_it(tmp_path):
    import forensics
    from forensics.errors import UsageError

    src = tmp_path / "t.jsonl"
    src.write_text('{"resourceSpans":[]}\n')
    case = forensics.open_case(tmp_path / "c.duckdb")
    before = case.sql("SELECT current_setting('memory_limit')").scalar()
    seen = []
    case.load(src, on_file=lambda fr: seen.append(case.sql("SELECT current_setting('memory_limit')").scalar()))
    assert seen == ["488.2 MiB"]  # LOAD_MEMORY_LIMIT = 512MB (decimal), as DuckDB prints it
    assert case.sql("SELECT current_setting('memory_limit')").scalar() == before
    threshold = case.sql("SELECT current_setting('checkpoint_threshold')").scalar()
    seen.clear()
    case.load(src, force=True, on_file=lambda fr: seen.append(case.sql("SELECT current_setting('checkpoint_threshold')").scalar()))
    assert seen == ["244.1 MiB"] and threshold == "16.0 MiB"  # LOAD_CHECKPOINT_THRESHOLD while loading, then restored
    assert case.sql("SELECT current_setting('checkpoint_threshold')").scalar() == threshold
    with pytest.raises(UsageError, match="memory_limit='lots'"):
        case.load(src, memory_limit="lots", force=True)
    assert case.sql("SELECT current_setting('memory_limit')").scalar() == before


def test_a_file_that_runs_out_of_memory_under_the_loading_limit_is_loaded_again_under_the_cases_own(tmp_path, monkeypatch):
    import duckdb

    import forensics
    from forensics.errors import LoadError
    from forensics.loaders.core import api

    src = tmp_path / "t.jsonl"
    src.write_text('{"resourceSpans":[]}\n')
    case = forensics.open_case(tmp_path / "c.duckdb")
    before = case.sql("SELECT current_setting('memory_limit')").scalar()
    real, limits = api._load_one, []

    def once_out_of_memory(case_, path, **kw):  # the file needs more than the loading limit
        limits.append(case_.sql("SELECT current_setting('memory_limit')").scalar())
        if limits[-1] == "488.2 MiB" and path.endswith("t.jsonl"):
            try:
                raise duckdb.OutOfMemoryException("could not allocate")
            except duckdb.OutOfMemoryException as exc:
                raise LoadError("internal error while loading", path=path) from exc
        return real(case_, path, **kw)

    monkeypatch.setattr(api, "_load_one", once_out_of_memory)
    report = case.load(src)
    assert [f.status for f in report.files] == ["loaded"]
    assert limits == ["488.2 MiB", before]
    other = tmp_path / "u.jsonl"
    other.write_text('{"resourceSpans":[{"resource":{}}]}\n')
    limits.clear()
    report = case.load(src, other, force=True, batch_small_files=False)
    assert [f.status for f in report.files] == ["loaded", "loaded"]
    # t.jsonl in a group of small files, then alone, then alone under the case's own limit; u.jsonl
    assert limits == ["488.2 MiB", "488.2 MiB", before, "488.2 MiB"]
    # small OTLP files are converted in one batch: out of memory there, each loads alone as above
    real_batch = api._load_batch

    def batch_out_of_memory(case_, files, **kw):
        try:
            raise duckdb.OutOfMemoryException("could not allocate")
        except duckdb.OutOfMemoryException as exc:
            raise LoadError("internal error while loading", path=files[0].path) from exc

    monkeypatch.setattr(api, "_load_batch", batch_out_of_memory)
    limits.clear()
    report = case.load(src, other, force=True)
    assert [f.status for f in report.files] == ["loaded", "loaded"]
    assert limits == ["488.2 MiB", before, "488.2 MiB"]
    monkeypatch.setattr(api, "_load_batch", real_batch)
