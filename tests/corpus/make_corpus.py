"""Malformed-input corpus: small valid seeds per format and deterministic mutations of them.

The corpus is generated, never hand-pasted, and it is generated at test time into a temporary
directory (``tests/test_corpus.py``) so the repository stays small (one case holds a 10 MB
attribute value). To look at the files, write them out::

    .venv/bin/python tests/corpus/make_corpus.py /tmp/corpus      # one file per case + manifest.json

Each :class:`CorpusCase` names the loader format it is meant for (``format``), the file name
(its extension matters to nobody but humans: compression is sniffed from magic bytes) and
whether every non-blank line of the file is exactly one record (``line_records``), which lets
the test check that each such line is either loaded or rejected.

Seeds are shaped like the loaders' own test data (tests/data/*): an OTLP collector file-exporter
line, a Jaeger ``/api/traces`` envelope, Zipkin v2 span arrays, zap JSON lines, Go kit logfmt,
log4j-style plain text, CRI container lines, node_exporter text, a ``query_range`` response,
``kubectl get events/pods -o json``, a deploy log in CSV and JSON lines.
"""
from __future__ import annotations

import copy
import gzip
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

T0_NS = 1771408800_000_000_000  # 2026-02-18T10:00:00Z
T0_US = T0_NS // 1000
TRACE = "5b8efff798038103d269b633813fc60c"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BIG = 10 * 1024 * 1024  # the "10 MB attribute value"
DEEP = 10_000  # nesting levels of the deeply nested JSON case
LONG = 100 * 1024  # a first record longer than the 64 KiB sniffing head (a stack trace on line 1)
DEEPEST = 1_000_000  # nesting levels far beyond any recursive parser's stack
SMALL_LINE_LIMIT = 64 * 1024  # ``max_line_bytes`` of the over-long-line cases (a 100 KiB line)
#: the reject a deeply nested line after a valid document gets (None: the line is itself a record's
#: reject of another kind): a JSON array where Zipkin spans or a second Jaeger document was expected
#: is valid JSON of the wrong shape; the others find no parseable document
DEEP_REJECT = {"jaeger": "wrong_shape", "zipkin": "wrong_shape", "k8s_events": "invalid_json", "prom_api": "invalid_json"}


@dataclass(frozen=True)
class CorpusCase:
    """One malformed (or control) input file."""

    name: str
    format: str | None
    filename: str
    data: bytes
    line_records: bool = False
    #: loader options for this case (e.g. a small ``max_line_bytes``)
    options: tuple[tuple[str, Any], ...] = ()
    #: load without forcing the format: sniffing must find ``format`` (None: no format fits)
    sniffed: bool = False
    #: a reason code the file's rejects must include (the case is about that reject)
    expect_reject: str | None = None

    @property
    def may_hold_no_record(self) -> bool:
        """Well-formed but empty by design (``[]`` of spans, a CSV header alone): reading 0 is right."""
        return self.name.rsplit("/", 1)[-1] in NO_RECORDS


#: mutations whose output legitimately holds no record
NO_RECORDS = {"empty", "blank_lines", "empty_spans", "header_only"}

#: cases that reveal loader bugs not fixed here (the loader has someone else's uncommitted
#: changes, or the fix is not minimal): name -> the problem. tests/test_corpus.py marks them xfail.
KNOWN_BUGS = {
}


# -- seeds ----------------------------------------------------------------------------------------

def _attr(key: str, value: Any) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def otlp_span(span_id: str, parent: str, name: str, start_ms: int, dur_ms: int, **extra: Any) -> dict:
    """One OTLP/JSON span as the collector's file exporter writes it (nanosecond strings)."""
    span = {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "flags": 257, "name": name, "kind": 2,
            "startTimeUnixNano": str(T0_NS + start_ms * 1_000_000),
            "endTimeUnixNano": str(T0_NS + (start_ms + dur_ms) * 1_000_000),
            "attributes": [_attr("http.request.method", "GET"), _attr("http.response.status_code", 200)],
            "status": {}}
    span.update(extra)
    return span


def otlp_traces_doc(spans: list[dict], service: str = "catalog-service") -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [_attr("service.name", service), _attr("service.version", "1.8.0")]},
        "scopeSpans": [{"scope": {"name": "io.opentelemetry.tomcat-10.0", "version": "2.11.0"}, "spans": spans}]}]}


def otlp_seed_spans() -> list[dict]:
    return [otlp_span("eee19b7ec3c1b174", "", "GET /search", 0, 400),
            otlp_span("0d30000000000001", "eee19b7ec3c1b174", "GET /items", 5, 20, kind=3),
            otlp_span("0d30000000000002", "eee19b7ec3c1b174", "GET /items", 30, 20, kind=3)]


def _jl(docs: list[Any]) -> bytes:
    return b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in docs)


def seed_otlp_json() -> bytes:
    logs = {"resourceLogs": [{"resource": {"attributes": [_attr("service.name", "catalog-service")]}, "scopeLogs": [{
        "scope": {"name": "app"}, "logRecords": [
            {"timeUnixNano": str(T0_NS + 1000), "severityNumber": 17, "severityText": "ERROR",
             "body": {"stringValue": "inventory call failed"}, "traceId": TRACE, "spanId": "0d30000000000001"}]}]}]}
    return _jl([otlp_traces_doc(otlp_seed_spans()), otlp_traces_doc([otlp_span("1d30000000000003", "", "GET /health", 900, 1)]), logs])


def seed_otlp_proto() -> bytes:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = copy.deepcopy(otlp_traces_doc(otlp_seed_spans()))
    return json_format.ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()


def jaeger_span(span_id: str, parent: str | None, name: str, start_ms: int, dur_ms: int, **extra: Any) -> dict:
    refs = [{"refType": "CHILD_OF", "traceID": TRACE[16:], "spanID": parent}] if parent else []
    span = {"traceID": TRACE[16:], "spanID": span_id, "flags": 1, "operationName": name, "references": refs,
            "startTime": T0_US + start_ms * 1000, "duration": dur_ms * 1000,
            "tags": [{"key": "span.kind", "type": "string", "value": "server" if parent is None else "client"},
                     {"key": "http.status_code", "type": "int64", "value": 200}],
            "logs": [], "processID": "p1", "warnings": None}
    span.update(extra)
    return span


def jaeger_doc(spans: list[dict]) -> dict:
    return {"data": [{"traceID": TRACE[16:], "spans": spans,
                      "processes": {"p1": {"serviceName": "catalog-service",
                                           "tags": [{"key": "service.version", "type": "string", "value": "1.8.0"}]}},
                      "warnings": None}], "total": 0, "limit": 0, "offset": 0, "errors": None}


def jaeger_seed_spans() -> list[dict]:
    return [jaeger_span("eee19b7ec3c1b174", None, "GET /search", 0, 400),
            jaeger_span("0d30000000000001", "eee19b7ec3c1b174", "GET /items", 5, 20),
            jaeger_span("0d30000000000002", "eee19b7ec3c1b174", "GET /items", 30, 20)]


def seed_jaeger() -> bytes:
    return json.dumps(jaeger_doc(jaeger_seed_spans()), indent=2).encode()


def zipkin_span(span_id: str, parent: str | None, name: str, start_ms: int, dur_ms: int, **extra: Any) -> dict:
    span = {"traceId": TRACE, "id": span_id, "name": name, "timestamp": T0_US + start_ms * 1000,
            "duration": dur_ms * 1000, "kind": "SERVER" if parent is None else "CLIENT",
            "localEndpoint": {"serviceName": "catalog-service", "ipv4": "10.0.0.7"},
            "tags": {"http.method": "GET", "http.status_code": "200"}}
    if parent:
        span["parentId"] = parent
    span.update(extra)
    return span


def zipkin_seed_spans() -> list[dict]:
    return [zipkin_span("eee19b7ec3c1b174", None, "get /search", 0, 400),
            zipkin_span("0d30000000000001", "eee19b7ec3c1b174", "get /items", 5, 20),
            zipkin_span("0d30000000000002", "eee19b7ec3c1b174", "get /items", 30, 20)]


def seed_zipkin() -> bytes:
    return json.dumps(zipkin_seed_spans()).encode()


def json_log(i: int, **extra: Any) -> dict:
    rec = {"level": ["info", "warn", "error"][i % 3], "ts": 1771409553.123456 + i, "logger": "catalog",
           "caller": "search/handler.go:87", "msg": f"search served {i}", "items_returned": 50,
           "trace_id": TRACE, "span_id": "eee19b7ec3c1b174"}
    rec.update(extra)
    return rec


def seed_json_logs() -> bytes:
    return _jl([json_log(i) for i in range(5)])


def seed_logfmt() -> bytes:
    return b"".join(
        f'level=info ts=2026-02-18T10:12:3{i}.123456789Z caller=main.go:42 service=catalog-service '
        f'msg="search served {i}" items_returned=50 trace_id={TRACE}\n'.encode() for i in range(5))


def seed_plain() -> bytes:
    return b"".join(
        f"2026-02-18 10:12:3{i},123 [http-nio-8080-exec-{i}] {'WARN ' if i % 2 else 'INFO '} "
        f"com.shop.catalog.SearchController - slow search {i}: 2500 ms\n".encode() for i in range(5))


def seed_container() -> bytes:
    return b"".join(
        f'2026-02-18T10:12:3{i}.123456789Z stdout F {{"level":"info","ts":1771409553.1,"msg":"served {i}"}}\n'.encode()
        for i in range(5))


def seed_prometheus() -> bytes:
    return (b"# HELP http_requests_total The total number of HTTP requests.\n"
            b"# TYPE http_requests_total counter\n"
            b'http_requests_total{method="post",code="200",job="catalog-service"} 1027 1771409400000\n'
            b'http_requests_total{method="post",code="400",job="catalog-service"}    3 1771409400000\n'
            b"# TYPE http_request_duration_seconds histogram\n"
            b'http_request_duration_seconds_bucket{le="0.05",service="catalog-service"} 24054\n'
            b'http_request_duration_seconds_bucket{le="+Inf",service="catalog-service"} 144320\n'
            b'http_request_duration_seconds_sum{service="catalog-service"} 53423\n'
            b'http_request_duration_seconds_count{service="catalog-service"} 144320\n'
            b"go_goroutines 42\n")


def prom_api_doc(**data: Any) -> dict:
    body = {"resultType": "matrix", "result": [
        {"metric": {"__name__": "http_requests_total", "job": "catalog-service", "code": "500"},
         "values": [[1771409400, "3"], [1771409415.5, "7"], [1771409430, "9"]]},
        {"metric": {"__name__": "up", "job": "inventory-service"}, "values": [[1771409400, "1"], [1771409415, "0"]]}]}
    body.update(data)
    return {"status": "success", "data": body}


def seed_prom_api() -> bytes:
    return json.dumps(prom_api_doc(), indent=1).encode()


def seed_metrics_csv() -> bytes:
    return (b"timestamp,metric,value,service,region\n"
            b"2026-02-18T10:10:00Z,http_server_duration_p99_ms,412.5,catalog-service,eu-west-1\n"
            b"2026-02-18T10:11:00Z,http_server_duration_p99_ms,2510,catalog-service,eu-west-1\n"
            b"2026-02-18T10:12:00Z,http_server_duration_p99_ms,2490,catalog-service,eu-west-1\n"
            b"2026-02-18T10:12:00Z,http_server_requests,17,inventory-service,eu-west-1\n")


def k8s_event(i: int, **extra: Any) -> dict:
    ev = {"apiVersion": "v1", "kind": "Event", "count": 1, "firstTimestamp": f"2026-02-18T10:05:0{i}Z",
          "lastTimestamp": f"2026-02-18T10:05:0{i}Z", "type": "Warning" if i % 2 else "Normal",
          "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": f"catalog-service-7d9f8b6c5-x2x9{i}",
                             "namespace": "prod"},
          "metadata": {"name": f"catalog-service.17f4a6b1c2d3e4f{i}", "namespace": "prod",
                       "creationTimestamp": f"2026-02-18T10:05:0{i}Z"},
          "reason": "BackOff" if i % 2 else "Pulled", "message": f"event {i}",
          "source": {"component": "kubelet"}}
    ev.update(extra)
    return ev


def seed_k8s_events() -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [k8s_event(i) for i in range(3)],
                       "metadata": {"resourceVersion": ""}}, indent=4).encode()


def k8s_pod(i: int, **extra: Any) -> dict:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"catalog-service-7d9f8b6c5-x2x9{i}", "namespace": "prod",
                        "creationTimestamp": "2026-02-18T10:05:02Z",
                        "labels": {"app.kubernetes.io/name": "catalog-service"}},
           "spec": {"containers": [{"name": "catalog", "image": "registry.example.com/shop/catalog-service:1.8.0"}],
                    "nodeName": "node-1"},
           "status": {"phase": "Running", "startTime": "2026-02-18T10:05:02Z", "containerStatuses": [{
               "name": "catalog", "image": "registry.example.com/shop/catalog-service:1.8.0", "ready": False,
               "restartCount": 3, "started": False,
               "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                            "startedAt": "2026-02-18T10:11:02Z", "finishedAt": "2026-02-18T10:12:29Z"}},
               "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}}
    pod.update(extra)
    return pod


def seed_k8s_pods() -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [k8s_pod(i) for i in range(2)],
                       "metadata": {"resourceVersion": ""}}, indent=4).encode()


def deploy(i: int, **extra: Any) -> dict:
    rec = {"time": f"2026-02-18T10:0{i}:00.250Z", "service": "catalog-service", "version": f"1.8.{i}",
           "kind": "deploy", "description": f"canary {i}"}
    rec.update(extra)
    return rec


def seed_deploy_jsonl() -> bytes:
    return _jl([deploy(i) for i in range(4)])


def seed_deploy_csv() -> bytes:
    return (b"time,service,version,kind,description,author\n"
            b"2026-02-18T09:40:00Z,inventory-service,2.3.1,deploy,routine dependency bump,ci-bot\n"
            b'2026-02-18T10:05:00Z,catalog-service,1.8.0,deploy,"Search: per-item lookup (""faster"")",alice\n'
            b"2026-02-18T10:30:00Z,catalog-service,1.7.9,rollback,revert,bob\n")


def seed_spans_table() -> bytes:
    """A labelled dataset's span dump: one span per CSV row, epoch-ms start, duration in ms."""
    rows = [("a", "", "frontend", "GET /checkout", 0, 120, "false"), ("b", "a", "frontend", "GET /cart", 5, 40, "false"),
            ("c", "b", "cart-7d9f8b6c5-x2x9z", "/cart/items", 10, 30, "true")]
    body = "".join(f"{TRACE},{sid * 16},{(pid * 16) or -1},{svc},{op},{T0_US // 1000 + start},{dur},{err}\n"
                   for sid, pid, svc, op, start, dur, err in rows)
    return ("TraceID,SpanID,ParentID,ServiceName,OperationName,StartTime,Duration,IsError\n" + body).encode()


def canonical_spans_parquet(**columns: Any) -> bytes:
    """A spans table as ``forensics export`` writes it (canonical columns; ``columns`` replace some,
    None drops one)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 3
    cols: dict[str, Any] = {
        "trace_id": [TRACE] * n, "span_id": [f"{i + 1:016x}" for i in range(n)],
        "parent_span_id": [None] + [f"{i:016x}" for i in range(1, n)], "service": ["catalog-service"] * n,
        "name": ["GET /search", "SELECT items", "GET /stock"],
        "start_time": pa.array([T0_US + 1000 * i for i in range(n)], pa.timestamp("us", "UTC")),
        "end_time": pa.array([T0_US + 1000 * i + 500 for i in range(n)], pa.timestamp("us", "UTC")),
        "duration_ms": [0.5] * n, "kind": ["server", "client", "client"], "status": ["unset", "unset", "error"]}
    cols.update(columns)
    out = io.BytesIO()
    cols = {k: v for k, v in cols.items() if v is not None}
    pq.write_table(pa.table(cols), out)
    return out.getvalue()


def seed_canonical_table() -> bytes:
    return canonical_spans_parquet()


def seed_jaeger_v3() -> bytes:
    return json.dumps({"result": otlp_traces_doc(otlp_seed_spans())}).encode()


#: (seed name, format, extension, builder, every non-blank line is one record)
SEEDS: list[tuple[str, str, str, Callable[[], bytes], bool]] = [
    ("otlp_json", "otlp_json", "jsonl", seed_otlp_json, False),
    ("otlp_proto", "otlp_proto", "pb", seed_otlp_proto, False),
    ("jaeger", "jaeger_json", "json", seed_jaeger, False),
    ("jaeger_v3", "jaeger_api_v3", "json", seed_jaeger_v3, False),
    ("zipkin", "zipkin_json", "json", seed_zipkin, False),
    ("json_logs", "json_logs", "jsonl", seed_json_logs, True),
    ("logfmt", "logfmt", "logfmt", seed_logfmt, True),
    ("plain_logs", "plain_logs", "log", seed_plain, False),
    ("container_logs", "container_logs", "log", seed_container, False),
    ("prometheus", "prometheus_text", "prom", seed_prometheus, False),
    ("prom_api", "prom_api_json", "json", seed_prom_api, False),
    ("metrics_csv", "metrics_csv", "csv", seed_metrics_csv, False),
    ("k8s_events", "k8s_events", "json", seed_k8s_events, False),
    ("k8s_pods", "k8s_pods", "json", seed_k8s_pods, False),
    ("deploy_jsonl", "deploy_log", "jsonl", seed_deploy_jsonl, True),
    ("deploy_csv", "deploy_log", "csv", seed_deploy_csv, False),
    ("spans_table", "spans_table", "csv", seed_spans_table, False),
]
#: binary seeds: only the mutations that keep meaning for a columnar file
BINARY_SEEDS: list[tuple[str, str, str, Callable[[], bytes]]] = [
    ("canonical_table", "canonical_table", "parquet", seed_canonical_table),
]
BINARY_MUTATIONS = ("valid", "empty", "truncated_third", "truncated_last_byte", "nul_bytes", "gzip", "gzip_ends_early",
                    "zstd_garbage", "random_bytes", "duplicated", "trailing_garbage")


# -- generic byte mutations (every seed) ----------------------------------------------------------

def _middle_line_start(data: bytes) -> int:
    lines = data.split(b"\n")
    if len(lines) < 3:
        return len(data) // 2
    return len(b"\n".join(lines[: len(lines) // 2])) + 1


def _rng(name: str) -> random.Random:
    return random.Random(name)


def generic_mutations(seed: str, data: bytes) -> Iterator[tuple[str, bytes, bool]]:
    """(mutation, bytes, line structure kept) for any seed."""
    mid = _middle_line_start(data)
    yield "valid", data, True
    yield "empty", b"", True
    yield "blank_lines", b"\n \n\t\n", True
    yield "truncated_third", data[: len(data) // 3], False
    yield "truncated_two_thirds", data[: 2 * len(data) // 3], False
    yield "truncated_last_byte", data[:-1], False
    yield "truncated_mid_line", data[: mid + 7], False
    yield "invalid_utf8", data[:mid] + b"\xff\xfe\xc3\x28" + data[mid:], True
    yield "nul_bytes", data[:mid] + b"\x00\x00" + data[mid:], True
    yield "bom", b"\xef\xbb\xbf" + data, True
    yield "crlf", data.replace(b"\n", b"\r\n"), True
    yield "gzip", gzip.compress(data, mtime=0), True
    gz = gzip.compress(data * 20, mtime=0)
    yield "gzip_ends_early", gz[: len(gz) * 2 // 3], False
    yield "zstd_garbage", ZSTD_MAGIC + _rng(seed).randbytes(300), False
    yield "random_bytes", _rng(seed + "random").randbytes(2048), False
    yield "duplicated", data + (b"" if data.endswith(b"\n") else b"\n") + data, False
    yield "trailing_garbage", data + b"\n}}]] not a record \x01\n", False
    yield "json_array_line", data + b"\n[1, 2, {\"a\": 3}]\n", False
    yield "deep_nesting", data + b"\n" + b"[" * DEEP + b"]" * DEEP + b"\n", False


def _json_spans(fmt_doc: Callable[[list[dict]], Any], spans: list[dict]) -> bytes:
    return json.dumps(fmt_doc(spans)).encode()


# -- format-specific mutations --------------------------------------------------------------------

def _set(obj: dict, path: str, value: Any) -> dict:
    """Copy of ``obj`` with ``path`` (dots; '-' deletes) set."""
    out = copy.deepcopy(obj)
    keys = path.split(".")
    cur = out
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    last: Any = int(keys[-1]) if isinstance(cur, list) else keys[-1]
    if value is _DELETE:
        del cur[last]
    else:
        cur[last] = value
    return out


_DELETE = object()


def span_mutations(key_id: str, key_parent: str, key_start: str, key_name: str, *, time_scale: int) -> list[tuple[str, str, Any]]:
    """(mutation, field path inside one span, new value) shared by the three span formats."""
    return [
        ("id_short", key_id, "abc"),
        ("id_long", key_id, "ab" * 20),
        ("id_bad_alphabet", key_id, "zz19b7ec3c1b17zz"),
        ("id_as_number", key_id, 12345),
        ("id_missing", key_id, _DELETE),
        ("id_null", key_id, None),
        ("parent_bad_alphabet", key_parent, "not-hex-at-all!!"),
        ("start_float", key_start, 1771408800.5),
        ("start_string_word", key_start, "yesterday"),
        ("start_negative", key_start, -5 * time_scale),
        ("start_1970", key_start, 1 * time_scale),
        ("start_2200", key_start, 7258118400 * time_scale),
        ("start_object", key_start, {"seconds": 1}),
        ("start_missing", key_start, _DELETE),
        ("name_as_object", key_name, {"x": 1}),
        ("name_missing", key_name, _DELETE),
        ("huge_name", key_name, "n" * BIG),
    ]


def trace_structure_mutations(spans: list[dict], key_id: str, set_parent: Callable[[dict, str | None], dict]) -> Iterator[tuple[str, list[dict]]]:
    """Duplicate spans, a parent cycle and a parent that is absent."""
    yield "duplicate_span", spans + [copy.deepcopy(spans[1])]
    a, b = spans[1][key_id], spans[2][key_id]
    yield "parent_cycle", [spans[0], set_parent(spans[1], b), set_parent(spans[2], a)]
    yield "self_parent", [spans[0], set_parent(spans[1], spans[1][key_id]), spans[2]]
    yield "parent_absent", [spans[0], set_parent(spans[1], "ffffffffffffffff"), spans[2]]
    yield "only_orphans", [set_parent(s, "ffffffffffffffff") for s in spans[1:]]
    yield "empty_spans", []


def otlp_specific() -> Iterator[tuple[str, bytes]]:
    spans = otlp_seed_spans()
    doc = otlp_traces_doc

    def line(sp: list[dict]) -> bytes:
        return _jl([doc(sp)])

    for name, path, value in span_mutations("spanId", "parentSpanId", "startTimeUnixNano", "name", time_scale=10 ** 9):
        yield name, line([spans[0], _set(spans[1], path, value), spans[2]])
    yield from ((n, line(s)) for n, s in trace_structure_mutations(
        spans, "spanId", lambda s, p: _set(s, "parentSpanId", p or "")))
    bad_attr = [{"key": "http.response.status_code", "value": {"intValue": {"nested": 1}}}]
    yield "intvalue_object", line([spans[0], _set(spans[1], "attributes", bad_attr), spans[2]])
    yield "intvalue_word", line([spans[0], _set(spans[1], "attributes", [_attr("x", "1")] + [
        {"key": "n", "value": {"intValue": "twelve"}}]), spans[2]])
    yield "attributes_as_dict", line([spans[0], _set(spans[1], "attributes", {"k": "v"}), spans[2]])
    yield "attribute_10mb", line([spans[0], _set(spans[1], "attributes", [_attr("big", "x" * BIG)]), spans[2]])
    yield "trace_id_short", line([spans[0], _set(spans[1], "traceId", "5b8e"), spans[2]])
    yield "trace_id_base64", line([spans[0], _set(spans[1], "traceId", "W47/95gDgQPSabYzgT/GDA=="), spans[2]])
    yield "kind_99", line([spans[0], _set(spans[1], "kind", 99), spans[2]])
    yield "kind_string", line([spans[0], _set(spans[1], "kind", "SPAN_KIND_CLIENT"), spans[2]])
    yield "status_code_word", line([spans[0], _set(spans[1], "status", {"code": "broken"}), spans[2]])
    yield "end_before_start", line([spans[0], _set(spans[1], "endTimeUnixNano", "1"), spans[2]])
    yield "start_in_microseconds", line([spans[0], _set(spans[1], "startTimeUnixNano", str(T0_US)), spans[2]])
    yield "resource_spans_object", _jl([{"resourceSpans": doc(spans)["resourceSpans"][0]}])
    yield "spans_object", _jl([_set(doc(spans), "resourceSpans.0.scopeSpans.0.spans", spans[0])])
    yield "resource_null", _jl([_set(doc(spans), "resourceSpans.0.resource", None)])
    yield "top_level_array", _jl([[doc(spans)]])
    yield "unknown_top_key", _jl([{"somethingElse": []}]) + line(spans)
    yield "pretty_printed_truncated", json.dumps(doc(spans), indent=2).encode()[:-40]


def jaeger_specific() -> Iterator[tuple[str, bytes]]:
    spans = jaeger_seed_spans()

    def set_parent(s: dict, p: str | None) -> dict:
        return _set(s, "references", [{"refType": "CHILD_OF", "traceID": TRACE[16:], "spanID": p}] if p else [])

    def enc(sp: list[dict]) -> bytes:
        return _json_spans(jaeger_doc, sp)

    for name, path, value in span_mutations("spanID", "references", "startTime", "operationName", time_scale=10 ** 6):
        if name == "parent_bad_alphabet":
            yield name, enc([spans[0], set_parent(spans[1], "not-hex-at-all!!"), spans[2]])
        else:
            yield name, enc([spans[0], _set(spans[1], path, value), spans[2]])
    yield from ((n, enc(s)) for n, s in trace_structure_mutations(spans, "spanID", set_parent))
    yield "duration_negative", enc([spans[0], _set(spans[1], "duration", -1000), spans[2]])
    yield "duration_string", enc([spans[0], _set(spans[1], "duration", "20ms"), spans[2]])
    yield "process_unknown", enc([spans[0], _set(spans[1], "processID", "p9"), spans[2]])
    yield "tag_value_object", enc([spans[0], _set(spans[1], "tags", [{"key": "k", "type": "int64", "value": {"a": 1}}]), spans[2]])
    yield "tags_as_dict", enc([spans[0], _set(spans[1], "tags", {"k": "v"}), spans[2]])
    yield "tag_10mb", enc([spans[0], _set(spans[1], "tags", [{"key": "big", "type": "string", "value": "x" * BIG}]), spans[2]])
    yield "trace_id_bad", enc([spans[0], _set(spans[1], "traceID", "xyz"), spans[2]])
    yield "data_object", json.dumps({"data": jaeger_doc(spans)["data"][0]}).encode()
    yield "processes_list", json.dumps(_set(jaeger_doc(spans), "data.0.processes", [])).encode()
    yield "spans_null", json.dumps(_set(jaeger_doc(spans), "data.0.spans", None)).encode()
    yield "start_in_nanoseconds", enc([spans[0], _set(spans[1], "startTime", T0_NS), spans[2]])


def zipkin_specific() -> Iterator[tuple[str, bytes]]:
    spans = zipkin_seed_spans()

    def set_parent(s: dict, p: str | None) -> dict:
        return _set(s, "parentId", p) if p else _set(s, "parentId", _DELETE) if "parentId" in s else s

    def enc(sp: list[dict]) -> bytes:
        return json.dumps(sp).encode()

    for name, path, value in span_mutations("id", "parentId", "timestamp", "name", time_scale=10 ** 6):
        yield name, enc([spans[0], _set(spans[1], path, value), spans[2]])
    yield from ((n, enc(s)) for n, s in trace_structure_mutations(spans, "id", set_parent))
    yield "timestamp_milliseconds", enc([spans[0], _set(spans[1], "timestamp", T0_US // 1000), spans[2]])
    yield "duration_negative", enc([spans[0], _set(spans[1], "duration", -5), spans[2]])
    yield "local_endpoint_string", enc([spans[0], _set(spans[1], "localEndpoint", "catalog"), spans[2]])
    yield "tags_as_list", enc([spans[0], _set(spans[1], "tags", ["a", "b"]), spans[2]])
    yield "tag_10mb", enc([spans[0], _set(spans[1], "tags", {"big": "x" * BIG}), spans[2]])
    yield "kind_unknown", enc([spans[0], _set(spans[1], "kind", "SIDEWAYS"), spans[2]])
    yield "trace_id_bad", enc([spans[0], _set(spans[1], "traceId", "not a trace"), spans[2]])
    yield "object_not_array", json.dumps({"spans": spans}).encode()
    yield "array_of_numbers", b"[1, 2, 3]"
    yield "ndjson_mixed", _jl([spans[0], [spans[1]], "string", spans[2]])


def json_logs_specific() -> Iterator[tuple[str, bytes]]:
    recs = [json_log(i) for i in range(5)]

    def with_mid(**kw: Any) -> bytes:
        return _jl(recs[:2] + [json_log(2, **kw)] + recs[3:])

    yield "ts_string_word", with_mid(ts="yesterday")
    yield "ts_negative", with_mid(ts=-1.5)
    yield "ts_1970", with_mid(ts=0)
    yield "ts_2200", with_mid(ts=7258118400.0)
    yield "ts_nanoseconds", with_mid(ts=1771409553123456789)
    yield "ts_milliseconds", with_mid(ts=1771409553123)
    yield "ts_object", with_mid(ts={"sec": 1})
    yield "ts_missing", _jl(recs[:2] + [{k: v for k, v in json_log(2).items() if k != "ts"}] + recs[3:])
    yield "level_object", with_mid(level={"a": 1})
    yield "msg_array", with_mid(msg=[1, 2])
    yield "msg_10mb", with_mid(msg="m" * BIG)
    yield "trace_id_short", with_mid(trace_id="abc")
    yield "trace_id_bad_alphabet", with_mid(trace_id="zz" * 16)
    yield "line_is_string", _jl(recs[:2] + ["just a string", 42, None, True] + recs[3:])
    yield "line_is_array", _jl(recs[:2] + [[json_log(2)]] + recs[3:])
    yield "unterminated_string", _jl(recs[:2]) + b'{"level":"info","msg":"oops\n' + _jl(recs[3:])
    yield "duplicate_keys", _jl(recs[:2]) + b'{"level":"info","level":"error","msg":"dup","ts":1771409553}\n' + _jl(recs[3:])


def logfmt_specific() -> Iterator[tuple[str, bytes]]:
    good = seed_logfmt().splitlines(keepends=True)

    def mid(line: bytes) -> bytes:
        return b"".join(good[:2] + [line] + good[3:])

    yield "unterminated_quote", mid(b'level=info msg="never closed ts=2026-02-18T10:12:33Z\n')
    yield "key_without_value", mid(b"level=info msg= =x ts=2026-02-18T10:12:33Z\n")
    yield "ts_garbage", mid(b"level=info ts=not-a-time msg=hello\n")
    yield "ts_1970", mid(b"level=info ts=1970-01-01T00:00:00Z msg=hello\n")
    yield "ts_2200", mid(b"level=info ts=2200-01-01T00:00:00Z msg=hello\n")
    yield "ts_epoch_mixed_units", mid(b"level=info ts=1771409553123 msg=millis\n")
    yield "value_10mb", mid(b"level=info msg=" + b"v" * BIG + b"\n")
    yield "not_logfmt", mid(b"this line is not logfmt at all\n")
    yield "only_equals", mid(b"====\n")


def line_format_specific(seed: bytes, bad_lines: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    good = seed.splitlines(keepends=True)
    for name, line in bad_lines.items():
        yield name, b"".join(good[:2] + [line] + good[2:])


def prometheus_specific() -> Iterator[tuple[str, bytes]]:
    yield from line_format_specific(seed_prometheus(), {
        "value_word": b'http_requests_total{code="500"} abc\n',
        "unterminated_labels": b'http_requests_total{code="500" 12\n',
        "unterminated_label_value": b'http_requests_total{code="500} 12\n',
        "timestamp_float": b'http_requests_total{code="500"} 12 1771409400.5\n',
        "timestamp_negative": b'http_requests_total{code="500"} 12 -1000\n',
        "timestamp_2200": b'http_requests_total{code="500"} 12 7258118400000\n',
        "timestamp_1970": b'http_requests_total{code="500"} 12 1\n',
        "no_value": b"http_requests_total\n",
        "bad_metric_name": b'1http{code="500"} 12\n',
        "type_unknown": b"# TYPE go_goroutines sometype\n",
        "huge_label": b'big{v="' + b"x" * BIG + b'"} 1\n',
        "duplicate_sample": b'http_requests_total{method="post",code="200",job="catalog-service"} 1027 1771409400000\n',
    })
    yield "openmetrics_missing_eof", seed_prometheus().replace(b"counter", b"counter") + b"# EOF\nafter_eof 1\n"


def prom_api_specific() -> Iterator[tuple[str, bytes]]:
    base = prom_api_doc()

    def enc(doc: Any) -> bytes:
        return json.dumps(doc).encode()

    yield "values_object", enc(_set(base, "data.result.0.values", {"a": 1}))
    yield "sample_string_time", enc(_set(base, "data.result.0.values.0", ["yesterday", "3"]))
    yield "sample_negative_time", enc(_set(base, "data.result.0.values.0", [-5, "3"]))
    yield "sample_2200", enc(_set(base, "data.result.0.values.0", [7258118400, "3"]))
    yield "sample_value_number", enc(_set(base, "data.result.0.values.0", [1771409400, 3]))
    yield "sample_value_word", enc(_set(base, "data.result.0.values.0", [1771409400, "lots"]))
    yield "sample_short", enc(_set(base, "data.result.0.values.0", [1771409400]))
    yield "sample_time_ms", enc(_set(base, "data.result.0.values.0", [1771409400000, "3"]))
    yield "result_object", enc(_set(base, "data.result", {"metric": {}}))
    yield "metric_missing", enc(_set(base, "data.result.0.metric", _DELETE))
    yield "metric_labels_numbers", enc(_set(base, "data.result.0.metric", {"job": 5}))
    yield "status_error", enc({"status": "error", "errorType": "bad_data", "error": "parse error"})
    yield "vector_value_list", enc({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "a"}, "value": [[1, "2"]]}]}})
    yield "scalar_result", enc({"status": "success", "data": {"resultType": "scalar", "result": [1771409400, "1"]}})


def metrics_csv_specific() -> Iterator[tuple[str, bytes]]:
    seed = seed_metrics_csv()
    yield from line_format_specific(seed, {
        "value_word": b"2026-02-18T10:13:00Z,http_server_requests,lots,catalog-service,eu-west-1\n",
        "time_garbage": b"not-a-time,http_server_requests,1,catalog-service,eu-west-1\n",
        "time_2200": b"2200-01-01T00:00:00Z,http_server_requests,1,catalog-service,eu-west-1\n",
        "time_epoch": b"1771409553,http_server_requests,1,catalog-service,eu-west-1\n",
        "too_few_columns": b"2026-02-18T10:13:00Z,http_server_requests\n",
        "too_many_columns": b"2026-02-18T10:13:00Z,http_server_requests,1,a,b,c,d\n",
        "unterminated_quote": b'2026-02-18T10:13:00Z,"http_server_requests,1,a,b\n',
        "name_empty": b"2026-02-18T10:13:00Z,,1,a,b\n",
    })
    yield "header_only", seed.splitlines(keepends=True)[0]
    yield "no_value_column", b"timestamp,metric,service\n2026-02-18T10:10:00Z,x,catalog\n"


def k8s_specific() -> Iterator[tuple[str, str, bytes]]:
    def wrap(items: Any) -> bytes:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}).encode()

    ev = [k8s_event(i) for i in range(3)]
    yield "k8s_events", "items_object", wrap(ev[0])
    yield "k8s_events", "item_string", wrap([ev[0], "not an event", ev[2]])
    yield "k8s_events", "time_garbage", wrap([ev[0], k8s_event(1, lastTimestamp="soon", firstTimestamp="x"), ev[2]])
    yield "k8s_events", "time_2200", wrap([ev[0], k8s_event(1, lastTimestamp="2200-01-01T00:00:00Z"), ev[2]])
    yield "k8s_events", "involved_object_missing", wrap([ev[0], _set(ev[1], "involvedObject", _DELETE), ev[2]])
    yield "k8s_events", "count_string", wrap([ev[0], k8s_event(1, count="many"), ev[2]])
    yield "k8s_events", "message_10mb", wrap([ev[0], k8s_event(1, message="m" * BIG), ev[2]])
    yield "k8s_events", "no_times", wrap([ev[0], k8s_event(1, lastTimestamp=None, firstTimestamp=None,
                                                            metadata={"name": "x"}), ev[2]])
    yield "k8s_events", "single_event", json.dumps(ev[0]).encode()
    pods = [k8s_pod(i) for i in range(2)]
    yield "k8s_pods", "items_object", wrap(pods[0])
    yield "k8s_pods", "item_number", wrap([pods[0], 7])
    yield "k8s_pods", "status_missing", wrap([pods[0], _set(pods[1], "status", _DELETE)])
    yield "k8s_pods", "restart_count_string", wrap([_set(pods[0], "status.containerStatuses.0.restartCount", "x"), pods[1]])
    yield "k8s_pods", "container_statuses_object", wrap([_set(pods[0], "status.containerStatuses", {"a": 1}), pods[1]])
    yield "k8s_pods", "finished_at_garbage", wrap(
        [_set(pods[0], "status.containerStatuses.0.lastState.terminated.finishedAt", "later"), pods[1]])


def deploy_specific() -> Iterator[tuple[str, bytes]]:
    recs = [deploy(i) for i in range(4)]

    def mid(rec: Any) -> bytes:
        return _jl(recs[:2] + [rec] + recs[2:])

    yield "service_missing", mid({k: v for k, v in deploy(9).items() if k != "service"})
    yield "time_missing", mid({k: v for k, v in deploy(9).items() if k != "time"})
    yield "time_garbage", mid(deploy(9, time="after lunch"))
    yield "time_2200", mid(deploy(9, time="2200-01-01T00:00:00Z"))
    yield "time_negative_epoch", mid(deploy(9, time=-100))
    yield "time_epoch_ms", mid(deploy(9, time=1771409400000))
    yield "version_object", mid(deploy(9, version={"major": 1}))
    yield "line_array", mid([deploy(9)])


def spans_table_specific() -> Iterator[tuple[str, bytes]]:
    yield from line_format_specific(seed_spans_table(), {
        "no_span_id": f"{TRACE},,{'a' * 16},frontend,x,{T0_US // 1000},1,false\n".encode(),
        "start_garbage": f"{TRACE},{'d' * 16},{'a' * 16},frontend,x,yesterday,1,false\n".encode(),
        "start_2200": f"{TRACE},{'d' * 16},{'a' * 16},frontend,x,7258118400000,1,false\n".encode(),
        "duration_word": f"{TRACE},{'d' * 16},{'a' * 16},frontend,x,{T0_US // 1000},long,false\n".encode(),
        "too_few_columns": f"{TRACE},{'d' * 16}\n".encode(),
        "unterminated_quote": f'{TRACE},"{"d" * 16},a,frontend,x,1,1,false\n'.encode(),
        "skywalking_ids": f"{TRACE}.52.1771408800,seg.1.1771408800,-1,frontend,x,{T0_US // 1000},1,false\n".encode(),
    })
    yield "header_only", seed_spans_table().splitlines(keepends=True)[0]


def canonical_table_specific() -> Iterator[tuple[str, bytes]]:
    import pyarrow as pa

    yield "bad_ids", canonical_spans_parquet(trace_id=[TRACE, "NOT-HEX", None])
    yield "start_missing", canonical_spans_parquet(start_time=pa.array([T0_US, None, T0_US], pa.timestamp("us", "UTC")))
    yield "start_text", canonical_spans_parquet(start_time=["2026-02-18T10:00:00Z", "after lunch", "2026-02-18 10:00:01"])
    yield "span_id_column_missing", canonical_spans_parquet(span_id=None)
    yield "duration_text", canonical_spans_parquet(duration_ms=["0.5", "long", None])


def container_specific() -> Iterator[tuple[str, bytes]]:
    yield from line_format_specific(seed_container(), {
        "no_stream": b"2026-02-18T10:12:39.1Z hello there\n",
        "bad_time": b"yesterday stdout F hello\n",
        "partial_never_finished": b"2026-02-18T10:12:39.1Z stdout P part one\n",
        "time_2200": b"2200-01-01T00:00:00.0Z stdout F late\n",
    })


def plain_specific() -> Iterator[tuple[str, bytes]]:
    yield from line_format_specific(seed_plain(), {
        "continuation_first": b"\tat com.shop.Foo(Foo.java:1)\n",
        "time_1970": b"1970-01-01 00:00:00,000 [main] INFO  x - epoch\n",
        "time_2200": b"2200-01-01 00:00:00,000 [main] INFO  x - future\n",
        "bad_date": b"2026-13-45 99:99:99,999 [main] INFO  x - impossible date\n",
        "line_10mb": b"2026-02-18 10:12:39,000 [main] INFO  x - " + b"y" * BIG + b"\n",
    })


# -- assembly -------------------------------------------------------------------------------------

def build_cases() -> list[CorpusCase]:
    """Every corpus case, in a fixed order (names are unique)."""
    cases: list[CorpusCase] = []
    for seed_name, fmt, ext, builder, line_records in SEEDS:
        data = builder()
        for mutation, out, keeps_lines in generic_mutations(seed_name, data):
            ext_out = ext + (".gz" if mutation.startswith("gzip") else ".zst" if mutation.startswith("zstd") else "")
            cases.append(CorpusCase(f"{seed_name}/{mutation}", fmt, f"{seed_name}-{mutation}.{ext_out}", out,
                                    line_records and keeps_lines and mutation not in ("crlf",)))
    for seed_name, fmt, ext, builder in BINARY_SEEDS:
        for mutation, out, _ in generic_mutations(seed_name, builder()):
            if mutation in BINARY_MUTATIONS:
                ext_out = ext + (".gz" if mutation.startswith("gzip") else ".zst" if mutation.startswith("zstd") else "")
                cases.append(CorpusCase(f"{seed_name}/{mutation}", fmt, f"{seed_name}-{mutation}.{ext_out}", out))
    specific: list[tuple[str, str, str, Iterator[tuple[str, bytes]], bool]] = [
        ("otlp_json", "otlp_json", "jsonl", otlp_specific(), False),
        ("jaeger", "jaeger_json", "json", jaeger_specific(), False),
        ("zipkin", "zipkin_json", "json", zipkin_specific(), False),
        ("json_logs", "json_logs", "jsonl", json_logs_specific(), True),
        ("logfmt", "logfmt", "logfmt", logfmt_specific(), True),
        ("prometheus", "prometheus_text", "prom", prometheus_specific(), False),
        ("prom_api", "prom_api_json", "json", prom_api_specific(), False),
        ("metrics_csv", "metrics_csv", "csv", metrics_csv_specific(), False),
        ("deploy_jsonl", "deploy_log", "jsonl", deploy_specific(), True),
        ("container_logs", "container_logs", "log", container_specific(), False),
        ("plain_logs", "plain_logs", "log", plain_specific(), False),
        ("spans_table", "spans_table", "csv", spans_table_specific(), False),
        ("canonical_table", "canonical_table", "parquet", canonical_table_specific(), False),
    ]
    for seed_name, fmt, ext, gen, line_records in specific:
        for mutation, out in gen:
            cases.append(CorpusCase(f"{seed_name}/{mutation}", fmt, f"{seed_name}-{mutation}.{ext}", out, line_records))
    for fmt, mutation, out in k8s_specific():
        cases.append(CorpusCase(f"{fmt}/{mutation}", fmt, f"{fmt}-{mutation}.json", out))
    # OTLP protobuf: wrong wire types and lengths
    pb = seed_otlp_proto()
    for mutation, out in [("pb_truncated_varint", pb[:1] + b"\xff\xff\xff"), ("pb_length_overflow", b"\x0a\xff\xff\xff\xff\x0f" + pb),
                          ("pb_wrong_wire_type", b"\x0b" + pb), ("pb_json_inside", seed_otlp_json())]:
        cases.append(CorpusCase(f"otlp_proto/{mutation}", "otlp_proto", f"otlp_proto-{mutation}.pb", out))
    cases.extend(reliability_cases())
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    return cases


# -- issue #19: long first records, unknown files, over-long lines, extreme depth, bombs ---------

def _stack_trace(n_bytes: int) -> str:
    frame = "\n\tat com.shop.catalog.SearchController.search(SearchController.java:87)"
    return "java.lang.IllegalStateException: inventory timeout" + frame * (n_bytes // len(frame) + 1)


def _long_first_records() -> Iterator[tuple[str, str, str, bytes, bool]]:
    """(seed, format, extension, bytes, line records): a first record over the sniffing head, then
    the seed's records; sniffing must still name the format (#19.2)."""
    trace = _stack_trace(LONG)
    yield "json_logs", "json_logs", "jsonl", _jl([json_log(0, msg=trace)]) + seed_json_logs(), True
    quoted = trace.replace("\n", "\\n").replace("\t", "\\t")
    yield "logfmt", "logfmt", "logfmt", (f'level=error ts=2026-02-18T10:12:30Z caller=main.go:42 service=catalog-service '
                                         f'msg="{quoted}"\n').encode() + seed_logfmt(), True
    yield "plain_logs", "plain_logs", "log", ("2026-02-18 10:12:29,000 [main] ERROR com.shop.catalog.SearchController - "
                                              + "x" * LONG + "\n").encode() + seed_plain(), False
    yield "container_logs", "container_logs", "log", (
        '2026-02-18T10:12:29.123456789Z stdout F {"level":"error","ts":1771409553.1,"msg":' + json.dumps(trace) + "}\n"
    ).encode() + seed_container(), False
    yield "prometheus", "prometheus_text", "prom", (
        b"# HELP big_help " + b"h" * LONG + b"\n# TYPE big_help gauge\nbig_help 1\n" + seed_prometheus()), False
    yield "deploy_jsonl", "deploy_log", "jsonl", _jl([deploy(9, description=trace)]) + seed_deploy_jsonl(), True
    yield "otlp_json", "otlp_json", "jsonl", _jl([otlp_traces_doc(
        [_set(otlp_seed_spans()[0], "attributes", [_attr("exception.stacktrace", trace)])])]) + seed_otlp_json(), False


def _deep_otlp_line(levels: int) -> bytes:
    """An OTLP request whose one attribute nests ``levels`` kvlists deep (the first line of a file)."""
    open_, close = '{"kvlistValue":{"values":[{"key":"k","value":', "}]}}"
    value = open_ * levels + '{"stringValue":"x"}' + close * levels
    return ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"catalog"}},'
            '{"key":"deep","value":' + value + '}]},"scopeSpans":[]}]}\n').encode()


def _bomb(seed: bytes, decompressed: int) -> bytes:
    """gzip of ``seed`` then blank lines up to ``decompressed`` bytes: a ratio in the hundreds."""
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(seed)]
    block = b"\n" * (1 << 20)
    for _ in range(decompressed >> 20):
        out.append(comp.compress(block))
    out.append(comp.flush())
    return b"".join(out)


def reliability_cases() -> Iterator[CorpusCase]:
    """The classes issue #19 added to the corpus."""
    for seed, fmt, ext, data, line_records in _long_first_records():
        yield CorpusCase(f"{seed}/long_first_record", fmt, f"{seed}-long_first_record.{ext}", data, line_records,
                         sniffed=True)
    for name, data in [("license_text", b"Apache License\nVersion 2.0, January 2004\n\nTERMS AND CONDITIONS\n"),
                       ("binary_blob", _rng("blob").randbytes(4096)), ("csv_not_metrics", b"a,b\n1,2\n")]:
        yield CorpusCase(f"unknown/{name}", None, f"unknown-{name}.dat", data, sniffed=True, expect_reject="unknown_format")
    long_line = {"json_logs": _jl([json_log(7, msg="m" * LONG)]),
                 "logfmt": b"level=info ts=2026-02-18T10:12:39Z msg=" + b"v" * LONG + b"\n",
                 "plain_logs": b"2026-02-18 10:12:39,000 [main] INFO  x - " + b"y" * LONG + b"\n",
                 "container_logs": b"2026-02-18T10:12:39.1Z stdout F " + b"z" * LONG + b"\n",
                 "prometheus": b'big{v="' + b"x" * LONG + b'"} 1\n',
                 "metrics_csv": b"2026-02-18T10:13:00Z,http_server_requests," + b"9" * LONG + b",a,b\n",
                 "deploy_jsonl": _jl([deploy(9, description="d" * LONG)]),
                 "otlp_json": _jl([otlp_traces_doc([_set(otlp_seed_spans()[0], "name", "n" * LONG)])])}
    for seed_name, fmt, ext, builder, line_records in SEEDS:
        if seed_name in long_line:  # #19.5: skipped, counted, the rest of the file read
            good = builder().splitlines(keepends=True)
            data = b"".join(good[:2] + [long_line[seed_name]] + good[2:])
            yield CorpusCase(f"{seed_name}/line_over_limit", fmt, f"{seed_name}-line_over_limit.{ext}", data,
                             line_records, options=(("max_line_bytes", SMALL_LINE_LIMIT),), expect_reject="too_large")
    deepest = b"[" * DEEPEST + b"]" * DEEPEST
    for seed_name, fmt, ext, builder, line_records in SEEDS:  # #19.9: a reject, never a crash
        if seed_name in ("json_logs", "otlp_json", "deploy_jsonl", "jaeger", "zipkin", "k8s_events", "prom_api"):
            data = builder() + b"\n" + deepest + b"\n"
            yield CorpusCase(f"{seed_name}/deep_nesting_1m", fmt, f"{seed_name}-deep_nesting_1m.{ext}", data,
                             expect_reject=DEEP_REJECT.get(seed_name))
    deep_obj = b'{"a":' * DEEPEST + b"1" + b"}" * DEEPEST
    yield CorpusCase("json_logs/deep_object_1m_mid", "json_logs", "json_logs-deep_object_1m_mid.jsonl",
                     _jl([json_log(0)]) + deep_obj + b"\n" + _jl([json_log(1)]), True)
    yield CorpusCase("otlp_json/first_line_400_deep", "otlp_json", "otlp_json-first_line_400_deep.jsonl",
                     _deep_otlp_line(400) + seed_otlp_json(), sniffed=True)
    for seed_name, fmt, ext, builder, _ in SEEDS:  # #19.10: stop at the cap, keep what came before
        if seed_name in ("json_logs", "otlp_json", "k8s_events", "plain_logs"):
            yield CorpusCase(f"{seed_name}/gzip_bomb", fmt, f"{seed_name}-gzip_bomb.{ext}.gz",
                             _bomb(builder(), 64 << 20), options=(("max_compression_ratio", 50),),
                             expect_reject="decompression_limit")


def write_corpus(out: Path) -> list[CorpusCase]:
    """Write every case under ``out`` and a ``manifest.json`` (name, format, file, line_records)."""
    out.mkdir(parents=True, exist_ok=True)
    cases = build_cases()
    for c in cases:
        (out / c.filename).write_bytes(c.data)
    manifest = [{"name": c.name, "format": c.format, "file": c.filename, "line_records": c.line_records,
                 "options": dict(c.options), "sniffed": c.sniffed} for c in cases]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return cases


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus_out")
    written = write_corpus(target)
    print(f"{len(written)} corpus cases written to {target}")
