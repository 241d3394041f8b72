"""Jaeger and Zipkin Arrow fast paths: every test file, corpus case and quirk file loads the same
rows (all columns, MAP entry order included), rejects and record counts with the fast path on
and off (``jaeger_fast=False`` / ``zipkin_fast=False``), and the fast path really takes the
clean texts."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import forensics
from forensics.loaders.traces.jaeger import arrow as _jaeger_arrow
from forensics.loaders.traces.jaeger_zipkin import arrow as _jaeger_zipkin_arrow

from ..corpus.make_corpus import build_cases
from ._jaeger_zipkin_util import DATA

T0 = 1771408800_000000  # µs
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_CORPUS = {c.name: c for c in build_cases() if c.format in ("jaeger_json", "zipkin_json") and len(c.data) < 1 << 20}


def _snapshot(path: Path, **options: Any) -> dict[str, Any]:
    case = forensics.open_case()
    report = forensics.load(case, path, progress=False, **options)
    spans = case.sql("SELECT * EXCLUDE (source_file) REPLACE (epoch_us(start_time) AS start_time, "
                     "epoch_us(end_time) AS end_time) FROM spans ORDER BY source_line, source_offset, trace_id, span_id"
                     ).to_arrow().to_pylist()
    rejects = case.sql("SELECT * EXCLUDE (source_file) FROM rejects ORDER BY source_line, source_offset, reason"
                       ).to_arrow().to_pylist()
    return {"spans": spans, "rejects": rejects, "counts": (report.records_read, report.rows_loaded, report.rows_rejected),
            "formats": [f.format for f in report.files], "warnings": report.warnings}


def _fast_and_slow(path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[dict, dict, int]:
    taken: list[int] = []
    real = _jaeger_zipkin_arrow.FastBatch.insert

    def spy(self, ctx, source):
        n = real(self, ctx, source)
        taken.append(n)
        return n

    monkeypatch.setattr(_jaeger_zipkin_arrow.FastBatch, "insert", spy)
    fast = _snapshot(path, **options)
    monkeypatch.undo()
    slow = _snapshot(path, jaeger_fast=False, zipkin_fast=False, **options)
    return fast, slow, sum(taken)


def _assert_same(fast: dict, slow: dict) -> None:
    assert fast["counts"] == slow["counts"]
    assert fast["formats"] == slow["formats"] and fast["warnings"] == slow["warnings"]
    assert len(fast["spans"]) == len(slow["spans"])
    for a, b in zip(fast["spans"], slow["spans"]):
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert fast["rejects"] == slow["rejects"]


# -- quirk files ----------------------------------------------------------------------------------

def _kv(key: str, value: Any, kind: str = "string") -> dict:
    return {"key": key, "type": kind, "value": value}


def _jspan(i: int, **over: Any) -> dict:
    span = {"traceID": TRACE, "spanID": f"{i + 1:016x}", "operationName": f"op {i % 3}",
            "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": f"{i:016x}"}] if i else [],
            "startTime": T0 + i * 1000, "duration": 500 + i, "processID": "p1" if i % 2 else "p2", "warnings": None,
            "tags": [_kv("span.kind", ["server", "client", "PRODUCER", "weird"][i % 4]),
                     _kv("http.status_code", 200 + i, "int64"), _kv("http.method", "GET"),
                     _kv("load", [1.5, 0.25, 3.0][i % 3], "float64"), _kv("cache.hit", i % 2 == 0, "bool")],
            "logs": []}
    span.update(over)
    return span


def _processes() -> dict:
    return {"p1": {"serviceName": "catalog", "tags": [_kv("hostname", "cat-1"), _kv("ip", "10.0.0.1"),
                                                     _kv("service.version", "1.2.3")]},
            "p2": {"serviceName": "", "tags": [_kv("host.name", "h2"), _kv("service.name", "dup"), _kv("n", 7, "int64")]}}


def _jaeger_quirks() -> list[dict]:
    """Spans with each quirk the fast path converts (or declines)."""
    other = "ffffffffffffffff1111111111111111"
    return [
        _jspan(0),
        _jspan(1, logs=[{"timestamp": T0 + 1500, "fields": [_kv("event", "error"), _kv("message", "boom"), _kv("n", 3, "int64")]},
                        {"timestamp": "17714088000", "fields": [_kv("event", "retry"), _kv("event", "dup")]}],
               tags=[_kv("error", True, "bool"), _kv("span.kind", "client")]),
        _jspan(2, references=[{"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": f"{1:016x}"},
                              {"refType": "child_of", "traceID": TRACE[16:], "spanID": "2"},
                              {"refType": "CHILD_OF", "traceID": other, "spanID": "abc"}]),
        _jspan(3, references=[{"refType": "CHILD_OF", "traceID": other, "spanID": "1111111111111111"}], parentSpanID="3"),
        _jspan(4, references=None, parentSpanID="0", spanID="A5"),
        _jspan(5, process={"serviceName": "inline", "tags": [_kv("ip", "10.9.9.9")]}, processID=None),
        _jspan(6, tags=[_kv("otel.status_code", "OK"), _kv("k", "v"), _kv("k", "second"), {"key": None, "value": "x"},
                        _kv("otel.scope.name", "lib"), _kv("otel.library.version", "0.1"), _kv("db.system", "pg"),
                        _kv("server.port", "8080"), _kv("f", 1.50, "float64"), _kv("e", 1e3, "float64"),
                        _kv("z", -0, "int64"), _kv("big", 12345678901234567890123, "int64")]),
        _jspan(7, tags=[_kv("otel.status_code", "error"), _kv("otel.status_description", "bad")], duration=None),
        _jspan(8, duration="-0"),
        _jspan(9, startTime=str(T0 + 9000), duration=2.5),
        _jspan(10, warnings=["clock skew"]),
        _jspan(11, warnings=[]),
        _jspan(12, spanID="not-hex"),
        _jspan(13, processID="p9"),
        _jspan(14, startTime=0),
        _jspan(15, traceID=None),
        _jspan(16, tags=None, logs=None, references=[]),
    ]


def _zspan(i: int, **over: Any) -> dict:
    span = {"traceId": TRACE, "id": f"{i + 1:016x}", "name": f"op {i % 3}", "timestamp": T0 + i * 1000, "duration": 100 + i,
            "kind": ["SERVER", "CLIENT", None, "PRODUCER"][i % 4],
            "localEndpoint": {"serviceName": ["svc", " svc ", "", "other"][i % 4], "ipv4": "10.0.0.1", "port": 8080},
            "tags": {"http.method": "GET", "http.status_code": str(200 + i), "peer.service": "db" if i % 2 else None}}
    if i:
        span["parentId"] = f"{i:016x}"
    span.update(over)
    return {k: v for k, v in span.items() if v is not None}


def _zipkin_quirks() -> list[dict]:
    return [
        _zspan(0),
        _zspan(1, remoteEndpoint={"serviceName": "inventory", "ipv4": "10.0.0.2", "port": 9000}, shared=True, debug="TRUE"),
        _zspan(2, id=f"{2:016x}", kind="SERVER", shared=True, tags={"error": "", "n": 5, "f": 1.50, "b": True}),
        _zspan(3, traceId=TRACE[16:], annotations=[{"timestamp": T0 + 3100, "value": "cache miss"},
                                                    {"timestamp": T0 + 3200, "value": '"exception": {"exception.type": "E"}'}]),
        _zspan(4, tags={"otel.status_code": "ERROR", "otel.status_description": "x", "error": "boom"}),
        _zspan(5, tags={"ot.status_code": "ok", "host.name": "h5", "service.version": "2"}, kind="consumer"),
        _zspan(6, id="ABC", parentId="0000000000000000", timestamp=str(T0 + 6000), duration="7"),
        _zspan(7, tags={"zipkin.debug": "x"}),
        _zspan(9, duration=2.5),
        _zspan(10, kind="SIDEWAYS"),
        _zspan(11, timestamp=None),
        _zspan(12, tags={"nested": {"x": 1}}, localEndpoint={"serviceName": "svc", "ipv6": "::1"}),
        _zspan(13, tags={"q": 'say "hi"', "é": "ü\n", "empty": ""}),
        _zspan(14, tags={}),
        _zspan(15, tags=["a", "b"]),
    ]


def _write_variants(tmp: Path, name: str, docs: list, envelope: bool) -> list[Path]:
    """The quirk spans as a streamed array/envelope, a whole document, one text per line and gzip."""
    out = []
    doc = {"data": docs} if envelope else docs
    for suffix, text in (("stream.json", json.dumps(doc)), ("pretty.json", json.dumps(doc, indent=2)),
                         ("lines.ndjson", "\n".join(json.dumps(d) for d in docs) + "\n")):
        path = tmp / f"{name}-{suffix}"
        path.write_text(text)
        out.append(path)
    gz = tmp / f"{name}-stream.json.gz"
    gz.write_bytes(gzip.compress(out[0].read_bytes()))
    return out + [gz]


def _jaeger_docs() -> list:
    spans = _jaeger_quirks()
    clean = {"traceID": TRACE, "spans": [_jspan(i) for i in range(6)], "processes": _processes(), "warnings": None}
    return [clean, {"traceID": TRACE[1:], "spans": spans, "processes": _processes()},
            {"traceID": TRACE, "spans": [_jspan(1)], "processes": {"p1": _processes()["p1"], "p1 ": _processes()["p2"]}},
            _jspan(20, process={"serviceName": "bare", "tags": []}), {"traceID": "x", "spans": None}, [1, 2]]


def _zipkin_docs() -> list:
    return [_zspan(i) for i in range(4)] + [_zipkin_quirks(), [], [[_zspan(30)]], {"foo": 1}] + _zipkin_quirks()


# -- tests ----------------------------------------------------------------------------------------

_FILES = sorted(p for d in ("jaeger", "zipkin") for p in (DATA / d).iterdir())


@pytest.mark.parametrize("path", _FILES, ids=[p.name for p in _FILES])
def test_test_files_load_the_same_with_and_without_the_fast_path(path: Path, monkeypatch) -> None:
    fast, slow, _ = _fast_and_slow(path, monkeypatch)
    _assert_same(fast, slow)


@pytest.mark.parametrize("name", sorted(_CORPUS))
def test_corpus_cases_load_the_same(name: str, tmp_path: Path, monkeypatch) -> None:
    case = _CORPUS[name]
    path = tmp_path / case.filename
    path.write_bytes(case.data)
    fast, slow, _ = _fast_and_slow(path, monkeypatch, format=case.format)
    _assert_same(fast, slow)


@pytest.mark.parametrize("fmt", ["jaeger", "zipkin"])
def test_quirk_files_load_the_same_and_the_clean_texts_take_the_fast_path(fmt: str, tmp_path: Path, monkeypatch) -> None:
    docs = _jaeger_docs() if fmt == "jaeger" else _zipkin_docs()
    for path in _write_variants(tmp_path, fmt, docs, envelope=fmt == "jaeger"):
        for options in ({}, {"batch_bytes": 2000}, {"whole_documents": True}):
            fast, slow, taken = _fast_and_slow(path, monkeypatch, format=f"{fmt}_json", **options)
            _assert_same(fast, slow)
            assert fast["counts"][2] > 0  # quirks that are rejected
            if options.get("whole_documents") and not path.name.endswith("ndjson"):
                assert taken == 0  # one text holding rejected spans: all of it goes to the general path
            else:
                assert 0 < taken < fast["counts"][1], (path.name, options)  # some texts fast, some general


@pytest.mark.parametrize("fmt", ["jaeger", "zipkin"])
def test_clean_exports_are_taken_whole_by_the_fast_path(fmt: str, tmp_path: Path, monkeypatch) -> None:
    if fmt == "jaeger":
        doc: Any = {"data": [{"traceID": f"{t:032x}", "spans": [_jspan(i, traceID=f"{t:032x}") for i in range(6)],
                              "processes": _processes()} for t in range(1, 30)]}
    else:
        doc = [_zspan(i, traceId=f"{t:032x}") for t in range(1, 30) for i in (0, 1, 3, 5)]
    path = tmp_path / f"{fmt}.json"
    path.write_text(json.dumps(doc))
    fast, slow, taken = _fast_and_slow(path, monkeypatch)
    _assert_same(fast, slow)
    assert taken == fast["counts"][1] > 100 and fast["counts"][2] == 0


def test_duplicate_keys_in_raw_json_are_read_as_the_general_path_reads_them(tmp_path: Path, monkeypatch) -> None:
    """json.dumps cannot write duplicate keys: raw texts with them (tags, a span field, processes)."""
    span = json.dumps(_zspan(1))
    zipkin = tmp_path / "dup.json"
    zipkin.write_text("[" + span[:-1] + ', "tags": {"a": "1", "a": "2"}}, ' + span[:-1] + ', "name": "second"}]')
    jaeger = tmp_path / "dup-jaeger.json"
    trace = json.dumps({"traceID": TRACE, "spans": [_jspan(0), _jspan(1)], "processes": _processes()})
    jaeger.write_text('{"data": [' + trace[:-1] + ', "processes": {"p1": {"serviceName": "a"}, "p1": {"serviceName": "b"}}}, '
                      + trace + "]}")
    for path in (zipkin, jaeger):
        fast, slow, _ = _fast_and_slow(path, monkeypatch)
        _assert_same(fast, slow)


def _big_trace(n: int, bad_at: int | None = None) -> dict:
    spans = [_jspan(i) for i in range(n)]
    if bad_at is not None:
        spans[bad_at]["startTime"] = 0  # rejected: the whole trace goes to the general path
    return {"traceID": TRACE, "spans": spans, "processes": _processes()}


@pytest.mark.parametrize("bad_at", [None, 100])
def test_a_huge_trace_is_converted_a_run_of_spans_at_a_time(bad_at: int | None, tmp_path: Path, monkeypatch) -> None:
    """Over GROUP_BYTES, a trace is cut around runs of its spans: same rows, offsets continuing
    across the runs; one bad span leaves the whole trace to the general path."""
    monkeypatch.setattr(_jaeger_zipkin_arrow, "GROUP_BYTES", 64 << 10)
    monkeypatch.setattr(_jaeger_zipkin_arrow, "RUN_BYTES", 48 << 10)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"data": [_big_trace(120, bad_at), _big_trace(3)]}))
    assert path.stat().st_size > _jaeger_zipkin_arrow.GROUP_BYTES
    runs = []
    real = _jaeger_arrow.split_array
    monkeypatch.setattr(_jaeger_arrow, "split_array", lambda *a: runs.append(real(*a)) or runs[-1])
    fast, slow, taken = _fast_and_slow(path, monkeypatch)
    _assert_same(fast, slow)
    assert len(runs) == 1 and len(runs[0]) == 2  # cut in two runs of spans
    assert taken == (123 if bad_at is None else 3)
    assert [s["source_offset"] for s in fast["spans"]] == [i for i in range(123) if i != bad_at]


def test_a_huge_zipkin_array_is_converted_in_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_jaeger_zipkin_arrow, "GROUP_BYTES", 16 << 10)
    monkeypatch.setattr(_jaeger_zipkin_arrow, "RUN_BYTES", 4 << 10)
    path = tmp_path / "traces.json"
    trace = [_zspan(i, id=f"{i + 1:016x}", kind="SERVER") for i in range(200)]
    path.write_text(json.dumps([trace, [_zspan(1)]]))
    assert path.stat().st_size > _jaeger_zipkin_arrow.GROUP_BYTES
    fast, slow, taken = _fast_and_slow(path, monkeypatch)
    _assert_same(fast, slow)
    assert taken == 201 == fast["counts"][1]


def test_a_long_first_line_still_makes_a_newline_delimited_file(tmp_path: Path, monkeypatch) -> None:
    """The first line (over 8 MiB) is read in pieces to find the second line, then parsed."""
    path = tmp_path / "long.ndjson"
    long_tag = [_jspan(i, tags=[_kv("blob", "x" * (3 << 20))]) for i in range(3)]
    first = json.dumps({"traceID": TRACE, "spans": long_tag, "processes": _processes()})
    assert len(first) > 8 << 20
    path.write_text("\n" + first + "\n\n" + json.dumps(_big_trace(2)) + "\n")
    fast, slow, taken = _fast_and_slow(path, monkeypatch)
    _assert_same(fast, slow)
    assert taken == 5 and {s["source_line"] for s in fast["spans"]} == {2, 4}
