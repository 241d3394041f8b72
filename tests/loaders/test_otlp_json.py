"""otlp_json: collector file-exporter lines and documents, every quirk, exact rows and rejects."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import zstandard

import forensics
from forensics.errors import StrictModeError
from forensics.loaders.traces.otlp.otlp_json import _sniff
from forensics.loaders.core.sniff import Head, sniff

DATA = Path(__file__).resolve().parent.parent / "data" / "otlp"
TRACES = DATA / "traces_collector.jsonl"
MIXED = DATA / "mixed_signals.jsonl"
BAD = DATA / "bad_lines.jsonl"
PRETTY = DATA / "trace_pretty.json"

TA = "5b8efff798038103d269b633813fc60c"
TB = "4bf92f3577b34da6a3ce929d0e0e4736"


def t(ms: float) -> datetime:
    """2026-02-18T10:00:00Z plus ``ms`` milliseconds (microsecond resolution)."""
    return datetime.fromtimestamp(1771408800 + ms / 1000, timezone.utc)


def load(*paths: Path | str, **kw):
    case = forensics.open_case()
    report = case.load(*paths, **kw)
    return case, report


def rows(case, query: str, params=None) -> list[dict]:
    return case.sql(query, params).to_arrow().to_pylist()


@pytest.fixture(scope="module")
def traces():
    """The collector-lines trace file, loaded once for the tests that only read it."""
    return load(TRACES)


@pytest.fixture(scope="module")
def mixed():
    return load(MIXED)


SPAN_COLS = ("trace_id, span_id, parent_span_id, service, service_version, host_name, name, kind, status, "
             "status_message, start_time, end_time, duration_ms, scope_name, scope_version, source_line, source_offset")


def test_collector_lines_exact_spans(traces):
    case, report = traces
    assert report.files[0].format == "otlp_json"
    got = rows(case, f"SELECT {SPAN_COLS} FROM spans ORDER BY start_time")
    cat = dict(service="catalog-service", service_version="1.8.0", host_name="catalog-7d9f8b-x2k4p",
               scope_name="io.opentelemetry.tomcat-10.0", scope_version="2.11.0-alpha", source_line=1, source_offset=None)
    inv = dict(service="inventory-service", service_version="2.3.1", host_name="inv-7f9c",
               scope_name="opentelemetry.instrumentation.flask", scope_version="0.48b0", source_line=2, source_offset=None)
    order = dict(service="order-service", service_version="0.9.2", host_name=None,
                 scope_name="go.opentelemetry.io/contrib/instrumentation/github.com/IBM/sarama/otelsarama",
                 scope_version=None, source_line=3, source_offset=None)
    assert got == [
        # lowercase hex, parentSpanId "" -> root, status code 2 as integer, times as strings
        dict(trace_id=TA, span_id="eee19b7ec3c1b174", parent_span_id=None, name="GET /search", kind="server",
             status="error", status_message="upstream timeout", start_time=t(123.456), end_time=t(2623.457),
             duration_ms=2500.0005, **cat),
        dict(trace_id=TA, span_id="1a2b3c4d5e6f7081", parent_span_id="eee19b7ec3c1b174", name="GET", kind="client",
             status="unset", status_message=None, start_time=t(130), end_time=t(180), duration_ms=50.0, **cat),
        # UPPERCASE hex ids, enum names for kind and status, times and intValue as JSON numbers
        dict(trace_id=TA, span_id="ab12cd34ef56ab78", parent_span_id="1a2b3c4d5e6f7081", name="GET /items",
             kind="server", status="error", status_message="db timeout", start_time=t(140), end_time=t(175.0),
             duration_ms=35.00025, **inv),
        dict(trace_id=TA, span_id="0102030405060708", parent_span_id="ab12cd34ef56ab78", name="SELECT inventory.items",
             kind="client", status="ok", status_message=None, start_time=t(141), end_time=t(171), duration_ms=30.0, **inv),
        # base64 ids (protobuf-JSON), producer/consumer enum names
        dict(trace_id=TB, span_id="53995c3f42cd8ad8", parent_span_id=None, name="orders publish", kind="producer",
             status="unset", status_message=None, start_time=t(500), end_time=t(501.5), duration_ms=1.5, **order),
        dict(trace_id=TB, span_id="a3ce929d0e0e4736", parent_span_id="53995c3f42cd8ad8", name="orders process",
             kind="consumer", status="unset", status_message=None, start_time=t(520), end_time=t(540), duration_ms=20.0, **order),
        dict(trace_id=TA, span_id="00f067aa0ba902b7", parent_span_id="eee19b7ec3c1b174", name="render results",
             kind="internal", status="ok", status_message=None, start_time=t(2610), end_time=t(2620), duration_ms=10.0, **cat),
    ]
    assert report.files[0].records_read == 7 and report.files[0].rows_rejected == 0


def test_promoted_semantic_convention_columns(traces):
    case, _ = traces
    got = {r["span_id"]: {k: v for k, v in r.items() if v is not None and k != "span_id"} for r in rows(case, """
        SELECT span_id, http_route, http_method, http_status_code, http_url, peer_service, server_address, server_port,
               db_system, db_statement, db_operation, messaging_system, messaging_destination, messaging_operation
        FROM spans""")}
    assert got == {
        "eee19b7ec3c1b174": dict(http_route="/search", http_method="GET", http_status_code=500, http_url="/search",
                                 server_address="catalog", server_port=8080),
        "1a2b3c4d5e6f7081": dict(http_method="GET", http_status_code=503, http_url="http://inventory-service:8080/items?sku=A-1",
                                 peer_service="inventory-service", server_address="inventory-service", server_port=8080),
        "ab12cd34ef56ab78": dict(http_route="/items", http_method="GET", http_status_code=503, server_address="inventory-service"),
        "0102030405060708": dict(db_system="postgresql", db_statement="SELECT * FROM items WHERE sku = $1", db_operation="SELECT",
                                 server_address="pg-primary", server_port=5432),
        "53995c3f42cd8ad8": dict(messaging_system="kafka", messaging_destination="orders", messaging_operation="publish"),
        "a3ce929d0e0e4736": dict(messaging_system="kafka", messaging_destination="orders", messaging_operation="process"),
        "00f067aa0ba902b7": {},
    }


def test_any_values_attributes_resource_events_links(traces):
    case, _ = traces
    render = rows(case, "SELECT attributes, resource_attributes FROM spans WHERE span_id = '00f067aa0ba902b7'")[0]
    assert dict(render["attributes"]) == {
        "tags": '["a",2,false]', "ctx": '{"k":"v","n":1}', "ratio": "0.25", "whole": "3.0", "cached": "false",
        "blob": "AQID", "empty": None, "count": "12"}
    assert dict(render["resource_attributes"]) == {
        "service.name": "catalog-service", "service.version": "1.8.0", "host.name": "catalog-7d9f8b-x2k4p",
        "telemetry.sdk.language": "java", "process.pid": "4711"}
    root = rows(case, "SELECT events, links FROM spans WHERE span_id = 'eee19b7ec3c1b174'")[0]
    assert json.loads(root["events"]) == [{"time": "2026-02-18T10:00:02.600000Z", "name": "exception", "attributes": {
        "exception.type": "java.net.SocketTimeoutException", "exception.message": "Read timed out", "exception.escaped": "true"}}]
    assert root["links"] is None  # "links": [] is no link
    client = rows(case, "SELECT events, links FROM spans WHERE span_id = '1a2b3c4d5e6f7081'")[0]
    assert client["events"] is None
    assert json.loads(client["links"]) == [{"trace_id": TB, "span_id": "53995c3f42cd8ad8", "trace_state": None,
                                            "attributes": {"link.reason": "batch"}}]


def test_pretty_document_uses_record_offsets(traces):
    case, report = load(PRETTY)
    assert report.files[0].format == "otlp_json" and report.files[0].rows_loaded == 3
    got = rows(case, "SELECT span_id, source_line, source_offset FROM spans ORDER BY source_offset")
    assert got == [dict(span_id="eee19b7ec3c1b174", source_line=None, source_offset=0),
                   dict(span_id="1a2b3c4d5e6f7081", source_line=None, source_offset=1),
                   dict(span_id="00f067aa0ba902b7", source_line=None, source_offset=2)]
    lines, _ = traces
    cols = "* EXCLUDE (source_file, source_line, source_offset)"
    assert rows(case, f"SELECT {cols} FROM spans ORDER BY span_id") == rows(
        lines, f"SELECT {cols} FROM spans WHERE source_line = 1 ORDER BY span_id")


def test_concatenated_pretty_documents(tmp_path):
    """``jq . export.jsonl`` output: several pretty-printed requests one after the other."""
    reqs = [json.loads(line) for line in MIXED.read_text().splitlines()]
    path = tmp_path / "jq.json"
    text = "".join(json.dumps(r, indent=2) + "\n" for r in reqs[:2]) + '{\n  "resourceSpans": [ oops\n'
    path.write_text(text)
    case, report = load(path)
    assert rows(case, "SELECT count(*) AS n, min(source_offset) AS lo, max(source_offset) AS hi FROM spans") == [dict(n=3, lo=0, hi=2)]
    assert rows(case, "SELECT count(*) AS n FROM logs") == [dict(n=2)]
    rej = rows(case, "SELECT source_line, reason_code, reason FROM rejects")
    assert len(rej) == 1 and rej[0]["reason_code"] == "invalid_json" and rej[0]["source_line"] == text[: text.index("oops")].count("\n") + 1
    assert "expected an OTLP ExportServiceRequest document" in rej[0]["reason"]
    assert report.files[0].records_read == 6 and report.files[0].rows_rejected == 1


def test_mixed_signals_interleaved(mixed):
    case, report = mixed
    assert report.files[0].by_table == {"spans": 5, "logs": 4, "metrics": 20}
    assert rows(case, "SELECT DISTINCT source_line FROM spans ORDER BY 1") == [{"source_line": 1}, {"source_line": 4}]
    logs = rows(case, """SELECT time, observed_time, service, severity, severity_number, body, trace_id, span_id,
                                attributes, source_line FROM logs ORDER BY source_line, time""")
    assert logs == [
        # timeUnixNano "0": falls back to observedTimeUnixNano; enum name SEVERITY_NUMBER_INFO2; kvlist body; "" ids
        dict(time=t(100), observed_time=t(100), service="catalog-service", severity="info", severity_number=10,
             body='{"msg":"search started","q":"shoes"}', trace_id=None, span_id=None, attributes=[], source_line=2),
        dict(time=t(2599), observed_time=t(2599.1), service="catalog-service", severity="error", severity_number=17,
             body="inventory call failed: Read timed out", trace_id=TA, span_id="eee19b7ec3c1b174",
             attributes=[("thread.name", "http-nio-8080-exec-3"), ("retry", "2")], source_line=2),
        # no severityNumber: from severityText WARNING; base64 ids; eventName kept as attribute
        dict(time=t(160), observed_time=None, service="inventory-service", severity="warn", severity_number=None,
             body="slow query 30ms", trace_id=TA, span_id="0102030405060708",
             attributes=[("event.name", "db.slow_query")], source_line=5),
        # all-zero ids are "no trace context"; intValue body
        dict(time=t(170), observed_time=None, service="inventory-service", severity="fatal", severity_number=21,
             body="42", trace_id=None, span_id=None, attributes=[], source_line=5),
    ]
    joined = rows(case, "SELECT l.body, s.name FROM logs l JOIN spans s USING (trace_id, span_id) ORDER BY l.time")
    assert joined == [dict(body="slow query 30ms", name="SELECT inventory.items"),
                      dict(body="inventory call failed: Read timed out", name="GET /search")]


METRIC_COLS = ("name, labels, value, type, unit, description, temporality, service, exemplar_trace_id, exemplar_span_id, "
               "exemplar_value, exemplar_time, time, source_line")


def test_metrics_number_points_and_exemplars(mixed):
    case, _ = mixed
    got = rows(case, f"SELECT {METRIC_COLS} FROM metrics WHERE type IN ('gauge', 'counter') ORDER BY name")
    base = dict(time=t(1000), service="catalog-service", source_line=3, exemplar_trace_id=None, exemplar_span_id=None,
                exemplar_value=None, exemplar_time=None, description=None)
    assert got == [
        dict(base, name="db.client.connections.usage", labels=[("state", "used")], value=3.0, type="gauge",
             unit="{connection}", temporality="cumulative"),  # non-monotonic sum: a gauge, as in Prometheus
        dict(base, name="http.server.request.count", labels=[("http.route", "/search")], value=1204.0, type="counter",
             unit="{request}", temporality="cumulative", exemplar_trace_id=TA, exemplar_span_id="eee19b7ec3c1b174",
             exemplar_value=1.0, exemplar_time=t(900)),
        dict(base, name="jvm.memory.used", labels=[("jvm.memory.pool.name", "G1 Eden Space")], value=52428800.0,
             type="gauge", unit="By", temporality=None, description="Measure of memory used."),
    ]


def test_metrics_carry_their_resource_attributes(mixed):
    # per-pod metrics: the pod, host and version live in the resource, not in the point's labels
    case, _ = mixed
    got = rows(case, "SELECT DISTINCT service, resource_attributes['host.name'] AS host, "
                     "resource_attributes['service.version'] AS version FROM metrics ORDER BY service")
    assert got == [dict(service="catalog-service", host="catalog-7d9f8b-x2k4p", version="1.8.0"),
                   dict(service="inventory-service", host="inv-7f9c", version="2.3.1")]


def test_metrics_histogram_like_prometheus(mixed):
    case, _ = mixed
    got = rows(case, """SELECT name, labels['le'] AS le, value, type, temporality, exemplar_trace_id, exemplar_span_id,
                               exemplar_value FROM metrics WHERE name LIKE 'http.server.request.duration%'
                        ORDER BY name, value""")
    ex = dict(exemplar_trace_id=None, exemplar_span_id=None, exemplar_value=None)
    b = dict(name="http.server.request.duration_bucket", type="histogram_bucket", temporality="delta")
    assert got == [
        dict(b, le="0.1", value=1.0, **ex),
        dict(b, le="0.5", value=3.0, exemplar_trace_id=TA, exemplar_span_id="1a2b3c4d5e6f7081", exemplar_value=0.3),
        dict(b, le="2.5", value=6.0, **ex),
        dict(b, le="+Inf", value=7.0, exemplar_trace_id=TA, exemplar_span_id="eee19b7ec3c1b174", exemplar_value=3.1),
        dict(name="http.server.request.duration_count", le=None, value=7.0, type="histogram_count", temporality="delta", **ex),
        dict(name="http.server.request.duration_sum", le=None, value=9.45, type="histogram_sum", temporality="delta", **ex),
    ]
    labels = rows(case, "SELECT DISTINCT map_keys(labels) AS k FROM metrics WHERE name = 'http.server.request.duration_bucket'")
    assert labels == [{"k": ["http.route", "http.request.method", "le"]}]


def test_metrics_exponential_histogram_and_summary(mixed):
    case, _ = mixed
    exp = rows(case, """SELECT name, labels['le'] AS le, value, type, temporality FROM metrics
                        WHERE name LIKE 'db.query.duration%' ORDER BY name, value, le""")
    b = dict(name="db.query.duration_bucket", type="exp_histogram", temporality="delta")
    # scale 0 -> base 2: negative index 1 is [-4, -2), zero bucket, positive (1, 2] and (2, 4]
    assert exp == [dict(b, le="-2", value=1.0), dict(b, le="0", value=2.0), dict(b, le="2", value=4.0),
                   dict(b, le="+Inf", value=7.0), dict(b, le="4", value=7.0),
                   dict(name="db.query.duration_count", le=None, value=7.0, type="exp_histogram", temporality="delta"),
                   dict(name="db.query.duration_sum", le=None, value=10.5, type="exp_histogram", temporality="delta")]
    summ = rows(case, "SELECT name, labels, value, type FROM metrics WHERE name LIKE 'rpc.server.duration%' ORDER BY type, value")
    assert summ == [dict(name="rpc.server.duration_count", labels=[], value=100.0, type="summary_count"),
                    dict(name="rpc.server.duration", labels=[("quantile", "0.5")], value=0.12, type="summary_quantile"),
                    dict(name="rpc.server.duration", labels=[("quantile", "0.99")], value=1.7, type="summary_quantile"),
                    dict(name="rpc.server.duration_sum", labels=[], value=20.5, type="summary_sum")]


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_files_load_identically(tmp_path, compress, mixed):
    raw = MIXED.read_bytes()
    path = tmp_path / f"mixed.jsonl.{'gz' if compress == 'gzip' else 'zst'}"
    path.write_bytes(gzip.compress(raw) if compress == "gzip" else zstandard.ZstdCompressor().compress(raw))
    plain, _ = mixed
    packed, report = load(path)
    assert report.files[0].format == "otlp_json"
    cols = "* EXCLUDE (source_file)"
    for table in ("spans", "logs", "metrics"):
        assert rows(packed, f"SELECT {cols} FROM {table} ORDER BY ALL") == rows(plain, f"SELECT {cols} FROM {table} ORDER BY ALL")


def test_bad_lines_become_rejects_with_line_numbers():
    case, report = load(BAD)
    got = rows(case, "SELECT source_line, target_table, reason_code, reason FROM rejects ORDER BY source_line, reason")
    assert [(r["source_line"], r["target_table"], r["reason_code"]) for r in got] == [
        (1, "spans", "missing_field"), (1, "spans", "bad_id"), (1, "spans", "bad_value"), (1, "spans", "bad_value"),
        (2, "spans", "invalid_json"), (4, "spans", "wrong_shape"),
        (5, "logs", "bad_time"), (5, "logs", "bad_id"),
        (6, "metrics", "bad_value"), (6, "metrics", "missing_field")]
    reasons = [r["reason"] for r in got]
    assert reasons[0] == "span has no trace id"
    assert reasons[1].startswith("span id is not 1-16 hex digits") and "xyz-not-an-id" in reasons[1]
    assert reasons[2:4] == ["unknown span kind: 9", "unknown span kind: SPAN_KIND_BOGUS"]
    assert "not valid JSON" in reasons[4] and "resourceSpans" in reasons[5]
    assert "not-hex!" in reasons[7]
    assert "2 bucketCounts for 2 explicitBounds" in reasons[8] and "queue.depth" in reasons[9]
    raw = rows(case, "SELECT raw FROM rejects WHERE reason_code = 'bad_id' AND target_table = 'spans'")[0]["raw"]
    assert json.loads(raw)["spanId"] == "xyz-not-an-id"
    f = report.files[0]
    assert (f.rows_loaded, f.rows_rejected, f.records_read) == (3, 10, 13)
    assert rows(case, "SELECT records_read, rows_loaded, rows_rejected FROM files") == [
        dict(records_read=13, rows_loaded=3, rows_rejected=10)]


def test_strict_mode_names_file_and_line():
    case = forensics.open_case()
    with pytest.raises(StrictModeError) as err:
        case.load(BAD, strict=True)
    assert err.value.path == str(BAD) and err.value.line == 1
    assert str(BAD) in str(err.value) and "line 1" in str(err.value)
    assert case.tables()["spans"] == 0 and case.tables()["rejects"] == 0  # the file's load was rolled back


def test_sniffing(tmp_path):
    assert sniff(str(TRACES)) == "otlp_json" and sniff(str(PRETTY)) == "otlp_json" and sniff(str(MIXED)) == "otlp_json"
    # a collector line longer than the 64 KiB sniff head
    big = json.loads(TRACES.read_text().splitlines()[0])
    span = big["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": "padding", "value": {"stringValue": "x" * 100_000}})
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big) + "\n")
    assert sniff(str(path)) == "otlp_json"
    case, _ = load(path)
    assert rows(case, "SELECT length(attributes['padding']) AS n FROM spans WHERE span_id = 'eee19b7ec3c1b174'") == [{"n": 100_000}]

    def head(text: str) -> Head:
        return Head("x.json", text.encode(), complete=True)

    assert _sniff(head('{"data": [{"traceID": "abc", "spans": []}]}')) == 0.0  # Jaeger
    assert _sniff(head('[{"traceId": "abc", "id": "def", "localEndpoint": {}}]')) == 0.0  # Zipkin
    assert _sniff(head('{"level": "info", "msg": "resourceSpans"}\n')) == 0.0  # a JSON log line
    assert _sniff(head('{"kind": "EventList", "items": []}')) == 0.0


def test_json_array_of_requests_and_corrupt_first_line(tmp_path, mixed):
    plain, _ = mixed
    reqs = [json.loads(line) for line in MIXED.read_text().splitlines()]
    for name, text in (("slurp.json", json.dumps(reqs)), ("slurp_pretty.json", json.dumps(reqs, indent=1))):
        (tmp_path / name).write_text(text)
        case, report = load(tmp_path / name)
        assert report.files[0].format == "otlp_json" and report.files[0].rows_rejected == 0
        assert report.files[0].by_table == {"spans": 5, "logs": 4, "metrics": 20}
        cols = "* EXCLUDE (source_file, source_line, source_offset)"
        assert rows(case, f"SELECT {cols} FROM logs ORDER BY ALL") == rows(plain, f"SELECT {cols} FROM logs ORDER BY ALL")
    corrupt = tmp_path / "corrupt_first.jsonl"
    corrupt.write_text('\x7b"resourceSp\n' + MIXED.read_text())
    assert sniff(str(corrupt)) == "otlp_json"
    case, report = load(corrupt)
    assert report.files[0].rows_loaded == 29
    assert rows(case, "SELECT source_line, reason_code FROM rejects") == [dict(source_line=1, reason_code="invalid_json")]


def test_bom_crlf_and_unpadded_base64(tmp_path):
    """Windows-edited file (BOM, CRLF) with ids base64-encoded without '=' padding (Go RawStdEncoding)."""
    span = {"traceId": "W47/95gDgQPSabYzgT/GDA", "spanId": "7uGbfsPBsXQ", "name": "GET /search", "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": 1771408800123456789, "endTimeUnixNano": 1.7714088001334568e18}
    req = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "catalog-service"}}]},
                              "scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "windows.json"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(req) + "\r\n").encode() * 2)
    assert sniff(str(path)) == "otlp_json"
    case, report = load(path)
    assert report.files[0].rows_rejected == 0
    got = rows(case, "SELECT trace_id, span_id, parent_span_id, start_time, source_line FROM spans ORDER BY source_line")
    assert got == [dict(trace_id=TA, span_id="eee19b7ec3c1b174", parent_span_id=None, start_time=t(123.456), source_line=n)
                   for n in (1, 2)]
    # a time in exponent notation keeps what a double can hold (here ~10 ms, so rounding below 1 us is not asserted)
    assert abs(rows(case, "SELECT duration_ms FROM spans LIMIT 1")[0]["duration_ms"] - 10.0) < 0.001


def test_pre_1_0_instrumentation_library_keys(tmp_path):
    """Collectors before v0.50 wrote instrumentationLibrarySpans/Logs with instrumentationLibrary."""
    lib = {"name": "io.opentelemetry.jdbc", "version": "1.9.0"}
    spans = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "inventory-service"}}]},
             "instrumentationLibrarySpans": [{"instrumentationLibrary": lib, "spans": [
                 {"traceId": TA, "spanId": "0102030405060708", "name": "SELECT", "kind": "SPAN_KIND_CLIENT",
                  "startTimeUnixNano": "1771408800141000000", "endTimeUnixNano": "1771408800171000000",
                  "status": {"code": "STATUS_CODE_OK", "deprecatedCode": "DEPRECATED_STATUS_CODE_OK"}}]}]}]}
    logs = {"resourceLogs": [{"resource": {}, "instrumentationLibraryLogs": [{"instrumentationLibrary": lib, "logs": [],
            "logRecords": [{"timeUnixNano": "1771408800160000000", "severityNumber": 13, "name": "legacy",
                            "body": {"stringValue": "pool exhausted"}}]}]}]}
    path = tmp_path / "old-collector.json"
    path.write_text(json.dumps(spans) + "\n" + json.dumps(logs) + "\n")
    case, report = load(path)
    assert report.files[0].rows_rejected == 0
    assert rows(case, "SELECT service, name, kind, status, scope_name, scope_version, duration_ms FROM spans") == [
        dict(service="inventory-service", name="SELECT", kind="client", status="ok", scope_name="io.opentelemetry.jdbc",
             scope_version="1.9.0", duration_ms=30.0)]
    assert rows(case, "SELECT time, service, severity, body, source_line FROM logs") == [
        dict(time=t(160), service=None, severity="warn", body="pool exhausted", source_line=2)]


def test_duplicate_and_keyless_attributes(tmp_path):
    """Map keys must be unique: the first of duplicate keys wins, entries without a key are dropped."""
    attrs = [{"key": "http.route", "value": {"stringValue": "/a"}}, {"value": {"stringValue": "no key"}},
             {"key": "http.route", "value": {"stringValue": "/b"}}, {"key": "n", "value": {"intValue": "1"}}]
    req = {"resourceSpans": [{"resource": {"attributes": attrs}, "scopeSpans": [{"spans": [
        {"traceId": TA, "spanId": "eee19b7ec3c1b174", "name": "x", "startTimeUnixNano": "1771408800000000000",
         "attributes": attrs, "events": [{"name": "e", "attributes": attrs}]}]}]}]}
    path = tmp_path / "dups.json"
    path.write_text(json.dumps(req) + "\n")
    case, report = load(path)
    assert report.files[0].rows_rejected == 0
    got = rows(case, "SELECT attributes, resource_attributes, http_route, events, end_time, duration_ms FROM spans")[0]
    assert got["attributes"] == got["resource_attributes"] == [("http.route", "/a"), ("n", "1")]
    assert got["http_route"] == "/a" and got["end_time"] is None and got["duration_ms"] is None
    assert json.loads(got["events"]) == [{"time": None, "name": "e", "attributes": {"http.route": "/a", "n": "1"}}]
