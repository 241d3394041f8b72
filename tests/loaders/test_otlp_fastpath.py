"""otlp_json Arrow fast path: same span rows and rejects as the general DuckDB path, exact lines."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import forensics
from forensics.loaders.traces.otlp import arrow as _otlp_arrow
from forensics.loaders.core.io import Block

DATA = Path(__file__).resolve().parent.parent / "data" / "otlp"
T0 = 1771408800_000000000


def kv(key: str, **value) -> dict:
    return {"key": key, "value": value}


def span(i: int, **over) -> dict:
    """A span as the collector file exporter writes it (hex ids, times and intValue as strings)."""
    out = {"traceId": f"{i + 1:032x}", "spanId": f"{i + 1:016x}", "parentSpanId": "" if i % 3 == 0 else f"{i:016x}",
           "flags": 257, "name": f"GET /item/{i % 4}", "kind": 2 + i % 2,
           "startTimeUnixNano": str(T0 + i * 1_000_000), "endTimeUnixNano": str(T0 + i * 1_000_000 + 123_456_789),
           "attributes": [kv("http.request.method", stringValue="GET"), kv("http.response.status_code", intValue=str(200 + i % 3)),
                          kv("server.port", intValue="8080"), kv("sampling.ratio", doubleValue=0.25 * i),
                          kv("cache.hit", boolValue=i % 2 == 0), kv("blob", bytesValue="AQID"), kv("empty")],
           "droppedAttributesCount": 0, "status": {"code": i % 3} if i % 3 else {}}
    if i % 5 == 0:
        out["events"] = [{"timeUnixNano": str(T0 + i * 1_000_000 + 5), "name": "exception",
                          "attributes": [kv("exception.type", stringValue="Timeout"), kv("retry", intValue="2")]}]
    if i % 7 == 0:
        out["links"] = [{"traceId": f"{i + 99:032x}", "spanId": f"{i + 99:016x}", "traceState": "",
                         "attributes": [kv("link.kind", stringValue="follows")]}]
    out.update(over)
    return out


def request(service: str, spans: list[dict], *, version: str | None = "1.0") -> dict:
    res = [kv("service.name", stringValue=service), kv("host.name", stringValue=f"{service}-1"), kv("process.pid", intValue="42")]
    if version:
        res.append(kv("service.version", stringValue=version))
    return {"resourceSpans": [
        {"resource": {"attributes": res},
         "scopeSpans": [{"scope": {"name": "io.opentelemetry.http", "version": "2.11.0"}, "spans": spans[: len(spans) // 2]},
                        {"scope": {"name": "manual"}, "spans": spans[len(spans) // 2:]}]},
        {"resource": {}, "scopeSpans": [{"spans": [span(900 + len(spans))]}]},
    ]}


def canonical_lines() -> list[str]:
    lines = [json.dumps(request(f"svc-{n % 3}", [span(n * 10 + k) for k in range(6)]), separators=(",", ":"))
             for n in range(12)]
    # span-level rejects inside canonical lines: bad id, no start time, unknown kind
    lines.append(json.dumps(request("bad", [span(500, traceId="xyz"), span(501, startTimeUnixNano="0"), span(502, kind=9),
                                            span(503, spanId="")])))
    return lines


QUIRKY = [
    '{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[{"traceId":"ABCDEF0123456789ABCDEF0123456789",'
    '"spanId":"0102030405060708","name":"upper","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":1771408800000000000,'
    '"endTimeUnixNano":"1771408800100000000","status":{"code":"STATUS_CODE_ERROR"}}]}]}]}',
    "not json at all",
    '{"resourceLogs":[]}',
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":{"arrayValue":{"values":[{"stringValue":"x"}]}}}]},'
    '"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000abc","spanId":"0000000000000abc","name":"arr",'
    '"kind":1,"startTimeUnixNano":"1771408800000000000","endTimeUnixNano":"1771408800000000001","status":{}}]}]}]}',
    '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000abd","spanId":"0000000000000abd",'
    '"name":"dup","kind":1,"startTimeUnixNano":"1771408800000000000","endTimeUnixNano":"1771408800000000001",'
    '"attributes":[{"key":"k","value":{"stringValue":"first"}},{"key":"k","value":{"stringValue":"second"}}]}]}]}]}',
    '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000abe","spanId":"0000000000000abe",'
    '"name":"int","kind":1,"startTimeUnixNano":"1771408800000000000","endTimeUnixNano":"1771408800000000001",'
    '"attributes":[{"key":"n","value":{"intValue":"007"}}]}]}]}]}',
    '{"resourceSpans": null}',
]


def _snapshot(case) -> tuple[list, list]:
    spans = case.sql("SELECT * EXCLUDE (source_file) FROM spans ORDER BY source_line, source_offset, span_id, trace_id, name"
                     ).to_arrow().to_pylist()
    rejects = case.sql("SELECT * EXCLUDE (source_file) FROM rejects ORDER BY source_line, source_offset, reason").to_arrow().to_pylist()
    for r in rejects:  # _raw renders a doubleValue from the parsed number (125.0 -> "125"): documented
        r["raw"] = re.sub(r'"doubleValue":"[^"]*"', '"doubleValue":_', r["raw"] or "")
    for r in spans:  # MAP order is the attribute order in both paths; compare as dicts to be explicit
        r["attributes"] = dict(r["attributes"])
        r["resource_attributes"] = dict(r["resource_attributes"])
    return spans, rejects


def assert_same_rejects(fast: list[dict], slow: list[dict]) -> None:
    """Equal rejects; ``raw`` compared up to the shorter text (the double rendering shifts the
    1000-character cut)."""
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        n = min(len(a["raw"]), len(b["raw"]))
        assert a["raw"][:n] == b["raw"][:n] and (n > 900 or len(a["raw"]) == len(b["raw"]))
        assert {**a, "raw": None} == {**b, "raw": None}


def _load_both(path: Path, **kw) -> tuple[tuple, tuple, int]:
    calls = []
    real = _otlp_arrow.spans_table

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out[0].num_rows)
        return out

    _otlp_arrow.spans_table = spy
    try:
        fast = forensics.open_case()
        fast.load(path, **kw)
    finally:
        _otlp_arrow.spans_table = real
    slow = forensics.open_case()
    slow.load(path, otlp_fast=False, **kw)
    return _snapshot(fast), _snapshot(slow), sum(calls)


@pytest.fixture()
def canonical(tmp_path) -> Path:
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(canonical_lines()) + "\n\n")
    return path


def test_canonical_file_takes_fast_path_with_identical_rows(canonical):
    (spans, rejects), (slow_spans, slow_rejects), fast_rows = _load_both(canonical)
    assert fast_rows == 12 * 7  # every span of the good lines went through Arrow; the bad line did not
    assert len(spans) == 12 * 7 + 1 and len(rejects) == 4
    assert spans == slow_spans
    assert_same_rejects(rejects, slow_rejects)
    assert {r["reason_code"] for r in rejects} == {"bad_id", "bad_time", "bad_value", "missing_field"}
    first = next(s for s in spans if s["span_id"] == f"{1:016x}")
    assert first["source_line"] == 1 and first["kind"] == "server" and first["parent_span_id"] is None
    assert first["attributes"] == {"http.request.method": "GET", "http.response.status_code": "200", "server.port": "8080",
                                   "sampling.ratio": "0.0", "cache.hit": "true", "blob": "AQID", "empty": None}
    assert first["http_status_code"] == 200 and first["server_port"] == 8080
    assert first["resource_attributes"]["process.pid"] == "42"


def test_quirky_lines_fall_back_per_block_with_exact_lines(canonical, tmp_path):
    lines = canonical_lines()
    mixed = lines[:3] + QUIRKY[:3] + lines[3:6] + QUIRKY[3:] + lines[6:]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(mixed) + "\n")
    # small blocks: the quirky lines' blocks fall back, the others stay on the fast path
    (spans, rejects), (slow_spans, slow_rejects), fast_rows = _load_both(path, batch_bytes=4096)
    assert 6 * 7 <= fast_rows <= 12 * 7 + 5
    assert spans == slow_spans
    assert_same_rejects(rejects, slow_rejects)
    assert {r["source_line"] for r in rejects if r["reason_code"] in ("invalid_json", "wrong_shape")} == {5, 13}
    dup = next(s for s in spans if s["name"] == "dup")
    assert dup["attributes"] == {"k": "first"} and dup["source_line"] == 11


@pytest.mark.parametrize("name", ["traces_collector.jsonl", "mixed_signals.jsonl", "bad_lines.jsonl"])
def test_repository_fixtures_identical(name):
    (spans, rejects), (slow_spans, slow_rejects), _ = _load_both(DATA / name)
    assert spans == slow_spans
    assert_same_rejects(rejects, slow_rejects)


def test_declines_strictly_typed_mismatches():
    line = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}\n'
    with pytest.raises(_otlp_arrow._Decline, match="kind"):
        _otlp_arrow.parse(Block(1, line), len(line))


def test_span_checks_send_spans_that_need_normalizing_or_rejecting_to_the_general_path():
    def spans(**over):
        line = (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span(1), span(2, **over)]}]}]}) + "\n").encode()
        parsed = _otlp_arrow.parse(Block(1, line), len(line))
        return parsed.flatten().field("scopeSpans").flatten().field("spans").flatten()

    assert not _otlp_arrow._span_checks(spans()).any()
    for over in ({"traceId": "0" * 32}, {"spanId": "ABCDEF0123456789"}, {"parentSpanId": "xyz"}, {"kind": 7},
                 {"startTimeUnixNano": "0"}, {"status": {"code": 3}}, {"spanId": None}, {"endTimeUnixNano": "1e18"},
                 {"traceId": "abc"}, {"startTimeUnixNano": "9999999999999999999"}):
        assert _otlp_arrow._span_checks(spans(**over)).tolist() == [False, True], over


def test_insert_spans_refuses_a_row_the_rules_reject():
    import pyarrow as pa

    from forensics.loaders.core.arrow_spans import insert_spans
    from forensics.loaders.core.context import LoadContext

    case = forensics.open_case()
    ctx = LoadContext("f.jsonl", "otlp_json", case.con)
    ts = pa.array([1_700_000_000_000_000], pa.timestamp("us", tz="UTC"))
    good = pa.table({"trace_id": ["a" * 32], "span_id": ["b" * 16], "start_time": ts, "kind": ["server"], "status": ["ok"]})
    assert insert_spans(ctx, good) == 1
    with pytest.raises(AssertionError, match="reject"):
        insert_spans(ctx, good.set_column(1, "span_id", pa.array(["B" * 16])))
    assert case.sql("SELECT count(*) FROM spans").scalar() == 1


def test_insert_clean_refuses_a_rejected_row():
    import duckdb

    from forensics.loaders.core.context import LoadContext

    case = forensics.open_case()
    ctx = LoadContext("f.jsonl", "otlp_json", case.con)
    ok = "SELECT '{t}' AS trace_id, 'x' AS span_id, NULL::VARCHAR AS _reject_code, NULL::VARCHAR AS _reject_reason"
    assert ctx.insert_clean("spans", ok.format(t="a" * 32)) == 1
    with pytest.raises(duckdb.Error, match="a row was rejected: bad id"):
        ctx.insert_clean("spans", "SELECT 'b' AS trace_id, 'bad_id' AS _reject_code, 'bad id' AS _reject_reason")


@pytest.mark.parametrize("lines", [0, 1, 3, _otlp_arrow._FIND_LINES - 1, _otlp_arrow._FIND_LINES, 3 * _otlp_arrow._FIND_LINES + 7])
def test_newlines_are_found_one_by_one_then_by_numpy_with_the_same_offsets(lines: int) -> None:
    import numpy as np

    data = b"".join(b"x" * (i % 5) + b"\n" for i in range(lines)) + b"tail"
    expected = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    assert _otlp_arrow._newlines(data).tolist() == expected.tolist()
