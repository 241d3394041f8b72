"""Reading the next files ahead (forensics.loaders.core.read_ahead), loading small files in shared
transactions (forensics.loaders.core.api._Group) and converting small OTLP files in batches
(api._Batch) change nothing but speed: the same rows, rejects,
warnings and file reports as a load without them, strict mode and internal errors failing at the
same file with the files before it loaded, and a file that changed after it was read ahead read
again."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import forensics
from forensics.errors import LoadError, StrictModeError
from forensics.loaders.core import api, read_ahead
from forensics.loaders.core.context import LoadContext
from forensics.loaders.core.read_ahead import ReadAhead, RecordingContext

from ..corpus.make_corpus import build_cases
from ._jaeger_zipkin_util import DATA


def _snapshot(*paths: Path, case_path: Path | None = None, **options: Any) -> dict[str, Any]:
    case = forensics.open_case(case_path)
    report = forensics.load(case, *paths, progress=False, **options)
    spans = case.sql("SELECT * REPLACE (epoch_us(start_time) AS start_time, epoch_us(end_time) AS end_time) "
                     "FROM spans ORDER BY source_file, source_line, source_offset, trace_id, span_id").to_arrow().to_pylist()
    rejects = case.sql("SELECT * FROM rejects ORDER BY ALL").to_arrow().to_pylist()
    files = [(Path(f.path).name, f.format, f.status, f.records_read, f.rows_loaded, f.rows_rejected, f.warnings)
             for f in report.files]
    return {"spans": spans, "rejects": rejects, "files": files, "warnings": report.warnings}


def _spy_takes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every read-ahead result handed to a load (None: none for that file)."""
    taken: list[Any] = []
    real = ReadAhead.take

    def spy(self: ReadAhead, path: str, fmt: str) -> Any:
        got = real(self, path, fmt)
        taken.append(got)
        return got

    monkeypatch.setattr(ReadAhead, "take", spy)
    return taken


def _envelope(traces: int, first: int = 1, **extra: Any) -> dict:
    return {"data": [{"traceID": f"{t:032x}", "processes": {"p1": {"serviceName": "svc", "tags": []}},
                      "spans": [{"traceID": f"{t:032x}", "spanID": f"{t * 16 + i:016x}", "operationName": f"op{i}",
                                 "references": [], "startTime": 1771408800_000000 + i, "duration": 10 + i, "tags": [],
                                 "logs": [], "processID": "p1"} for i in range(3)]}
                     for t in range(first, first + traces)], **extra}


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """A directory of Jaeger, Zipkin and OTLP exports with their quirks and broken files (the loader
    test files and the malformed-input corpus), a Jaeger API response with ``errors``, a copy of
    one file (skipped as a duplicate) and a file in no known format."""
    out = tmp_path / "exports"
    for fmt in ("jaeger", "zipkin", "otlp"):
        shutil.copytree(DATA / fmt, out / fmt)
    for case in build_cases():
        if case.format in ("jaeger_json", "zipkin_json", "otlp_json", "otlp_proto") and len(case.data) < 1 << 20:
            (out / "corpus" / case.format).mkdir(parents=True, exist_ok=True)
            (out / "corpus" / case.format / case.filename).write_bytes(case.data)
    (out / "api").mkdir()
    (out / "api" / "a.json").write_text(json.dumps(_envelope(4, errors=[{"code": 404, "msg": "trace not found"}])))
    (out / "api" / "b.json").write_text(json.dumps(_envelope(3, first=10)))
    shutil.copy(out / "api" / "b.json", out / "api" / "c_copy.json")
    (out / "api" / "d.txt").write_text("neither traces nor logs \x00\x01\n")
    return out


def test_a_directory_loads_the_same_with_and_without_reading_ahead(export_dir: Path, tmp_path: Path, monkeypatch) -> None:
    taken = _spy_takes(monkeypatch)
    monkeypatch.setattr(api, "GROUP_FILES", 7)  # several groups of small files
    batched: list[str] = []
    real_batch = api._load_batch
    monkeypatch.setattr(api, "_load_batch", lambda case, files, **kw: (batched.extend(f.fmt for f in files),
                                                                       real_batch(case, files, **kw))[1])
    ahead = _snapshot(export_dir, case_path=tmp_path / "ahead.duckdb")
    monkeypatch.undo()
    plain = _snapshot(export_dir, case_path=tmp_path / "plain.duckdb", read_ahead=False, group_small_files=False)
    assert ahead["files"] == plain["files"]
    assert ahead["warnings"] == plain["warnings"] and any("trace not found" in w for w in ahead["warnings"])
    assert ahead["rejects"] == plain["rejects"] and len(plain["rejects"]) > 20
    assert len(ahead["spans"]) == len(plain["spans"]) > 100
    for a, b in zip(ahead["spans"], plain["spans"]):
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    used = [t for t in taken if t is not None]
    assert all(isinstance(t, RecordingContext) for t in used)
    assert len(used) > len(taken) / 2  # most files were read ahead (not the first, the API v3 ones...)
    assert any(e[0] == "reject" for t in used for e in t.events)  # rejects were replayed too
    assert {t.format for t in used} == {"jaeger_json", "zipkin_json"}  # small OTLP files load in batches instead
    assert {"otlp_json", "otlp_proto"} == set(batched) and len(batched) > 40


@pytest.mark.parametrize("bad", ["cut_download.json", "broken.json"])
def test_strict_mode_fails_at_the_same_record_of_the_same_file(bad: str, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("a_single_trace.json", "c_ui_download.json"):
        shutil.copy(DATA / "jaeger" / name.split("_", 1)[1], exports / name)
    shutil.copy(DATA / "jaeger" / bad, exports / f"b_{bad}")
    errors, contents = [], []
    for k, options in enumerate(({}, {"read_ahead": False, "group_small_files": False})):
        case = forensics.open_case(tmp_path / f"case{k}.duckdb")
        with pytest.raises(StrictModeError) as info:
            forensics.load(case, exports, strict=True, progress=False, **options)
        errors.append((info.value.path, info.value.line, info.value.offset, str(info.value)))
        contents.append(case.sql("SELECT source_file, count(*) FROM spans GROUP BY ALL ORDER BY ALL").rows())
    assert errors[0] == errors[1] and errors[0][0].endswith(f"b_{bad}")
    assert contents[0] == contents[1] and [Path(f).name for f, _ in contents[0]] == ["a_single_trace.json"]


def test_a_file_changed_after_it_was_read_ahead_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_envelope(2)))
    ahead = ReadAhead(strict=False, format=None, options={})
    try:
        ahead.schedule([str(path)])
        ahead._pending[0].future.result()  # read ahead: 6 spans
        path.write_text(json.dumps(_envelope(5)))
        assert ahead.take(str(path), "jaeger_json") is None
        ahead.schedule([str(path)])
        got = ahead.take(str(path), "jaeger_json")
        assert isinstance(got, RecordingContext) and got.events[0][0] == "source"
        assert ahead.take(str(path), "jaeger_json") is None  # handed out once
        ahead.schedule([str(path)])
        assert ahead.take(str(path), "zipkin_json") is None  # read as another format than the load's
    finally:
        ahead.close()


def test_large_files_and_failures_are_loaded_as_usual(tmp_path: Path, monkeypatch) -> None:
    for i in range(3):
        (tmp_path / f"{i}.json").write_text(json.dumps(_envelope(3, first=10 * i + 1)))
    expected = _snapshot(tmp_path, read_ahead=False)
    taken = _spy_takes(monkeypatch)
    monkeypatch.setattr(read_ahead, "READ_AHEAD_BYTES", 100)
    assert _snapshot(tmp_path) == expected and taken == [None] * 3
    monkeypatch.setattr(read_ahead, "READ_AHEAD_BYTES", 1 << 20)
    taken.clear()

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug while reading ahead")

    spec = forensics.loaders.core.registry.FORMATS["jaeger_json"]
    monkeypatch.setitem(forensics.loaders.core.registry.FORMATS, "jaeger_json",
                        type(spec)(**{**spec.__dict__, "read_ahead": broken}))
    assert _snapshot(tmp_path) == expected and taken == [None] * 3


def test_a_failing_file_in_a_group_of_small_files_fails_alone(tmp_path: Path, monkeypatch) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    for i in range(6):
        (exports / f"{i}.json").write_text(json.dumps(_envelope(2, first=10 * i + 1)))
    from forensics.loaders.core import arrow_spans as _arrow_spans

    real_insert = _arrow_spans.insert_spans

    def failing(ctx: LoadContext, *args: Any, **kwargs: Any) -> int:
        n = real_insert(ctx, *args, **kwargs)
        if ctx.path.endswith("3.json"):
            raise RuntimeError("disk went away")
        return n

    from forensics.loaders.traces.jaeger_zipkin import arrow as jaeger_zipkin_arrow
    from forensics.loaders.traces.otlp import arrow as otlp_arrow

    for module in (jaeger_zipkin_arrow, otlp_arrow):
        monkeypatch.setattr(module, "insert_spans", failing)
    seen: list[str] = []
    case = forensics.open_case(tmp_path / "c.duckdb")
    with pytest.raises(LoadError, match="disk went away") as info:
        case.load(exports, progress=False, on_file=lambda fr: seen.append(Path(fr.path).name))
    assert info.value.path.endswith("3.json")
    assert seen == ["0.json", "1.json", "2.json"]  # reported once each, after their commit
    assert case.sql("SELECT path FROM files ORDER BY 1").rows() == [(str(exports / f"{i}.json"),) for i in range(3)]
    assert case.sql("SELECT count(*) FROM spans").rows() == [(18,)]
    monkeypatch.undo()
    report = case.load(exports, progress=False)  # the rest loads; the first three are skipped
    assert [f.status for f in report.files] == ["skipped_duplicate"] * 3 + ["loaded"] * 3
    assert case.sql("SELECT count(*) FROM spans").rows() == [(36,)]
