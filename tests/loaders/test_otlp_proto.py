"""otlp_proto: requests written with opentelemetry-proto classes load to the same rows as OTLP/JSON."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.traces.otlp.otlp_proto import _sniff, parse_request
from forensics.loaders.core.sniff import Head, sniff

DATA = Path(__file__).resolve().parent.parent / "data" / "otlp"
MIXED = DATA / "mixed_signals.jsonl"
TRACES = DATA / "traces_collector.jsonl"
TYPES = {"resourceSpans": ExportTraceServiceRequest, "resourceLogs": ExportLogsServiceRequest,
         "resourceMetrics": ExportMetricsServiceRequest}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
PROVENANCE = "* EXCLUDE (format, source_file, source_line, source_offset)"


def _ids_to_base64(node):
    """OTLP/JSON uses hex ids where protobuf-JSON has base64: convert for json_format.ParseDict."""
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str) and _HEX.match(v) else _ids_to_base64(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_ids_to_base64(v) for v in node]
    return node


def messages(path: Path) -> list[Message]:
    """Each line of an OTLP/JSON file as the protobuf request it stands for."""
    out = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        out.append(json_format.ParseDict(_ids_to_base64(doc), TYPES[next(iter(doc))]()))
    return out


def varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def delimited(msgs: list[Message]) -> bytes:
    return b"".join(varint(m.ByteSize()) + m.SerializeToString() for m in msgs)


def rows(case, query: str) -> list[dict]:
    return case.sql(query).to_arrow().to_pylist()


def load(path):
    case = forensics.open_case()
    return case, case.load(path)


@pytest.fixture(scope="module")
def mixed_json():
    return load(MIXED)[0]


def test_delimited_stream_of_all_signals_matches_json(tmp_path, mixed_json):
    path = tmp_path / "export.binpb"
    path.write_bytes(delimited(messages(MIXED)))
    assert sniff(str(path)) == "otlp_proto"
    case, report = load(path)
    assert report.files[0].format == "otlp_proto"
    assert report.files[0].by_table == {"spans": 5, "logs": 4, "metrics": 20} and report.files[0].rows_rejected == 0
    for table in ("spans", "logs", "metrics"):
        assert rows(case, f"SELECT {PROVENANCE} FROM {table} ORDER BY ALL") == rows(
            mixed_json, f"SELECT {PROVENANCE} FROM {table} ORDER BY ALL"), table
    # no lines in a binary file: the 0-based record index per signal
    assert rows(case, "SELECT list(source_offset ORDER BY source_offset) AS o FROM spans") == [{"o": [0, 1, 2, 3, 4]}]
    assert rows(case, "SELECT count(*) AS n FROM spans WHERE source_line IS NOT NULL") == [{"n": 0}]


def test_single_trace_request_with_every_quirk(tmp_path):
    """One ExportTraceServiceRequest per .pb file (base64-free binary ids, enums, AnyValue kinds)."""
    request = ExportTraceServiceRequest()
    for msg in messages(TRACES):
        request.resource_spans.extend(msg.resource_spans)
    path = tmp_path / "traces.pb"
    path.write_bytes(request.SerializeToString())
    case, report = load(path)
    json_case, _ = load(TRACES)
    assert report.files[0].rows_loaded == 7
    assert rows(case, f"SELECT {PROVENANCE} FROM spans ORDER BY span_id") == rows(
        json_case, f"SELECT {PROVENANCE} FROM spans ORDER BY span_id")
    render = rows(case, "SELECT attributes FROM spans WHERE span_id = '00f067aa0ba902b7'")[0]["attributes"]
    assert dict(render)["tags"] == '["a",2,false]' and dict(render)["whole"] == "3.0"


def test_built_with_classes(tmp_path):
    """A span built field by field (bytes ids, enum kind) loads with the canonical vocabulary."""
    span = Span(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), span_id=bytes.fromhex("b7ad6b7169203331"),
                name="GET /items", kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=1771408800000001000,
                end_time_unix_nano=1771408800250001500,
                attributes=[KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
                            KeyValue(key="http.route", value=AnyValue(string_value="/items"))])
    span.status.code = span.status.STATUS_CODE_OK
    rs = ResourceSpans(scope_spans=[{"scope": {"name": "manual"}, "spans": [span]}])
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="inventory-service")))
    path = tmp_path / "one.binpb"
    path.write_bytes(ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString())
    case, _ = load(path)
    got = rows(case, """SELECT trace_id, span_id, parent_span_id, service, name, kind, status, duration_ms,
                               http_status_code, http_route, scope_name, source_offset,
                               strftime(start_time, '%H:%M:%S.%f') AS start FROM spans""")
    assert got == [dict(trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", parent_span_id=None,
                        service="inventory-service", name="GET /items", kind="server", status="ok",
                        duration_ms=250.0005, http_status_code=200, http_route="/items", scope_name="manual",
                        source_offset=0, start="10:00:00.000001")]


@pytest.mark.parametrize("signal", ["resourceLogs", "resourceMetrics"])
def test_single_logs_or_metrics_request_is_told_apart(tmp_path, signal):
    msg = next(m for m in messages(MIXED) if isinstance(m, TYPES[signal]))
    assert isinstance(parse_request(msg.SerializeToString()), TYPES[signal])
    path = tmp_path / "one.pb"
    path.write_bytes(msg.SerializeToString())
    case, report = load(path)
    table = "logs" if signal == "resourceLogs" else "metrics"
    assert set(report.files[0].by_table) == {table} and report.files[0].rows_loaded == (2 if table == "logs" else 9)


def test_four_byte_length_prefixed_stream(tmp_path):
    msgs = messages(TRACES)
    path = tmp_path / "file-exporter.pb"
    path.write_bytes(b"".join(m.ByteSize().to_bytes(4, "big") + m.SerializeToString() for m in msgs))
    case, report = load(path)
    assert report.files[0].rows_loaded == 7 and report.files[0].rows_rejected == 0


def test_truncated_stream_keeps_whole_messages_and_rejects_the_rest(tmp_path):
    msgs = messages(TRACES)
    good = delimited(msgs[:2])
    path = tmp_path / "cut.binpb"
    path.write_bytes(good + delimited(msgs[2:])[:40])
    case, report = load(path)
    assert report.files[0].rows_loaded == 5
    rej = rows(case, "SELECT source_line, source_offset, reason_code, reason FROM rejects")
    assert len(rej) == 1 and rej[0]["reason_code"] == "invalid_protobuf" and rej[0]["source_offset"] == len(good)
    assert f"offset {len(good)}" in rej[0]["reason"] and "expected OTLP protobuf" in rej[0]["reason"]
    assert report.files[0].records_read == 6


def test_garbage_is_one_reject_or_a_strict_error(tmp_path):
    path = tmp_path / "garbage.pb"
    path.write_bytes(b"\x0a\xff\xff\xff\x0fnot a protobuf at all")
    case, report = load(path)
    assert report.files[0].format == "otlp_proto"
    assert rows(case, "SELECT source_offset, reason_code FROM rejects") == [dict(source_offset=0, reason_code="invalid_protobuf")]
    with pytest.raises(StrictModeError) as err:
        forensics.open_case().load(path, strict=True)
    assert str(path) in str(err.value) and "offset 0" in str(err.value)


def test_sniff():
    msg = messages(TRACES)[0].SerializeToString()
    assert _sniff(Head("x.pb", msg, complete=True)) == 0.9
    assert _sniff(Head("x.bin", msg, complete=True)) == 0.6  # binary without the extension, parses as a request
    assert _sniff(Head("x.bin", b"\x00\x01\x02\xff\xfe", complete=True)) == 0.0
    assert _sniff(Head("x.json", b'{"resourceSpans": []}', complete=True)) == 0.0


def test_sniff_large_delimited_stream_without_extension():
    msgs = messages(MIXED) * 40
    data = delimited(msgs)
    assert len(data) > 65536
    assert _sniff(Head("export.bin", data[:65536], complete=False)) == 0.6
    assert _sniff(Head("export.bin", b"\x00" * 65536, complete=False)) == 0.0


# -- a directory of request bodies: converted in batches, rows as if loaded one by one -------------
REALAPP = Path(__file__).resolve().parent.parent / "data" / "realapp" / "faults" / "fleet-service.exception.1"


def _bodies(tmp_path: Path) -> Path:
    """Request bodies the real OTel SDK POSTed (traces and metrics of the realapp), an OTLP/JSON
    file, a body cut short, garbage, a copy of a body and a file in no format, in one directory."""
    out = tmp_path / "bodies"
    out.mkdir()
    bodies = sorted(REALAPP.glob("bodies/*/*.binpb.gz"))[:8] + sorted(REALAPP.glob("metrics/*.binpb.gz"))[:4]
    for i, body in enumerate(bodies):
        (out / f"{i:02d}-{body.parent.name}-{body.name}").write_bytes(body.read_bytes())
    (out / "03b-copy.binpb.gz").write_bytes((out / next(p.name for p in sorted(out.iterdir()) if p.name.startswith("03"))).read_bytes())
    (out / "05b-json.otlp.jsonl").write_bytes(TRACES.read_bytes())
    (out / "07b-cut.binpb").write_bytes(delimited(messages(TRACES))[:-30])
    (out / "07c-garbage.pb").write_bytes(b"\x0a\xff\xff\xff\x0fnot a protobuf at all")
    (out / "09b-notes.txt").write_text("what was deployed when\n")
    return out


def _state(case: forensics.Case, report) -> dict:
    spans = case.sql("SELECT * REPLACE (epoch_us(start_time) AS start_time, epoch_us(end_time) AS end_time) FROM spans "
                     "ORDER BY source_file, source_offset, span_id").to_arrow().to_pylist()
    metrics = case.sql("SELECT * REPLACE (epoch_us(time) AS time) FROM metrics ORDER BY source_file, source_offset, "
                       "name").to_arrow().to_pylist()
    return {"spans": spans, "metrics": metrics, "rejects": case.sql("SELECT * FROM rejects ORDER BY ALL").rows(),
            "files": [(Path(f.path).name, f.format, f.status, f.records_read, f.rows_loaded, f.rows_rejected,
                       f.by_table) for f in report.files],
            "custody": case.sql("SELECT path, format, records_read, rows_loaded, rows_rejected, loaded_rows_by_table "
                                "FROM files ORDER BY path").rows()}


def test_a_directory_of_bodies_loads_in_batches_as_one_by_one(tmp_path, monkeypatch):
    from forensics.loaders.core import api
    from forensics.loaders.traces.otlp import otlp_proto

    bodies = _bodies(tmp_path)
    batches: list[int] = []
    real = otlp_proto.load_otlp_proto_files
    monkeypatch.setattr(api, "BATCH_FILES", 4)  # several batches
    monkeypatch.setitem(forensics.formats(), "otlp_proto", forensics.formats()["otlp_proto"].__class__(
        **{**forensics.formats()["otlp_proto"].__dict__, "load_batch": lambda ctxs: (batches.append(len(ctxs)), real(ctxs))}))
    results = []
    for k, options in enumerate(({}, {"batch_small_files": False, "group_small_files": False})):
        case = forensics.open_case(tmp_path / f"case{k}.duckdb" if k else None)
        results.append(_state(case, case.load(bodies, progress=False, **options)))
    assert batches and max(batches) == 4 and sum(batches) == 14  # 12 bodies, the cut one and the garbage
    batched, alone = results
    assert batched["files"] == alone["files"]
    assert [f[2] for f in alone["files"]].count("skipped_duplicate") == 1
    assert batched["rejects"] == alone["rejects"] and len(alone["rejects"]) == 3  # cut, garbage, notes.txt
    assert batched["custody"] == alone["custody"]
    assert len(batched["spans"]) == len(alone["spans"]) > 100 and len(batched["metrics"]) == len(alone["metrics"]) > 100
    for table in ("spans", "metrics"):
        for a, b in zip(batched[table], alone[table]):
            assert a == b, {key: (a[key], b[key]) for key in a if a[key] != b[key]}


def test_strict_mode_fails_at_the_same_body(tmp_path):
    bodies = _bodies(tmp_path)
    (bodies / "09b-notes.txt").unlink()
    errors, loaded = [], []
    for options in ({}, {"batch_small_files": False, "group_small_files": False}):
        case = forensics.open_case()
        with pytest.raises(StrictModeError) as info:
            case.load(bodies, strict=True, progress=False, **options)
        errors.append((Path(info.value.path).name, info.value.offset, str(info.value).split(":", 1)[1]))
        loaded.append(case.sql("SELECT regexp_extract(source_file, '[^/]+$'), count(*) FROM spans GROUP BY ALL ORDER BY ALL").rows())
    assert errors[0] == errors[1] and errors[0][:2] == ("07b-cut.binpb", len(delimited(messages(TRACES)[:-1])))
    assert loaded[0] == loaded[1] and len(loaded[0]) == 9  # the 8 bodies before it (not the copy), the JSON file
