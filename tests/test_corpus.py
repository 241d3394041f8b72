"""Every case of the malformed-input corpus (tests/corpus/make_corpus.py) against its loader.

For each case:

* lenient mode never raises (any exception, including forensics' "internal error" wrapper, is a
  crash); every reject carries a reason and a line or an offset;
* loaded + rejected = read, counted from the rows actually in the case (canonical tables and
  ``rejects`` for that file) against ``files.records_read``; a file with content never reads 0
  records; for one-record-per-line inputs every non-blank line is either loaded or rejected;
* strict mode either loads the same rows with no rejects, or raises one ForensicsError whose
  message names the file and a line or an offset, and leaves the case empty;
* sniffing never raises anything but UnknownFormatError.

The corpus is generated into a temporary directory per test session (the repository only holds
the generator). ``tests/conftest.py`` prints ``corpus: N cases, crashes = C, records lost = L``
from the outcomes these tests attach to their reports.
"""
from __future__ import annotations

import gzip
import json
import re
import traceback
from pathlib import Path

import pytest

import forensics
from forensics.errors import ForensicsError, LoadError, UnknownFormatError
from forensics.loaders.core.sniff import sniff

from .corpus.make_corpus import KNOWN_BUGS, CorpusCase, build_cases, write_corpus

CANONICAL = ("spans", "logs", "metrics", "events")
WHERE = re.compile(r"\b(line|offset) \d+")
_ALL = build_cases()
_CASES = {c.name: CorpusCase(c.name, c.format, c.filename, b"", c.line_records, c.options, c.sniffed, c.expect_reject)
          for c in _ALL}
#: cases over 1 MB (10 MB values): marked slow
_BIG = {c.name for c in _ALL if len(c.data) > 1 << 20}
del _ALL


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out)
    return out


def _content_lines(path: Path) -> list[int]:
    """1-based numbers of the non-blank ``\\n``-separated lines of an uncompressed file."""
    data = path.read_bytes()
    return [i for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]


def _has_content(path: Path) -> bool:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError):
            return True
    return bool(data.strip())


def _accounting(case: forensics.Case, path: str) -> tuple[int, int, int, set[int], int]:
    """(records_read - rows_merged, rows in canonical tables, rows in rejects, lines covered, rejects
    without reason): records merged into another row (a Zipkin partial flush) are read but hold no row."""
    read = case.sql("SELECT records_read - coalesce(rows_merged, 0) FROM files WHERE path = ?", [path]).to_arrow().column(0).to_pylist()
    loaded, lines = 0, set()
    for table in CANONICAL:
        res = case.sql(f'SELECT source_line FROM "{table}" WHERE source_file = ?', [path]).to_arrow()
        loaded += res.num_rows
        lines.update(x for x in res.column(0).to_pylist() if x is not None)
    rej = case.sql("SELECT source_line, source_offset, reason FROM rejects WHERE source_file = ?", [path]).to_arrow()
    lines.update(x for x in rej.column(0).to_pylist() if x is not None)
    unexplained = sum(1 for ln, off, reason in zip(*(rej.column(i).to_pylist() for i in range(3)))
                      if not reason or (ln is None and off is None))
    return (read[0] if read else -1), loaded, rej.num_rows, lines, unexplained


def _file_level_reject(case: forensics.Case, path: str) -> bool:
    """A reject that stops reading (truncated stream, decompression limit): later lines are not read.
    An over-long line is not one: it is skipped and counted, and the lines after it are read."""
    codes = case.sql("SELECT DISTINCT reason_code FROM rejects WHERE source_file = ?", [path]).to_arrow().column(0).to_pylist()
    return bool({"truncated", "decompression_limit"} & set(codes))


def _load_args(meta: CorpusCase) -> dict:
    """How a case is loaded: its format forced unless sniffing is what it tests, with its options."""
    return {"format": None if meta.sniffed else meta.format, "force": True, "templates": False, **dict(meta.options)}


def _params() -> list:
    out = []
    for n in sorted(_CASES):
        marks = [pytest.mark.slow] if n in _BIG else []
        if n in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[n], strict=True))
        out.append(pytest.param(n, marks=marks))
    return out


@pytest.fixture(scope="module")
def lenient_case() -> forensics.Case:
    """One case per worker for every lenient load (``force=True``: several cases share bytes)."""
    return forensics.open_case()


@pytest.fixture(scope="module")
def strict_case() -> forensics.Case:
    """One case per worker for strict loads; a failed strict load must leave it unchanged."""
    return forensics.open_case()


def _load_lenient(case: forensics.Case, path: str, meta: CorpusCase, outcome: dict) -> str | None:
    """Load in lenient mode; return the message of a clear whole-file refusal, or None."""
    before = case.tables()
    try:
        case.load(path, **_load_args(meta))
    except LoadError as exc:
        # a loader may refuse a whole file whose format was forced but whose framing is not that
        # format (a CSV header without a time column): clear, atomic, and nothing read
        if "internal error" in exc.message:
            outcome["crash"] = 1
            pytest.fail(f"lenient load of {meta.name} hit an internal error: {exc}")
        assert path in str(exc), str(exc)
        outcome["refused"] = 1
        assert case.tables() == before, f"{meta.name}: refused file left rows behind"
        return str(exc)
    except Exception:  # noqa: BLE001 - any other exception is the crash being tested for
        outcome["crash"] = 1
        pytest.fail(f"lenient load raised on {meta.name}:\n{traceback.format_exc()}")
    return None


def _check_strict(case: forensics.Case, path: str, meta: CorpusCase, rejected: int, outcome: dict) -> None:
    before = case.tables()
    try:
        case.load(path, strict=True, **_load_args(meta))
    except ForensicsError as exc:
        msg = str(exc)
        if "internal error" in msg:
            outcome["crash"] = 1
            pytest.fail(f"strict load of {meta.name} hit an internal error: {msg}")
        assert path in msg, f"{meta.name}: strict error does not name the file: {msg}"
        assert WHERE.search(msg), f"{meta.name}: strict error names no line or offset: {msg}"
        assert case.tables() == before, f"{meta.name}: failed strict load changed the case"
        assert rejected > 0, f"{meta.name}: strict mode raised ({msg}) but lenient mode rejected nothing"
    except Exception:  # noqa: BLE001
        outcome["crash"] = 1
        pytest.fail(f"strict load raised a non-forensics error on {meta.name}:\n{traceback.format_exc()}")
    else:
        assert rejected == 0, f"{meta.name}: lenient mode rejected {rejected} records but strict mode raised nothing"


@pytest.mark.parametrize("name", _params())
def test_corpus_case(name: str, corpus_dir: Path, lenient_case: forensics.Case, strict_case: forensics.Case,
                     request: pytest.FixtureRequest) -> None:
    meta = _CASES[name]
    path = str((corpus_dir / meta.filename).resolve())
    outcome = {"name": name, "crash": 0, "lost": 0}
    request.node.user_properties.append(("corpus", outcome))

    try:  # sniffing: a format name or UnknownFormatError, nothing else
        sniff(path)
    except UnknownFormatError:
        pass
    except Exception:  # noqa: BLE001
        outcome["crash"] = 1
        pytest.fail(f"sniff crashed on {name}:\n{traceback.format_exc()}")

    refused = _load_lenient(lenient_case, path, meta, outcome)
    if refused is not None:
        with pytest.raises(LoadError):
            strict_case.load(path, strict=True, **_load_args(meta))
        return
    if meta.sniffed:  # the format sniffing found (recorded in files; NULL: no format fits)
        found = lenient_case.sql("SELECT format FROM files WHERE path = ?", [path]).rows()
        assert found == [(meta.format,)], f"{name}: sniffed as {found}, expected {meta.format}"
    read, loaded, rejected, lines, unexplained = _accounting(lenient_case, path)
    if meta.expect_reject:
        codes = lenient_case.sql("SELECT DISTINCT reason_code FROM rejects WHERE source_file = ?", [path]).rows()
        assert (meta.expect_reject,) in codes, f"{name}: expected a {meta.expect_reject} reject, got {codes}"
    stops_early = _file_level_reject(lenient_case, path)
    lenient_case.execute("DELETE FROM files WHERE path = ?", [path])  # the next load of this path starts at 0
    for table in (*CANONICAL, "rejects"):
        lenient_case.execute(f'DELETE FROM "{table}" WHERE source_file = ?', [path])
    lost = abs(read - (loaded + rejected))
    if _has_content(Path(path)) and read == 0 and not meta.may_hold_no_record:
        lost += 1
    missing: list[int] = []
    if meta.line_records and not stops_early:
        missing = [ln for ln in _content_lines(Path(path)) if ln not in lines]
        lost += len(missing)
    outcome["lost"] = lost
    assert read == loaded + rejected, f"{name}: files.records_read={read} but {loaded} loaded + {rejected} rejected"
    assert not missing, f"{name}: lines {missing[:10]} neither loaded nor rejected"
    assert lost == 0, f"{name}: file has content but no record was read or rejected"
    assert unexplained == 0, f"{name}: {unexplained} rejects without a reason or a line/offset"
    if rejected or name.endswith("/valid"):
        _check_strict(strict_case, path, meta, rejected, outcome)


def test_corpus_is_large_and_covers_every_format() -> None:
    formats = {c.format for c in _CASES.values()} - {None}
    assert len(_CASES) >= 200
    assert formats >= set(forensics.formats()), set(forensics.formats()) - formats


def test_corpus_manifest_round_trips(tmp_path: Path) -> None:
    cases = write_corpus(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [m["name"] for m in manifest] == [c.name for c in cases]
    assert all((tmp_path / m["file"]).is_file() for m in manifest)


# -- loader bugs the corpus found, fixed in the loaders (one regression test each) ----------------

def _one(tmp_path: Path, name: str, data: bytes, fmt: str) -> tuple[forensics.Case, str]:
    path = tmp_path / name
    path.write_bytes(data)
    case = forensics.open_case()
    case.load(path, format=fmt, templates=False)
    return case, str(path)


def test_fix_deploy_jsonl_with_a_bad_utf8_line_is_not_read_as_csv(tmp_path: Path) -> None:
    good = b'{"time":"2026-02-18T10:00:00Z","service":"a","version":"1"}\n'
    case, _ = _one(tmp_path, "d.jsonl", good + b'{"time":"\xff"}\n' + good.replace(b'"1"', b'"2"'), "deploy_log")
    assert case.tables()["events"] == 2
    assert case.sql("SELECT source_line, reason_code FROM rejects").rows() == [(2, "invalid_utf8")]


def test_fix_prom_api_non_array_values_are_rejected(tmp_path: Path) -> None:
    doc = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up"}, "values": {"a": 1}}, {"metric": {"__name__": "up"}, "values": [[1771409400, "1"]]}]}}
    case, _ = _one(tmp_path, "q.json", json.dumps(doc).encode(), "prom_api_json")
    assert case.tables()["metrics"] == 1 and case.tables()["rejects"] == 1
    case2, _ = _one(tmp_path, "r.json", json.dumps({**doc, "data": {"resultType": "matrix", "result": {"metric": {}}}}).encode(),
                    "prom_api_json")
    assert case2.tables()["rejects"] == 1


def test_fix_k8s_pods_container_statuses_object(tmp_path: Path) -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "status": {"containerStatuses": {"a": 1}}}
    case, _ = _one(tmp_path, "pods.json", json.dumps({"kind": "List", "items": [pod]}).encode(), "k8s_pods")
    rejects = case.rejects().dicts()
    assert [(r["reason_code"], r["source_offset"]) for r in rejects] == [("wrong_shape", 0)]
    assert "status.containerStatuses is a JSON object, expected an array" in rejects[0]["reason"]


def test_fix_plain_logs_empty_file_loads_nothing(tmp_path: Path) -> None:
    case, path = _one(tmp_path, "empty.log", b"\n\n", "plain_logs")
    assert case.sql("SELECT records_read FROM files WHERE path = ?", [path]).rows() == [(0,)]
