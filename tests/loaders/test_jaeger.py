"""Jaeger JSON loader: real-shaped exports (UI "Download JSON" envelope, bare trace, span array,
one trace per line) with each quirk, rejects and strict mode."""
from __future__ import annotations

import pytest

from forensics.errors import StrictModeError
from forensics.loaders.traces.jaeger.jaeger import _sniff as sniff_jaeger
from forensics.loaders.core.sniff import sniff

from ._jaeger_zipkin_util import DATA, assert_compressed_copies_match, at, head, load, rejects, spans_by_id

J = DATA / "jaeger"
TRACE = "0bf92f3577b34da6a3ce929d0e0e4736"  # 31 chars in the file
TRACE64 = "00000000000000004bf92f3577b34da6"  # 16 chars in the file


@pytest.fixture(scope="module")
def ui():
    case, report = load(J / "ui_download.json")
    return case, report, spans_by_id(case)


def test_envelope_rows_ids_parents_times(ui):
    case, report, spans = ui
    assert report.records_read == 4 and report.rows_loaded == 4 and report.rows_rejected == 0
    got = {sid: (s["trace_id"], s["parent_span_id"], s["service"], s["service_version"], s["name"], s["kind"],
                 s["start_time"], s["end_time"], s["duration_ms"], s["status"], s["status_message"], s["host_name"],
                 s["source_line"], s["source_offset"]) for sid, s in spans.items()}
    assert got == {
        "a1b2c3d4e5f60718": (TRACE, None, "catalog-service", "1.8.0", "GET /search", "server",
                             at(0), at(412345), 412.345, "unset", None, "catalog-7d9f8", None, 0),
        # 15-char span id left-padded
        "0b1000000000000c": (TRACE, "a1b2c3d4e5f60718", "catalog-service", "1.8.0", "GET /items", "client",
                             at(1250), at(351373), 350.123, "unset", None, "catalog-7d9f8", None, 1),
        # CHILD_OF preferred over an earlier FOLLOWS_FROM; the reference's traceID is the padded form
        "0c2000000000000d": (TRACE, "0b1000000000000c", "inventory-service", "2.3.1", "GET /items", "server",
                             at(3000), at(343000), 340.0, "error", "db timeout", "inv-5f6d", None, 2),
        # error=true (bool) and the message of the error log ("message" wins over "error.object")
        "d300000000000004": (TRACE, "0c2000000000000d", "inventory-service", "2.3.1", "SELECT inventory.items",
                             "client", at(4000), at(304000), 300.0, "error", "statement timeout after 300ms",
                             "inv-5f6d", None, 3),
    }
    assert case.sql("SELECT DISTINCT format FROM spans").rows() == [("jaeger_json",)]


def test_envelope_tags_of_each_type_and_promoted_columns(ui):
    _, _, spans = ui
    client = spans["0b1000000000000c"]
    assert client["attributes"] == {
        "span.kind": "client", "http.method": "GET", "http.status_code": "500", "peer.service": "inventory-service",
        "net.peer.name": "inventory", "cache.hit": "false", "load.factor": "1.5", "payload.digest": "3q2+7w=="}
    assert (client["http_method"], client["http_status_code"], client["peer_service"], client["server_address"]) == (
        "GET", 500, "inventory-service", "inventory")
    root = spans["a1b2c3d4e5f60718"]
    assert (root["http_route"], root["http_url"], root["http_status_code"]) == (
        "/search", "http://catalog:8080/search?q=lamp", 200)
    assert (root["scope_name"], root["scope_version"]) == ("io.opentelemetry.tomcat-10.0", "1.32.0")
    db = spans["d300000000000004"]
    assert (db["db_system"], db["db_statement"], db["peer_service"]) == (
        "postgresql", "SELECT * FROM items WHERE id = $1", "inventory-db")


def test_envelope_process_tags_become_resource_attributes(ui):
    _, _, spans = ui
    assert spans["a1b2c3d4e5f60718"]["resource_attributes"] == {
        "service.name": "catalog-service", "client-uuid": "5e4f1c2b9a8d7e6f", "hostname": "catalog-7d9f8",
        "ip": "10.1.2.3", "jaeger.version": "Go-2.30.0", "service.version": "1.8.0"}
    assert spans["d300000000000004"]["resource_attributes"] == {
        "service.name": "inventory-service", "host.name": "inv-5f6d", "ip": "10.1.2.9", "service.version": "2.3.1"}


def test_envelope_logs_become_events_and_other_references_links(ui):
    _, _, spans = ui
    assert spans["d300000000000004"]["events"] == [
        {"time": "2026-02-18T10:00:00.004100Z", "name": "conn.acquired", "attributes": {"pool.size": "10"}},
        {"time": "2026-02-18T10:00:00.304000Z", "name": "error",
         "attributes": {"error.object": "pq: canceling statement due to statement timeout",
                        "message": "statement timeout after 300ms"}},
    ]
    assert spans["0c2000000000000d"]["links"] == [
        {"trace_id": TRACE, "span_id": "a1b2c3d4e5f60718", "trace_state": None,
         "attributes": {"opentracing.ref_type": "follows_from"}}]
    assert spans["a1b2c3d4e5f60718"]["events"] is None and spans["a1b2c3d4e5f60718"]["links"] is None


def test_single_trace_without_envelope_quirks():
    case, report = load(J / "single_trace.json")
    spans = spans_by_id(case)
    assert report.rows_loaded == 4 and report.rows_rejected == 0
    rows = {sid: (s["trace_id"], s["parent_span_id"], s["kind"], s["status"], s["status_message"], s["duration_ms"],
                  s["start_time"], s["source_offset"]) for sid, s in spans.items()}
    assert rows == {
        # legacy parentSpanID "0" means root; otel.status_code=OK
        "00f067aa0ba902b7": (TRACE64, None, "consumer", "ok", None, 25.0, at(60_000_000), 0),
        # legacy parentSpanID without leading zeros; error tag as the string "true"; error log's error.object
        "00f067aa0ba902b8": (TRACE64, "00f067aa0ba902b7", "producer", "error", "broker unavailable", 2.0,
                             at(60_001_000), 1),
        # FOLLOWS_FROM only: still the parent; error=false is not an error
        "00f067aa0ba902b9": (TRACE64, "00f067aa0ba902b7", "internal", "unset", None, 1.5, at(60_026_000), 2),
        # CHILD_OF into another trace: a root here, kept as a link; no span.kind tag
        "00f067aa0ba902ba": (TRACE64, None, "unspecified", "unset", None, 0.007, at(60_030_000), 3),
    }
    assert spans["00f067aa0ba902ba"]["links"] == [
        {"trace_id": "ffffffffffffffff1111111111111111", "span_id": "1111111111111111", "trace_state": None,
         "attributes": {"opentracing.ref_type": "child_of"}}]
    assert spans["00f067aa0ba902b9"]["links"] is None
    root = spans["00f067aa0ba902b7"]
    assert root["attributes"]["jaeger.warnings"] == (
        '["clock skew adjustment disabled; not applying calculated delta of 1.2ms"]')
    assert (root["messaging_system"], root["messaging_destination"]) == ("kafka", "orders")
    # host.name wins over hostname
    assert (root["host_name"], root["service"], root["service_version"]) == ("worker-1", "orders-worker", "3.0.0-rc1")


def test_bare_span_array_with_inline_process():
    """Also: the child's reference carries only the low 64 bits of the 128-bit trace id."""
    case, _ = load(J / "spans_array.json")
    spans = spans_by_id(case)
    assert {sid: (s["service"], s["parent_span_id"], s["kind"], s["host_name"], s["http_status_code"], s["source_offset"])
            for sid, s in spans.items()} == {
        "051581bf3cb55c13": ("frontend", None, "client", "10.0.0.7", 404, 0),
        "5fb397be34d26b51": ("cart", "051581bf3cb55c13", "server", None, None, 1),
    }
    assert spans["051581bf3cb55c13"]["resource_attributes"] == {"service.name": "frontend", "ip": "10.0.0.7"}


def test_one_trace_per_line_and_broken_line():
    case, report = load(J / "traces.ndjson")
    spans = spans_by_id(case)
    assert {sid: (s["trace_id"], s["name"], s["source_line"], s["source_offset"], s["start_time"])
            for sid, s in spans.items()} == {
        "000000000000002a": ("0" * 30 + "1f", "tick", 1, None, at(200_000_000)),
        "000000000000004a": ("0" * 30 + "3f", "tock", 4, None, at(201_000_000)),
    }
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    [(name, line, offset, code, reason)] = rejects(case)
    assert (name, line, offset, code) == ("traces.ndjson", 3, None, "invalid_json")
    assert reason.startswith("line is not a complete JSON value (expected a Jaeger trace")


def test_one_span_per_line_with_inline_process():
    case, report = load(J / "spans.ndjson")
    assert report.files[0].format == "jaeger_json"
    assert {sid: (s["trace_id"], s["parent_span_id"], s["service"], s["host_name"], s["kind"], s["source_line"])
            for sid, s in spans_by_id(case).items()} == {
        "00000000000000a1": ("0" * 29 + "7c1", None, "edge", "edge-0", "server", 1),
        "00000000000000a2": ("0" * 29 + "7c1", "00000000000000a1", "edge", None, "unspecified", 2),
    }


def test_api_v3_response_goes_through_the_otlp_mapping():
    case, report = load(J / "api_v3_trace.json")
    assert report.files[0].format == "jaeger_api_v3"
    spans = spans_by_id(case)
    assert {sid: (s["trace_id"], s["parent_span_id"], s["service"], s["service_version"], s["kind"], s["status"],
                  s["status_message"], s["start_time"], s["duration_ms"], s["source_offset"])
            for sid, s in spans.items()} == {  # base64 ids (protobuf JSON) become hex
        "00f067aa0ba902b7": ("4bf92f3577b34da6a3ce929d0e0e4736", None, "catalog-service", "1.8.0", "server", "unset",
                             None, at(0), 412.345, 0),
        "0000000000000004": ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "catalog-service", "1.8.0",
                             "client", "error", "HTTP 500", at(1250), 350.123, 1),
    }
    assert spans["00f067aa0ba902b7"]["http_status_code"] == 200


def test_api_v3_stream_with_an_error_response_and_a_bad_line():
    case, report = load(J / "api_v3_stream.ndjson")
    assert [(s["name"], s["source_line"]) for s in spans_by_id(case).values()] == [("GET /health", 1)]
    assert report.warnings == [f"{J / 'api_v3_stream.ndjson'}: line 2: the Jaeger query API returned an error: "
                               "trace not found"]
    assert [r[:4] for r in rejects(case)] == [("api_v3_stream.ndjson", 3, None, "invalid_json")]


def test_missing_process_and_bad_id_are_rejected_with_reasons():
    case, report = load(J / "bad_process.json")
    assert list(spans_by_id(case)) == ["6e0c63257de34c92"]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (3, 1, 2)
    assert rejects(case) == [
        ("bad_process.json", None, 1, "missing_field",
         "span has no process: processID 'p2' is not among the trace's processes (p1) "
         'and the span has no inline "process"'),
        ("bad_process.json", None, 2, "bad_id", "span id is not 1-16 hex digits (or is all zero): not-hex"),
    ]
    raw = case.sql("SELECT raw FROM rejects WHERE source_offset = 1").scalar()
    assert '"processID":"p2"' in raw


def test_strict_mode_names_file_and_record():
    with pytest.raises(StrictModeError) as err:
        load(J / "bad_process.json", strict=True)
    text = str(err.value)
    assert "bad_process.json" in text and "offset 1" in text and "processID 'p2'" in text


def test_broken_single_trace_rejected_with_line_and_offset():
    case, report = load(J / "broken_trace.json")
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (1, 0, 1)
    [(name, line, offset, code, reason)] = rejects(case)
    assert (name, line, offset, code) == ("broken_trace.json", 7, 132, "invalid_json")
    assert reason.startswith("document is not valid JSON at line 7 column 7 (char 132): unexpected character")
    with pytest.raises(StrictModeError, match=r"broken_trace\.json.*line 7"):
        load(J / "broken_trace.json", strict=True)


def test_envelope_with_a_broken_trace_loads_the_others():
    case, report = load(J / "bad_element.json")
    assert sorted((s["name"], s["source_offset"]) for s in spans_by_id(case).values()) == [("tick", 0), ("tock", 1)]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    [(name, line, offset, code, reason)] = rejects(case)
    # offset: the span index the broken trace would have started at
    assert (name, line, offset, code) == ("bad_element.json", None, 1, "invalid_json")
    assert reason.startswith("array element 1 is not a complete JSON value (expected a Jaeger trace")


def test_odd_elements_null_span_number_and_trace_without_spans():
    case, report = load(J / "odd_elements.json")
    spans = spans_by_id(case)
    # startTime as a string, null references/tags/logs/duration; error "TRUE"; tags with null key/value
    assert {sid: (s["name"], s["start_time"], s["duration_ms"], s["status"], s["attributes"], s["events"])
            for sid, s in spans.items()} == {
        "00000000000000b1": ("x", at(0), None, "unset", {}, None),
        "00000000000000b2": ("y", at(1), 0.005, "error", {"error": "TRUE", "k": None},
                             [{"time": None, "name": None, "attributes": {}}]),
    }
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (5, 2, 3)
    found = [(offset, code, reason.split("; found ")[-1] if "; found " in reason else reason)
             for _, _, offset, code, reason in rejects(case)]
    assert found == [(0, "missing_field", "span has no span id"), (3, "wrong_shape", "a JSON number"),
                     (3, "wrong_shape", "a JSON object with keys traceID")]


def test_cut_download_keeps_the_complete_traces():
    case, report = load(J / "cut_download.json")
    assert [s["name"] for s in spans_by_id(case).values()] == ["tick"]
    assert rejects(case) == [("cut_download.json", None, 300, "truncated",
                              "document ends inside array element 1 (which starts at byte 300); "
                              "the elements before it were loaded")]
    case, _ = load(J / "broken.json")  # cut inside the first trace: nothing complete
    assert rejects(case)[0][2:4] == (13, "truncated")
    with pytest.raises(StrictModeError, match=r"cut_download\.json.*offset 300"):
        load(J / "cut_download.json", strict=True)


def test_envelope_errors_become_warnings(tmp_path):
    path = tmp_path / "not_found.json"
    path.write_text('{"data": [], "total": 0, "limit": 0, "offset": 0, "errors": '
                    '[{"code": 404, "msg": "trace not found", "traceID": "0bf92f3577b34da6a3ce929d0e0e4736"}]}')
    _, report = load(path)
    assert (report.records_read, report.files[0].format) == (0, "jaeger_json")
    assert report.warnings == [f"{path}: the Jaeger query API reported 1 error(s): trace not found"]


@pytest.mark.parametrize("name", ["ui_download.json", "spans_array.json"])
def test_streamed_elements_equal_whole_document(name):
    """The streaming path (tiny buffers: many batches, elements larger than a buffer) gives the
    rows and rejects of the whole-document path."""
    whole, _ = load(J / name, whole_documents=True)
    streamed, _ = load(J / name, batch_bytes=64)
    assert spans_by_id(streamed) == spans_by_id(whole)
    assert rejects(streamed) == rejects(whole)


def test_compressed_exports_load_the_same_rows(tmp_path, ui):
    assert_compressed_copies_match(J / "ui_download.json", tmp_path, "jaeger_json", ui[2])


@pytest.mark.parametrize("name", ["ui_download.json", "single_trace.json", "spans_array.json", "traces.ndjson",
                                  "bad_process.json", "spans.ndjson", "cut_download.json", "bad_element.json"])
def test_sniffed_as_jaeger(name):
    assert sniff(str(J / name)) == "jaeger_json"


@pytest.mark.parametrize("name", ["api_v3_trace.json", "api_v3_stream.ndjson"])
def test_sniffed_as_jaeger_api_v3(name):
    assert sniff(str(J / name)) == "jaeger_api_v3"


@pytest.mark.parametrize("text", [
    '{"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{"traceId": "ab", "spanId": "cd"}]}]}]}',
    '{"resourceLogs": []}',
    '{"time": "2026-02-18T10:00:00Z", "level": "info", "msg": "ok", "traceID": "abc", "spanID": "def"}\n{"a": 1}\n',
    '{"status": "success", "data": {"resultType": "matrix", "result": []}}',
    '{"kind": "EventList", "apiVersion": "v1", "items": []}',
    '[{"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "localEndpoint": {"serviceName": "a"}}]',
    '{"data": [{"id": 1}]}',
])
def test_not_jaeger(text):
    assert sniff_jaeger(head(text)) == 0.0


def test_large_document_sniffed_from_its_head():
    start = head('{\n  "data": [\n    {\n      "traceID": "ab",\n      "spans": [\n        {\n          "traceID": "ab",'
                 '\n          "spanID": "cd",\n          "operationName": "x",', complete=False)
    assert sniff_jaeger(start) == 0.8
