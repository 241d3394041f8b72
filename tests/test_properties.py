"""Property-based tests (hypothesis, derandomized, small example counts).

* spans generated as values round-trip exactly through OTLP/JSON, Jaeger JSON and Zipkin JSON
  files (ids, parents, service, name, start time to the microsecond, duration);
* log records round-trip through JSON lines and logfmt (body with quotes, backslashes, unicode;
  severity; time; trace id);
* Prometheus text samples round-trip (name, escaped label values, value, millisecond time);
* arbitrary bytes never crash any loader: lenient mode gives rows and/or rejects with
  loaded + rejected = read, strict mode at most a ForensicsError that is not an internal error.
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forensics
from forensics.errors import ForensicsError, LoadError

T0_US = 1771408800_000_000  # 2026-02-18T10:00:00Z in microseconds
BASE = datetime(2026, 2, 18, 10, tzinfo=timezone.utc)

PROFILE = settings(derandomize=True, database=None, deadline=None, max_examples=10,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

hexid = lambda n: st.integers(min_value=1, max_value=16 ** n - 1).map(lambda v: f"{v:0{n}x}")  # noqa: E731
#: printable text without surrounding blanks (loaders trim), no control characters
label = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=24).filter(
    lambda s: s == s.strip())
word = st.text("abcdefghijklmnopqrstuvwxyz-_.", min_size=1, max_size=16).filter(lambda s: s[0].isalpha())


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One trace: a root and children whose parents are earlier spans; times in microseconds."""
    trace_id = draw(hexid(32))
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(hexid(16), min_size=n, max_size=n, unique=True))
    services = draw(st.lists(word, min_size=1, max_size=3))
    spans = []
    for i, span_id in enumerate(ids):
        spans.append({"trace_id": trace_id, "span_id": span_id,
                      "parent": None if i == 0 else ids[draw(st.integers(0, i - 1))],
                      "service": draw(st.sampled_from(services)), "name": draw(label),
                      "start_us": draw(st.integers(0, 3_600_000_000)), "dur_us": draw(st.integers(0, 60_000_000))})
    return spans


def _otlp(spans: list[dict]) -> bytes:
    groups = []
    for service in sorted({s["service"] for s in spans}):
        groups.append({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                       "scopeSpans": [{"scope": {"name": "prop"}, "spans": [{
                           "traceId": s["trace_id"], "spanId": s["span_id"], "parentSpanId": s["parent"] or "",
                           "name": s["name"], "kind": 2,
                           "startTimeUnixNano": str((T0_US + s["start_us"]) * 1000),
                           "endTimeUnixNano": str((T0_US + s["start_us"] + s["dur_us"]) * 1000)}
                           for s in spans if s["service"] == service]}]})
    return json.dumps({"resourceSpans": groups}).encode() + b"\n"


def _jaeger(spans: list[dict]) -> bytes:
    procs = {f"p{i}": {"serviceName": svc, "tags": []} for i, svc in enumerate(sorted({s["service"] for s in spans}))}
    pid = {v["serviceName"]: k for k, v in procs.items()}
    return json.dumps({"data": [{"traceID": spans[0]["trace_id"], "processes": procs, "spans": [{
        "traceID": s["trace_id"], "spanID": s["span_id"], "operationName": s["name"], "flags": 1,
        "references": [{"refType": "CHILD_OF", "traceID": s["trace_id"], "spanID": s["parent"]}] if s["parent"] else [],
        "startTime": T0_US + s["start_us"], "duration": s["dur_us"], "tags": [], "logs": [],
        "processID": pid[s["service"]]} for s in spans]}]}).encode()


def _zipkin(spans: list[dict]) -> bytes:
    return json.dumps([{
        "traceId": s["trace_id"], "id": s["span_id"], **({"parentId": s["parent"]} if s["parent"] else {}),
        "name": s["name"], "timestamp": T0_US + s["start_us"], "duration": s["dur_us"],
        "localEndpoint": {"serviceName": s["service"]}} for s in spans]).encode()


@pytest.fixture(scope="module")
def case() -> forensics.Case:
    return forensics.open_case()


def _load_fresh(case: forensics.Case, path: Path, data: bytes, fmt: str, **options: Any) -> dict:
    """Write ``data`` to ``path`` and load it into ``case`` emptied first; the FileReport."""
    for table in ("spans", "logs", "metrics", "events", "rejects", "files"):
        case.execute(f'DELETE FROM "{table}"')
    path.write_bytes(data)
    rep = case.load(path, format=fmt, templates=False, **options).files[0]
    assert rep.records_read == rep.rows_loaded + rep.rows_rejected
    return rep


@pytest.mark.parametrize("fmt,writer", [("otlp_json", _otlp), ("jaeger_json", _jaeger), ("zipkin_json", _zipkin)])
def test_spans_round_trip(fmt, writer, case, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp(fmt) / "t.json"

    @PROFILE
    @given(traces())
    def check(spans: list[dict]) -> None:
        rep = _load_fresh(case, path, writer(spans), fmt)
        assert rep.rows_rejected == 0, case.rejects().to_arrow().to_pylist()
        rows = {r["span_id"]: r for r in case.sql(
            "SELECT trace_id, span_id, parent_span_id, service, name, start_time, duration_ms FROM spans").to_arrow().to_pylist()}
        assert len(rows) == len(spans)
        for s in spans:
            r = rows[s["span_id"]]
            assert (r["trace_id"], r["parent_span_id"], r["service"]) == (s["trace_id"], s["parent"], s["service"])
            assert r["name"] == s["name"]  # as written, also for Zipkin (no case folding)
            assert r["start_time"] == BASE + timedelta(microseconds=s["start_us"])
            assert math.isclose(r["duration_ms"], s["dur_us"] / 1000, abs_tol=1e-9)

    check()


log_records = st.lists(st.fixed_dictionaries({
    "body": label, "level": st.sampled_from(["debug", "info", "warn", "error"]),
    "us": st.integers(0, 86_400_000_000), "trace_id": hexid(32)}), min_size=1, max_size=8)


def _iso(us: int) -> str:
    return (BASE + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _logfmt_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


WRITERS = {
    "json_logs": lambda recs: b"".join(json.dumps({"time": _iso(r["us"]), "level": r["level"], "msg": r["body"],
                                                   "trace_id": r["trace_id"]}).encode() + b"\n" for r in recs),
    "logfmt": lambda recs: b"".join(f"ts={_iso(r['us'])} level={r['level']} msg={_logfmt_quote(r['body'])} "
                                    f"trace_id={r['trace_id']}\n".encode() for r in recs),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_logs_round_trip(fmt, case, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp(fmt) / "app.log"

    @PROFILE
    @given(log_records)
    def check(recs: list[dict]) -> None:
        rep = _load_fresh(case, path, WRITERS[fmt](recs), fmt)
        assert rep.rows_rejected == 0, case.rejects().to_arrow().to_pylist()
        rows = case.sql("SELECT time, severity, body, trace_id FROM logs ORDER BY source_line").to_arrow().to_pylist()
        got = [(r["time"], r["severity"], r["body"], r["trace_id"]) for r in rows]
        want = [(BASE + timedelta(microseconds=r["us"]), r["level"], r["body"], r["trace_id"]) for r in recs]
        assert got == want

    check()


prom_samples = st.lists(st.tuples(
    st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), label, max_size=3),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(1_700_000_000_000, 1_800_000_000_000)), min_size=1, max_size=8)


def _prom_escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def test_prometheus_samples_round_trip(case, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("prom") / "scrape.prom"

    @PROFILE
    @given(prom_samples)
    def check(samples: list[tuple]) -> None:
        text = "".join(f"{name}{{{','.join(f'{k}={chr(34)}{_prom_escape(v)}{chr(34)}' for k, v in labels.items())}}} "
                       f"{value!r} {ts}\n" for name, labels, value, ts in samples)
        rep = _load_fresh(case, path, text.encode(), "prometheus_text")
        assert rep.rows_rejected == 0, case.rejects().to_arrow().to_pylist()
        rows = case.sql("SELECT name, labels, value, time FROM metrics ORDER BY source_line").to_arrow().to_pylist()
        got = [(r["name"], dict(r["labels"] or {}), r["value"], r["time"]) for r in rows]
        want = [(n, lb, v, datetime.fromtimestamp(ts / 1000, tz=timezone.utc)) for n, lb, v, ts in samples]
        assert got == want

    check()


@pytest.mark.parametrize("fmt", sorted(forensics.formats()))
def test_arbitrary_bytes_never_crash(fmt, case, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp(fmt) / "blob.bin"

    @settings(PROFILE, max_examples=6)
    @given(st.one_of(st.binary(max_size=512),
                     st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b":", b",", b"\n", b"=", b" ", b"\\",
                                               b"# TYPE x counter", b"2026-02-18T10:00:00Z", b'"traceId"', b"null",
                                               b"\xff", b"\x00", b"1e309", b"-1"]), max_size=60).map(b"".join)))
    def check(data: bytes) -> None:
        try:
            _load_fresh(case, path, data, fmt)  # lenient: rows and rejects, never an exception...
        except LoadError as exc:  # ...except a clear refusal of a whole file whose framing is not ``fmt``
            assert "internal error" not in exc.message and str(path) in str(exc), str(exc)
            assert sum(n for t, n in case.tables().items()) == 0, "a refused file left rows behind"
            return
        try:
            case.load(path, format=fmt, strict=True, force=True, templates=False)
        except ForensicsError as exc:
            assert "internal error" not in str(exc), str(exc)

    check()
