"""One definition of a failed span (forensics.semantics.is_error_sql), and every consumer agreeing
on it: the report, the notebook queries, the figures and the detectors count the same errors.

The spans are shaped like the OpenTelemetry Python SDK's Flask, requests, sqlite3 and gRPC
instrumentations (old ``http.status_code`` and new ``http.response.status_code`` keys), and like
spans from tracers that record only an HTTP status or an exception text.
"""
from __future__ import annotations

import pathlib
import re
from datetime import datetime, timezone

import pytest

import forensics
from forensics.detectors._calls import call_tables
from forensics.detectors.version_regression import _requests_sql
from forensics.queries import red
from forensics.report.build import overview
from forensics.semantics import is_error_sql
from forensics.synth.builder import SpanBuilder
from forensics.viz._sql import SpanFilter
from forensics.viz.graph import graph_nodes
from forensics.viz.timeline import timeline_series

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _one(kind: str, status: str = "unset", message: str | None = None, **attrs) -> bool:
    b = SpanBuilder(BASE, seed=1)
    b.span("svc", "op", kind=kind, status=status, status_message=message, attributes=attrs)
    case = forensics.open_case()
    b.insert(case)
    return case.sql(f"SELECT {is_error_sql('s')} FROM spans s").scalar()


@pytest.mark.parametrize("kind, status, message, attrs, failed", [
    ("server", "error", None, {}, True),
    ("server", "unset", None, {"http.response.status_code": 503}, True),     # no status, only the code
    ("server", "unset", None, {"http.status_code": 500}, True),              # old convention
    ("server", "unset", None, {"http.status_code": 404}, False),
    ("server", "unset", None, {"http.status_code": 429}, False),             # the server meant to refuse
    ("client", "unset", None, {"http.status_code": 429}, True),              # the caller was refused
    ("internal", "unset", None, {"http.response.status_code": 429}, True),
    ("client", "unset", None, {"http.status_code": 404}, False),
    ("client", "unset", "HTTPConnectionPool(host='users', port=80): Read timed out. (read timeout=2)", {}, True),
    ("client", "unset", "context deadline exceeded", {}, True),
    ("client", "unset", "rpc error: code = DeadlineExceeded desc = DEADLINE_EXCEEDED", {}, True),
    ("client", "unset", "Connection timeout", {}, True),
    ("client", "unset", "no rows", {}, False),
    ("client", "unset", None, {"rpc.system": "grpc", "rpc.grpc.status_code": 5}, True),   # NOT_FOUND, client
    ("server", "unset", None, {"rpc.system": "grpc", "rpc.grpc.status_code": 5}, False),  # NOT_FOUND, server
    ("server", "unset", None, {"rpc.system": "grpc", "rpc.grpc.status_code": 14}, True),  # UNAVAILABLE
    ("server", "unset", None, {"rpc.system": "grpc", "rpc.response.status_code": "INTERNAL"}, True),
    ("client", "unset", None, {"rpc.system": "grpc", "rpc.grpc.status_code": 0}, False),
    ("client", "unset", None, {"rpc.grpc.status_code": 14}, False),          # not a gRPC span
    ("client", "ok", None, {}, False),
])
def test_is_error(kind, status, message, attrs, failed):
    assert _one(kind, status, message, **attrs) is failed


def _case() -> forensics.Case:
    """frontend (Flask) serves 9 requests; each calls users (requests -> Flask), sqlite or
    inventory (gRPC). Failed: 5 requests (frontend 500 and 503, users 500 and 503, inventory
    UNAVAILABLE) and 7 calls (500, 503, 429, a locked database, a read timeout, two gRPC codes)."""
    b = SpanBuilder(BASE, seed=3, source_file="traces.jsonl")

    def request(i: int, code: int, status: str = "unset"):
        return b.span("frontend", "GET /users/<id>", kind="server", start_ms=i * 1000, duration_ms=80,
                      status=status, attributes={"http.method": "GET", "http.route": "/users/<id>",
                                                 "http.status_code": code})

    def http_call(parent, i: int, code: int, status: str = "unset", message: str | None = None, served: bool = True):
        call = b.span("frontend", "GET", kind="client", parent=parent, start_ms=i * 1000 + 5, duration_ms=60,
                      status=status, status_message=message,
                      attributes={"http.method": "GET", "http.url": f"http://users:8080/users/{i}",
                                  **({"http.status_code": code} if code else {})})
        if served:
            b.span("users", "GET /users/<id>", kind="server", parent=call, start_ms=i * 1000 + 6, duration_ms=55,
                   status="error" if code >= 500 else "unset",
                   attributes={"http.request.method": "GET", "http.route": "/users/<id>",
                               "http.response.status_code": code})

    def grpc_call(parent, i: int, code: int):
        call = b.span("frontend", "inventory.Inventory/Get", kind="client", parent=parent, start_ms=i * 1000 + 5,
                      duration_ms=30, attributes={"rpc.system": "grpc", "rpc.service": "inventory.Inventory",
                                                  "rpc.method": "Get", "rpc.grpc.status_code": code})
        b.span("inventory", "inventory.Inventory/Get", kind="server", parent=call, start_ms=i * 1000 + 6,
               duration_ms=25, attributes={"rpc.system": "grpc", "rpc.service": "inventory.Inventory",
                                           "rpc.method": "Get", "rpc.grpc.status_code": code})

    http_call(request(1, 200), 1, 200)
    http_call(request(2, 500, "error"), 2, 500, "error")
    http_call(request(3, 503), 3, 503)
    http_call(request(4, 404), 4, 404)
    request(5, 429)                                   # frontend rate-limits: not a failure of frontend
    r6 = request(6, 200)
    http_call(r6, 6, 429)                             # users rate-limits frontend: the call failed
    b.span("frontend", "SELECT", kind="client", parent=r6, start_ms=6070, duration_ms=3, status="error",
           status_message="database is locked",
           attributes={"db.system": "sqlite", "db.statement": "SELECT * FROM users WHERE id = ?"})
    http_call(request(7, 200), 7, 0, message="HTTPConnectionPool(host='users', port=8080): Read timed out. "
                                            "(read timeout=2)", served=False)
    grpc_call(request(8, 200), 8, 14)                 # UNAVAILABLE: fails client and server
    grpc_call(request(9, 200), 9, 5)                  # NOT_FOUND: fails the client only
    case = forensics.open_case()
    b.insert(case)
    return case


def test_report_queries_figures_and_detectors_count_the_same_errors():
    case = _case()
    spans, failed = case.sql(f"SELECT count(*), count(*) FILTER ({is_error_sql('s')}) FROM spans s").rows()[0]
    assert (spans, failed) == (25, 12)

    # the report: overall rate and per service
    kpis, services = overview(case)
    assert dict(kpis)["span error rate"] == "48.00%"
    assert {s["service"]: s["error_pct"] for s in services} == {"frontend": "50.00", "users": "40.00",
                                                                "inventory": "50.00"}
    # the notebook RED query: requests are server spans and roots
    r = red(case, by=None, every="1h").dicts()
    assert (sum(x["requests"] for x in r), sum(x["errors"] for x in r)) == (16, 5)
    # the figures: requests served per service (service graph) and the system's requests (timeline)
    nodes = graph_nodes(case, SpanFilter()).set_index("service")
    assert (nodes["requests"] * nodes["error_pct"] / 100).round().astype(int).to_dict() == {
        "frontend": 2, "users": 2, "inventory": 1}
    series = timeline_series(case, SpanFilter(), bucket="1h")
    assert (series["requests"] * series["error_pct"] / 100).round().sum() == 2
    # the detectors: the calls they judge, and the requests version_regression compares
    calls = call_tables(case).calls
    assert case.sql(f"SELECT count(*), count(*) FILTER (WHERE is_error) FROM {calls}").rows()[0] == (9, 7)
    assert case.sql(f"SELECT count(*) FILTER (WHERE is_error) FROM ({_requests_sql(case)})").scalar() == 5


#: a failure test written out anywhere but forensics/semantics (the loaders map raw statuses; a
#: quoted predicate is a docstring example of a user selection)
_OTHER_DEFINITIONS = re.compile(r"(?<!\")status\s*=\s*'error'|status\"?\]?\.eq\(\"error\"\)|http_status_code\s*>=?\s*[45]\d\d")


def test_no_other_definition_of_error():
    root = pathlib.Path(forensics.__file__).parent
    found = [f"{p.relative_to(root)}:{i}" for p in sorted(root.rglob("*.py"))
             if not p.relative_to(root).parts[0] in ("semantics", "loaders", "synth")
             for i, line in enumerate(p.read_text().splitlines(), 1) if _OTHER_DEFINITIONS.search(line)]
    assert found == []


def test_figures_select_the_operation_the_detectors_name():
    """A figure filtered on the operation a finding names (normalized statement, route template)
    draws that operation's spans, whatever their span name."""
    case = _case()
    for operation, expected in (("SELECT * FROM users WHERE id = ?", 1), ("GET /users/<id>", 9),
                                ("inventory.Inventory/Get", 2)):
        flt = SpanFilter(service="frontend", operation=operation)
        assert case.sql(flt.cte() + " SELECT count(*) FROM sel", flt.params).scalar() == expected, operation
