"""Zipkin v2 JSON loader: real-shaped API responses (/api/v2/trace/{id}, /api/v2/traces, a
single span, one per line) with shared client/server halves, partial flushes, 64/128-bit ids,
string times, missing service names, rejects and strict mode."""
from __future__ import annotations

import pytest

import forensics

from forensics.errors import StrictModeError
from forensics.loaders.core.sniff import sniff
from forensics.loaders.traces.zipkin.zipkin import CLIENT_ID_MASK
from forensics.loaders.traces.zipkin.zipkin import _sniff as sniff_zipkin

from ._jaeger_zipkin_util import DATA, assert_compressed_copies_match, at, head, load, rejects, spans_by_id

Z = DATA / "zipkin"
TRACE = "00000000000000005af7183fb1d4cf5f"  # 64-bit in the file
TRACE128 = "463ac35c9f6413ad48485a3953bb6124"
CLIENT_HALF = "b52bff9a74ca9ad2"  # 352bff9a74ca9ad2 with its top bit flipped


@pytest.fixture(scope="module")
def trace():
    case, report = load(Z / "trace.json")
    return case, report, spans_by_id(case)


def test_trace_response_rows(trace):
    _, report, spans = trace
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (4, 4, 0)
    got = {sid: (s["trace_id"], s["parent_span_id"], s["service"], s["service_version"], s["name"], s["kind"],
                 s["start_time"], s["end_time"], s["duration_ms"], s["status"], s["status_message"], s["host_name"],
                 s["source_line"], s["source_offset"]) for sid, s in spans.items()}
    assert got == {
        "6b221d5bc9e6496c": (TRACE, None, "catalog-service", "1.8.0", "get /search", "server",
                             at(0), at(412345), 412.345, "unset", None, "10.1.2.3", None, 0),
        # the CLIENT half of the shared id gets the derived id and keeps its own parent
        CLIENT_HALF: (TRACE, "6b221d5bc9e6496c", "catalog-service", "1.8.0", "get /items", "client",
                      at(1250), at(351373), 350.123, "error", "500", "10.1.2.3", None, 1),
        # the SERVER half keeps the id and now points at the client half; error tag "" -> error, no message
        "352bff9a74ca9ad2": (TRACE, CLIENT_HALF, "inventory-service", None, "get /items", "server",
                             at(3000), at(343000), 340.0, "error", None, "10.1.2.9", None, 2),
        # children of the shared id stay under the server half
        "d300000000000004": (TRACE, "352bff9a74ca9ad2", "inventory-service", None, "select inventory.items", "client",
                             at(4000), at(304000), 300.0, "error", "canceling statement due to statement timeout",
                             "10.1.2.9", None, 3),
    }


def test_client_half_id_derivation_is_documented_xor():
    assert f"{int('352bff9a74ca9ad2', 16) ^ CLIENT_ID_MASK:016x}" == CLIENT_HALF


def test_trace_response_attributes_and_promoted_columns(trace):
    _, _, spans = trace
    client = spans[CLIENT_HALF]
    assert client["attributes"] == {
        "http.method": "GET", "http.path": "/items", "http.status_code": "500", "error": "500",
        "service.version": "1.8.0", "zipkin.original_span_id": "352bff9a74ca9ad2",
        "zipkin.remote_endpoint.service_name": "inventory-service", "zipkin.remote_endpoint.ipv4": "10.1.2.9",
        "zipkin.remote_endpoint.port": "9000"}
    # remoteEndpoint.serviceName -> peer_service when there is no peer.service tag
    assert (client["http_method"], client["http_url"], client["http_status_code"], client["peer_service"]) == (
        "GET", "/items", 500, "inventory-service")
    server = spans["352bff9a74ca9ad2"]
    assert server["attributes"]["zipkin.shared"] == "true" and "zipkin.original_span_id" not in server["attributes"]
    assert server["peer_service"] is None  # the remote endpoint has no service name
    root = spans["6b221d5bc9e6496c"]
    assert root["resource_attributes"] == {
        "service.name": "catalog-service", "zipkin.local_endpoint.ipv4": "10.1.2.3", "zipkin.local_endpoint.port": "8080"}
    db = spans["d300000000000004"]
    assert (db["db_system"], db["db_statement"], db["peer_service"]) == (
        "postgresql", "SELECT * FROM items WHERE id = $1", "postgres")
    assert db["events"] == [
        {"time": "2026-02-18T10:00:00.004100Z", "name": "conn.acquired", "attributes": {}},
        {"time": "2026-02-18T10:00:00.304000Z", "name": "statement timeout", "attributes": {}},
        {"time": "2026-02-18T10:00:00.304001Z", "name": "exception",
         "attributes": {"exception.type": "PSQLException", "exception.message": "canceling statement"}},
        {"time": "2026-02-18T10:00:00.304002Z", "name": "retry", "attributes": {"attempt": "2"}},
        {"time": "2026-02-18T10:00:00.304003Z", "name": "ws: {not json}", "attributes": {}}]
    assert root["events"] is None and root["links"] is None


def test_array_of_traces_quirks():
    case, report = load(Z / "traces.json")
    spans = spans_by_id(case)
    got = {sid: (s["trace_id"], s["parent_span_id"], s["service"], s["kind"], s["start_time"], s["end_time"],
                 s["duration_ms"], s["status"], s["status_message"], s["host_name"], s["peer_service"],
                 s["source_offset"]) for sid, s in spans.items()}
    assert got == {
        # 128-bit id; timestamp/duration as strings; ipv6 host; peer.service tag wins over remoteEndpoint
        "a2fb4a1d1a96d312": (TRACE128, None, "checkout", "producer", at(60_000_000), at(60_001_500), 1.5,
                             "unset", None, "2001:db8::c001", "orders-topic", 0),
        # partial flush without duration: kept, no end; serviceName "" -> NULL; host.name tag beats ipv4
        "b7ad6b7169203331": (TRACE128, "a2fb4a1d1a96d312", None, "consumer", at(60_002_000), None, None,
                             "unset", None, "worker-7", None, 1),
        # no localEndpoint at all; fractional duration (µs) kept in duration_ms; otel.status_code OK
        "d7ad6b7169203333": (TRACE128, "b7ad6b7169203331", None, "unspecified", at(60_003_000), at(60_003_003),
                             0.0025, "ok", None, None, None, 3),
        # 15-char trace id of the same trace as its 16-char parent; short ids left-padded; otel ERROR status
        "0000000000000012": ("0" * 16 + "0a0b0c0d0e0f1011", "0000000000000011", "legacy", "unspecified",
                             at(70_000_005), at(70_000_008), 0.003, "error", "cache miss storm", None, "cache", 5),
    }
    assert spans["a2fb4a1d1a96d312"]["attributes"]["zipkin.debug"] == "true"
    assert (spans["a2fb4a1d1a96d312"]["messaging_system"], spans["a2fb4a1d1a96d312"]["messaging_destination"]) == (
        "kafka", "orders")
    assert spans["b7ad6b7169203331"]["resource_attributes"] == {"zipkin.local_endpoint.ipv4": "10.3.0.4"}
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (6, 4, 2)
    assert rejects(case) == [
        ("traces.json", None, 2, "bad_time",
         'span has no "timestamp" and the file has no span with its trace id, span id and side to merge it into '
         '(a partial flush without a start cannot be placed in time)'),
        ("traces.json", None, 4, "bad_value", "unknown span kind: BOGUS"),
    ]


def test_64_bit_trace_ids_join_the_128_bit_trace_and_shared_halves_across_widths():
    case, _ = load(Z / "mixed_width.json")
    spans = spans_by_id(case)
    wide, client = "463ac35c9f6413ad48485a3953bb6124", f"{0x1000000000000002 ^ CLIENT_ID_MASK:016x}"
    assert {sid: (s["trace_id"], s["parent_span_id"], s["kind"], s["attributes"].get("zipkin.original_trace_id"))
            for sid, s in spans.items()} == {
        "1000000000000001": (wide, None, "server", "0" * 16 + "48485a3953bb6124"),
        client: (wide, "1000000000000001", "client", None),
        "1000000000000002": (wide, client, "server", "0" * 16 + "48485a3953bb6124"),
        "1000000000000009": ("0" * 16 + "a" * 16, None, "unspecified", None),  # no 128-bit partner: unchanged
    }


def test_single_span_object():
    case, _ = load(Z / "single_span.json")
    [(sid, s)] = spans_by_id(case).items()
    assert (sid, s["trace_id"], s["parent_span_id"], s["kind"], s["http_method"], s["http_url"],
            s["http_status_code"], s["duration_ms"], s["source_offset"]) == (
        "86154a4ba6e91385", "000000000000000086154a4ba6e91385", None, "server", "POST", "/checkout", 201, 12.0, 0)


def test_spans_per_line_with_bad_lines():
    case, report = load(Z / "spans.ndjson")
    spans = spans_by_id(case)
    assert {sid: (s["parent_span_id"], s["source_line"], s["source_offset"]) for sid, s in spans.items()} == {
        "000000000000002b": (None, 1, None),
        "000000000000003b": ("000000000000002b", 2, None),
    }
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (4, 2, 2)
    got = rejects(case)
    assert [r[:4] for r in got] == [("spans.ndjson", 3, None, "invalid_json"), ("spans.ndjson", 4, None, "wrong_shape")]
    assert got[1][4].endswith("found a JSON object with keys foo")


def test_zipkin_v1_is_rejected_with_a_reason():
    case, report = load(Z / "v1.json")
    assert (report.files[0].format, report.rows_loaded, report.rows_rejected) == ("zipkin_json", 0, 1)
    [(_, _, offset, code, reason)] = rejects(case)
    assert (offset, code) == (0, "wrong_shape") and reason.startswith("Zipkin v1 span (binaryAnnotations")


def test_strict_mode_names_file_and_record():
    with pytest.raises(StrictModeError) as err:
        load(Z / "traces.json", strict=True)
    # the flush without a timestamp (offset 2) is judged once the file is read (it might merge):
    # the bad kind at offset 4 is the first bad record found
    assert "traces.json" in str(err.value) and "offset 4" in str(err.value) and "BOGUS" in str(err.value)


def test_cut_documents_keep_the_complete_spans():
    case, report = load(Z / "cut.json")
    assert list(spans_by_id(case)) == ["6b221d5bc9e6496c", CLIENT_HALF, "352bff9a74ca9ad2"]
    assert (report.records_read, report.rows_loaded, report.rows_rejected) == (4, 3, 1)
    assert rejects(case) == [("cut.json", None, 1653, "truncated",
                              "document ends inside array element 3 (which starts at byte 1653); "
                              "the elements before it were loaded")]
    case, report = load(Z / "broken.json")  # cut inside the first span
    assert (report.records_read, report.rows_rejected) == (1, 1)
    assert rejects(case)[0][2:4] == (1, "truncated")


def test_concatenated_documents_are_not_skipped_silently(tmp_path):
    path = tmp_path / "two.json"
    path.write_text((Z / "single_span.json").read_text().join(["[", "]\n"]) + (Z / "trace.json").read_text())
    case, report = load(path)
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    [(_, _, _, code, reason)] = rejects(case)
    assert code == "wrong_shape" and reason.startswith("more data after the end of the top-level JSON array")


@pytest.mark.parametrize("name", ["trace.json", "traces.json"])
def test_streamed_elements_equal_whole_document(name):
    whole, _ = load(Z / name, whole_documents=True)
    streamed, _ = load(Z / name, batch_bytes=64)
    assert spans_by_id(streamed) == spans_by_id(whole)
    assert rejects(streamed) == rejects(whole)


def test_compressed_exports_load_the_same_rows(tmp_path, trace):
    assert_compressed_copies_match(Z / "trace.json", tmp_path, "zipkin_json", trace[2])


@pytest.mark.parametrize("name", ["trace.json", "traces.json", "single_span.json", "spans.ndjson"])
def test_sniffed_as_zipkin(name):
    assert sniff(str(Z / name)) == "zipkin_json"


@pytest.mark.parametrize("text", [
    '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab", "spanId": "cd", "name": "x"}]}]}]}',
    # a JSON log line that happens to have "id" and "traceId" fields
    '{"id": 7, "traceId": "4bf92f3577b34da6", "timestamp": "2026-02-18T10:00:00Z", "name": "app", "msg": "x"}\n{"id": 8}\n',
    '{"data": [{"traceID": "ab", "spans": [], "processes": {}}], "total": 0}',
    '[{"traceID": "ab", "spanID": "cd", "operationName": "x"}]',
    '{"status": "success", "data": {"resultType": "vector", "result": []}}',
    '# HELP x y\n# TYPE x counter\nx 1\n',
])
def test_not_zipkin(text):
    assert sniff_zipkin(head(text)) == 0.0


def test_large_document_sniffed_from_its_head():
    start = head('[\n  {\n    "traceId": "5af7183fb1d4cf5f",\n    "id": "6b221d5bc9e6496c",\n'
                 '    "localEndpoint": {"serviceName": "a"},', complete=False)
    assert sniff_zipkin(start) == 0.8


def test_partial_flushes_merge_into_their_span_and_count_as_merged():
    case, report = load(Z / "partial_flush.ndjson")
    spans = spans_by_id(case)
    merged = spans["352bff9a74ca9ad2"]
    assert (merged["name"], merged["kind"], merged["start_time"], merged["end_time"], merged["duration_ms"],
            merged["status"], merged["status_message"], merged["http_status_code"], merged["http_method"],
            merged["source_line"]) == ("get /inventory", "client", at(600_000_000), at(600_180_000), 180.0, "error", "Service Unavailable",
                                       503, "GET", 1)
    assert merged["attributes"]["http.path"] == "/inventory/42" and merged["attributes"]["error"] == "Service Unavailable"
    assert [e["name"] for e in merged["events"]] == ["cr"]
    f = report.files[0]
    assert (f.records_read, f.rows_loaded, f.rows_merged, f.rows_rejected) == (4, 2, 1, 1)
    assert case.sql("SELECT records_read, rows_loaded, rows_merged, rows_rejected FROM files").rows() == [(4, 2, 1, 1)]
    assert [r[1:4] for r in rejects(case)] == [(4, None, "bad_time")]  # no span 0000000000000bad to merge into
    assert "merged 1" in str(report)
    assert forensics.verify(case).ok  # the chain of custody counts merged records too


def test_exact_duplicate_spans_across_files_are_kept_once(tmp_path):
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    lines = (Z / "spans.ndjson").read_text().splitlines()
    first.write_text(lines[0] + "\n" + lines[1] + "\n")
    second.write_text(lines[1] + "\n" + lines[0].replace('"name":"', '"name":"renamed ') + "\n")
    case = forensics.open_case()
    report = case.load(tmp_path)
    by_file = {f.path.rsplit("/", 1)[1]: (f.records_read, f.rows_loaded, f.rows_merged) for f in report.files}
    assert by_file == {"a.ndjson": (2, 2, 0), "b.ndjson": (2, 1, 1)}  # line 1 of b is line 2 of a: merged
    assert case.sql("SELECT count(*) FROM spans").scalar() == 3  # the renamed span is another record: kept
    assert case.sql("SELECT path, rows_loaded, rows_merged, loaded_rows_by_table->>'$.spans' FROM files ORDER BY 1"
                    ).rows() == [(str(first), 2, 0, "2"), (str(second), 1, 1, "1")]
    assert any("kept once" in w for w in report.warnings)
    again = forensics.open_case()  # a second load call into the same case merges the same way
    again.load(first)
    later = again.load(second)
    assert (later.rows_loaded, later.rows_merged) == (1, 1)
    assert forensics.verify(again).ok


def test_a_copy_loaded_later_into_a_larger_case_is_merged(tmp_path, monkeypatch):
    from forensics import _duplicates

    lines = (Z / "spans.ndjson").read_text().splitlines()
    (tmp_path / "all.ndjson").write_text("\n".join(lines) + "\n")
    (tmp_path / "one.ndjson").write_text(lines[1] + "\n")
    scoped: list[bool] = []
    real = _duplicates.repeated_records_sql
    monkeypatch.setattr(_duplicates, "repeated_records_sql", lambda t, few=False: (scoped.append(few), real(t, few=few))[1])
    case = forensics.open_case()
    first = case.load(tmp_path / "all.ndjson")
    later = case.load(tmp_path / "one.ndjson")
    assert scoped == [True]  # the first load (one file, nothing else in the case) has nothing to compare; the small one only looks at the traces it has
    assert (later.rows_loaded, later.rows_merged) == (0, 1)
    assert case.sql("SELECT count(*) FROM spans").scalar() == first.rows_loaded == 2
