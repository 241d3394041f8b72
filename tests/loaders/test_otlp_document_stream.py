"""otlp_json document mode, streamed (issue #8): the rows and rejects of reading the file whole
(``whole_documents=True``, the reference), in memory that does not grow with the file.

Every canonical table is compared row for row (``source_offset`` and the rejects' offsets,
lines, reasons and raw text included), read in many small batches and with the defaults.
Where the file is broken inside a request, the streamed load keeps the resources before the
error (the whole-file path drops the request): the reject is the same, the rows a superset.
"""
from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import forensics

DATA = Path(__file__).resolve().parent.parent / "data" / "otlp"
MIXED = DATA / "mixed_signals.jsonl"
TABLES = ("spans", "logs", "metrics", "events", "rejects")
#: read 40 KB at a time (and emit as often): several batches, pieces and emits per request
SMALL = {"batch_bytes": 160_000}


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """~40 resourceSpans entries of a synth export, one span with a bad id and one resource
    whose ``scopeSpans`` is an object (a record reject and a request-level reject)."""
    import forensics.synth as synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate("clean", str(out), traces=30, seed=3, format="otlp")
    found = [r for line in (out / "traces.otlp.jsonl").read_text().splitlines()
             for r in json.loads(line)["resourceSpans"]]
    found = copy.deepcopy(found)
    found[5]["scopeSpans"][0]["spans"][0]["spanId"] = "zz"
    found[9]["scopeSpans"] = {"not": "a list"}
    return found


@pytest.fixture(scope="module")
def requests(resources: list[dict]) -> list[dict]:
    """A request with many resources, then the spans, logs and metrics requests of MIXED."""
    return [{"resourceSpans": resources}] + [json.loads(line) for line in MIXED.read_text().splitlines()]


def _tables(path: Path, **options) -> dict[str, list[dict]]:
    case = forensics.open_case()
    case.load(path, **options)
    return {t: case.sql(f"SELECT * FROM {t} ORDER BY ALL").to_arrow().to_pylist() for t in TABLES}


def _same_as_whole(path: Path, *, defaults: bool = False, **options) -> dict[str, list[dict]]:
    """Load ``path`` whole and streamed in small batches (and with the defaults): the same
    tables (returned)."""
    whole = _tables(path, whole_documents=True, **options)
    for batches in (SMALL, {}) if defaults else (SMALL,):
        streamed = _tables(path, **batches, **options)
        for table in TABLES:
            assert streamed[table] == whole[table], (table, batches)
    return whole


_FILE_LEVEL = ("invalid_json", "invalid_utf8", "truncated")


def _superset_of_whole(path: Path) -> tuple[dict, dict]:
    """Streamed in small batches: the whole-file load's one file-level reject, and its rows
    (and their rejects) plus more spans."""
    whole, streamed = _tables(path, whole_documents=True), _tables(path, **SMALL)
    [stop] = [r for r in whole["rejects"] if r["reason_code"] in _FILE_LEVEL]
    assert [r for r in streamed["rejects"] if r["reason_code"] in _FILE_LEVEL] == [stop]
    for table in TABLES:
        assert all(row in streamed[table] for row in whole[table]), table
    assert len(streamed["spans"]) > len(whole["spans"])
    return whole, streamed


def _pretty(docs: list) -> str:
    """``jq . file.jsonl``: the documents pretty-printed, one after the other."""
    return "".join(json.dumps(d, indent=2) + "\n" for d in docs)


def _record_offsets(tables: dict) -> list[int]:
    return sorted([r["source_offset"] for r in tables["spans"]] + [
        r["source_offset"] for r in tables["rejects"] if r["reason_code"] not in ("wrong_shape", "invalid_json")])


def test_pretty_document_with_many_resources(tmp_path, resources):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"resourceSpans": resources}, indent=2))
    got = _same_as_whole(path, defaults=True)
    spans = sum(len(s["spans"]) for r in resources if isinstance(r["scopeSpans"], list) for s in r["scopeSpans"])
    assert len(got["spans"]) == spans - 1 and _record_offsets(got) == list(range(spans))
    bad = sum(len(s["spans"]) for r in resources[:5] for s in r["scopeSpans"])  # the first span of resource 5
    assert {(r["reason_code"], r["source_offset"]) for r in got["rejects"]} == {("bad_id", bad), ("wrong_shape", 0)}


def test_concatenated_documents_of_every_signal(tmp_path, requests):
    path = tmp_path / "jq.json"
    path.write_text(_pretty(requests))
    got = _same_as_whole(path, defaults=True)
    assert {t: len(got[t]) for t in ("logs", "metrics")} == {"logs": 4, "metrics": 20}
    assert [r["source_offset"] for r in got["logs"] if r["source_offset"] >= 2] == [2, 3]  # across documents


def test_array_of_requests(tmp_path, requests):
    path = tmp_path / "slurped.json"
    path.write_text(json.dumps(requests, indent=2))
    got = _same_as_whole(path)
    assert len(got["spans"]) > 200 and len(got["metrics"]) == 20


@pytest.mark.parametrize("compress", [gzip.compress, lambda b: zstandard.ZstdCompressor().compress(b)],
                         ids=["gzip", "zstd"])
def test_compressed(tmp_path, requests, compress):
    path = tmp_path / "export.json.gz"
    path.write_bytes(compress(_pretty(requests).encode()))
    assert len(_same_as_whole(path)["spans"]) > 200


def test_documents_that_are_not_plain_requests(tmp_path, requests):
    """Other members, no resource array, a resource key that is not an array, not an object:
    the whole-file path's rejects (with the document's index and text) and rows."""
    odd = [{"foo": [1, {"b": 2}], "resourceLogs": requests[2]["resourceLogs"]}, 5, {},
           {"resourceSpans": {"a": 1}}, {"resourceSpans": []},
           {"resourceSpans": requests[1]["resourceSpans"], "resourceLogs": requests[2]["resourceLogs"]}]
    slurped = tmp_path / "odd.json"
    slurped.write_text(json.dumps(odd, indent=2))
    got = _same_as_whole(slurped)
    assert sorted(r["source_offset"] for r in got["rejects"]) == [1, 2, 3]
    concatenated = tmp_path / "odd-concatenated.json"
    concatenated.write_text(_pretty(d for d in odd if isinstance(d, dict)))
    assert _same_as_whole(concatenated, format="otlp_json")["logs"]


def test_byte_order_mark(tmp_path, requests):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + _pretty(requests[1:3]).encode())
    got = _same_as_whole(path)
    assert len(got["spans"]) == 3 and len(got["logs"]) == 2 and not got["rejects"]


def _between_requests(text: str) -> str:
    return text.replace("}\n{", "}\ngarbage{", 1)


def _in_first_resource_of_logs(text: str) -> str:
    at = text.index('"resourceLogs"')
    return text[:at] + text[at:].replace('"resource": {', '"resource": {{', 1)


def _unquoted_key(text: str) -> str:
    return text.replace('"resourceLogs"', "resourceLogs", 1)


def _no_colon(text: str) -> str:
    return text.replace('"resourceMetrics":', '"resourceMetrics"', 1)


@pytest.mark.parametrize("damage", [_between_requests, _in_first_resource_of_logs, _unquoted_key, _no_colon])
def test_syntax_error_between_requests(tmp_path, requests, damage):
    """The requests before the broken one are loaded, the error is one reject at the character,
    line and column Python's json reports for the whole file."""
    path = tmp_path / "broken.json"
    path.write_text(damage(_pretty(requests)))
    got = _same_as_whole(path)
    assert len(got["spans"]) > 200
    [reject] = [r for r in got["rejects"] if r["reason_code"] == "invalid_json"]
    assert reject["source_offset"] > 0 and reject["source_line"] > 1 and "(line " in reject["reason"]


def _after_resource(n: int, new: str):
    """Damage: the separator after resource ``n`` becomes ``new``."""
    sep = "},\n    {\n      \"resource\""

    def damage(text: str) -> str:
        at = -1
        for _ in range(n + 1):
            at = text.index(sep, at + 1)
        return text[:at] + sep.replace("},", new) + text[at + len(sep):]
    return damage


@pytest.mark.parametrize("damage", [
    _after_resource(6, "}"), _after_resource(6, "},,"), _after_resource(6, "}],"), _after_resource(6, "} 1,"),
    lambda t: t[: len(t) * 2 // 3],  # the file ends inside the request
    lambda t: t[: len(t) // 2] + '"unterminated',
], ids=["missing-comma", "blank-element", "extra-bracket", "junk", "truncated", "unterminated-string"])
def test_syntax_error_inside_a_request(tmp_path, resources, damage):
    """The whole-file path loads nothing of the request; streamed, its resources before the
    error are loaded; the reject is the same."""
    text = json.dumps({"resourceSpans": resources}, indent=2)
    path = tmp_path / "broken.json"
    path.write_text(damage(text))
    whole, _ = _superset_of_whole(path)
    assert not whole["spans"]


def test_truncated_compressed_stream(tmp_path, requests):
    """Read 16 MiB at a time, as the whole-file path reads: the reject has the same offset
    (decompressed bytes read before the broken read), and this small file loads nothing."""
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(_pretty(requests).encode())[:-2000])
    got = _same_as_whole(path)
    assert [r["reason_code"] for r in got["rejects"]] == ["truncated"] and not got["spans"]


def test_not_utf8(tmp_path, resources):
    text = json.dumps({"resourceSpans": resources}, indent=2).encode()
    at = text.index(b"catalog", len(text) // 2)
    path = tmp_path / "latin1.json"
    path.write_bytes(text[:at] + b"\xe9" + text[at:])
    _superset_of_whole(path)


_MEASURE = """
import json, sys
import forensics
def kb(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
case = forensics.open_case(sys.argv[2])
case.load(sys.argv[3])  # warm up: DuckDB, its json extension, the loader's macros
open("/proc/self/clear_refs", "w").write("5")  # VmHWM counts from here
before = kb("VmRSS:")
report = case.load(sys.argv[1])
print("MEASURED", json.dumps({"growth_mb": (kb("VmHWM:") - before) / 1024, "peak_mb": kb("VmHWM:") / 1024,
                              "spans": report.files[0].by_table.get("spans", 0)}))
"""


def _measure(path: Path, tmp_path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path), str(tmp_path / f"{path.stem}.duckdb"),
                           str(DATA / "trace_pretty.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.rsplit("MEASURED", 1)[1]), "mb": path.stat().st_size / 1e6}


def _document(path: Path, resources: list[dict], copies: int, indent: int) -> Path:
    with open(path, "w") as fh:
        fh.write('{\n  "resourceSpans": [\n')
        for i in range(copies):
            fh.write(",\n".join(json.dumps(r, indent=indent) for r in resources) + (",\n" if i < copies - 1 else "\n"))
        fh.write("  ]\n}\n")
    return path


def test_memory_does_not_grow_with_the_document(tmp_path, resources, capsys):
    """The same ~12,000 spans as a ~10 MB and a ~70 MB pretty-printed document: loading the
    larger one takes no more memory (the whole-file path held the text several times over:
    2.4 GB for 84 MB), and both stay far under 1 GB."""
    small = _measure(_document(tmp_path / "small.json", resources, 40, 0), tmp_path)
    big = _measure(_document(tmp_path / "big.json", resources, 40, 10), tmp_path)
    with capsys.disabled():
        for m in (small, big):
            print(f"\notlp document {m['mb']:.0f} MB, {m['spans']} spans: peak RSS {m['peak_mb']:.0f} MB, "
                  f"growth while loading {m['growth_mb']:.0f} MB")
    assert small["spans"] == big["spans"] > 10_000 and big["mb"] > 5 * small["mb"] and big["mb"] > 60
    assert big["growth_mb"] - small["growth_mb"] < (big["mb"] - small["mb"]) / 3, (small, big)
    assert big["peak_mb"] < 1000
