"""The array-element scanner behind streamed Jaeger/Zipkin documents: strings with brackets,
commas and escaped quotes, elements larger than a buffer, truncation, and a larger file."""
from __future__ import annotations

import gzip
import io
import json

import pytest

from forensics.loaders.core.json_stream import ElementBatch, Tail, Truncated, array_start, iter_elements

from ._jaeger_zipkin_util import load, rejects

TRICKY = [
    {"s": "a,b]c}d{e[f"},
    {"s": 'quote \\" inside, ] still string'},
    {"s": "backslash at end \\\\", "n": [1, [2, {"x": "]"}]]},
    ["nested", ["array", {"k": ","}]],
    "a string element, with a comma",
    12.5,
    {"unicode": "caf\u00e9 \u2603 \U0001f600"},
]


def _elements(data: bytes, read_bytes: int) -> tuple[list, list]:
    start = array_start(data[:65536], envelope=False) or array_start(data[:65536], envelope=True)
    assert start is not None
    got, tail = [], []
    for item in iter_elements(io.BytesIO(data), start, read_bytes):
        if isinstance(item, ElementBatch):
            got += list(zip(item.table.column("element").to_pylist(), item.table.column("raw").to_pylist()))
        elif isinstance(item, Truncated):
            tail.append(item)
        else:  # the Tail after the closing bracket
            assert isinstance(item, Tail) and not tail
    return got, tail


@pytest.mark.parametrize("read_bytes", [3, 64, 1 << 20])
def test_elements_with_tricky_strings(read_bytes):
    data = (" \n[" + ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in TRICKY) + "\n]\n").encode()
    got, tail = _elements(data, read_bytes)
    assert tail == []
    assert [i for i, _ in got] == list(range(len(TRICKY)))
    assert [json.loads(raw) for _, raw in got] == TRICKY


def test_envelope_data_array_then_its_tail():
    data = b'{"data": [{"traceID": "a"}, {"traceID": "b"}], "total": 0, "errors": [{"code": 1}]}'
    got, tail = _elements(data, 8)
    assert [json.loads(raw)["traceID"] for _, raw in got] == ["a", "b"] and tail == []
    *_, last = iter_elements(io.BytesIO(data), 10, 8)
    assert last == Tail(b', "total": 0, "errors": [{"code": 1}]}')


def test_empty_array_and_truncation():
    assert _elements(b"[ ]", 4) == ([], [])
    got, [cut] = _elements(b'[{"a": 1}, {"b": "unterminated ]', 5)
    assert [raw for _, raw in got] == ['{"a": 1}']
    assert isinstance(cut, Truncated) and (cut.element, cut.offset) == (1, 10)
    assert cut.raw == b' {"b": "unterminated ]'


def test_array_start_needs_an_array_or_envelope():
    assert array_start(b'\xef\xbb\xbf  [{"a": 1}]', envelope=False) == 6
    assert array_start(b'{\n  "data" : [ ]}', envelope=True) == 14
    assert array_start(b'{"traceID": "a", "spans": []}', envelope=False) is None
    assert array_start(b'{"total": 0, "data": []}', envelope=True) is None


def test_truncated_gzip_stream_keeps_what_was_read(tmp_path):
    spans = [{"traceId": f"{i + 1:032x}", "id": f"{i + 1:016x}", "name": f"s{i}", "timestamp": 1771408800000000 + i,
              "duration": 10, "localEndpoint": {"serviceName": "svc"}} for i in range(3000)]
    blob = gzip.compress(json.dumps(spans).encode())
    path = tmp_path / "spans.json.gz"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    case, report = load(path, batch_bytes=32 << 10)
    assert report.files[0].format == "zipkin_json"
    n = report.rows_loaded
    assert 0 < n < 3000 and report.rows_rejected == 1
    # the spans loaded are exactly the first n, in order
    assert case.sql("SELECT min(source_offset), max(source_offset), count(DISTINCT span_id) FROM spans").rows() == [
        (0, n - 1, n)]
    assert rejects(case)[0][3] == "truncated"


def test_many_spans_stream_in_batches(tmp_path):
    spans = [{"traceId": f"{i // 10 + 1:032x}", "id": f"{i + 1:016x}", "parentId": f"{i:016x}" if i % 10 else None,
              "kind": "CLIENT" if i % 2 else "SERVER", "name": "op", "timestamp": 1771408800000000 + i,
              "duration": i % 97 + 1, "localEndpoint": {"serviceName": f"svc{i % 7}"}, "tags": {"i": str(i)}}
             for i in range(5000)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(spans))
    case, report = load(path, batch_bytes=128 << 10)
    assert (report.rows_loaded, report.rows_rejected) == (5000, 0)
    assert case.sql("SELECT count(*) FILTER (WHERE attributes['i'] = CAST(source_offset AS VARCHAR)), "
                    "round(sum(duration_ms), 6) FROM spans").rows() == [(5000, sum(i % 97 + 1 for i in range(5000)) / 1000)]


def test_element_with_invalid_utf8_is_rejected_alone(tmp_path):
    good = [{"traceId": "1a", "id": f"{i + 1:x}", "name": "ok", "timestamp": 1771408800000000, "duration": 1,
             "localEndpoint": {"serviceName": "svc"}} for i in range(3)]
    parts = [json.dumps(g).encode() for g in good]
    parts.insert(1, b'{"traceId": "1a", "id": "ff", "name": "caf\xe9", "timestamp": 1771408800000000}')
    path = tmp_path / "latin1.json"
    path.write_bytes(b"[" + b",\n".join(parts) + b"]")
    case, report = load(path)
    assert (report.rows_loaded, report.rows_rejected) == (3, 1)
    [(_, line, offset, code, reason)] = rejects(case)
    at = len(parts[0]) + 2  # after "[" and the first element's ","
    assert (line, offset, code) == (None, at, "invalid_utf8")
    assert reason == f"array element 1 (at byte {at}) is not valid UTF-8 text"
    assert case.sql("SELECT list(source_offset ORDER BY source_offset) FROM spans").scalar() == [0, 1, 2]


@pytest.mark.parametrize("text", [b"", b"\n", b"a", b"ab\ncd", b"\n\n  \n{}\n", b"x" * 30 + b"\n" + b"y" * 17,
                                  b"  " * 20 + b"\n[1]\n\n[2]\n", b"\n" * 40, b"{" + b"z" * 50 + b"}\n"])
def test_lines_are_cut_like_readline_with_a_piece_size(text: bytes, monkeypatch) -> None:
    from forensics.loaders.traces.jaeger_zipkin import common as _jaeger_zipkin

    monkeypatch.setattr(_jaeger_zipkin, "_LINE_PIECE", 8)
    got = list(_jaeger_zipkin._pieces(io.BytesIO(text)))
    assert b"".join(got) == text
    assert all(p.endswith(b"\n") or len(p) >= 8 for p in got[:-1]) and all(p for p in got)
    assert all(b"\n" not in p[:-1] for p in got)  # a newline only ends a piece
    # the same answer as the readline-based probe it replaces
    expected = _first_lines_by_readline(io.BytesIO(text), 8)
    assert _jaeger_zipkin._first_lines(io.BytesIO(text)) == expected


def _first_lines_by_readline(fh, piece: int) -> tuple[bytes | None, bool]:
    import re

    blank = re.compile(rb"\s*")
    first, complete = [], False
    for part in iter(lambda: fh.readline(piece), b""):
        if not first and blank.fullmatch(part):
            continue
        first.append(part)
        if part.endswith(b"\n"):
            complete = True
            break
    if not complete:
        return None, False
    for line in iter(lambda: fh.readline(piece), b""):
        if not blank.fullmatch(line):
            return b"".join(first), True
    return None, False
