"""generate(): determinism, parameters, file shapes of each format, errors."""
from __future__ import annotations

import gzip
import hashlib
import json
import os

import orjson
import pytest

from forensics.errors import UsageError
from forensics.synth import SCENARIOS, Truth, generate

EXPECTED_SCENARIOS = {"n_plus_one", "retry_storm", "bimodal_latency", "version_regression", "cache_stampede",
                      "poison_pill", "clock_skew", "clean"}


def _digest(directory) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, directory)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_registry_has_every_scenario_with_subtle_settings():
    assert set(SCENARIOS) == EXPECTED_SCENARIOS
    for sc in SCENARIOS.values():
        assert set(sc.subtle) <= set(sc.defaults), sc.name
        assert sc.name == "clean" or sc.subtle, f"{sc.name} has no subtle settings"


@pytest.mark.parametrize("fmt", ["otlp", "jaeger", "zipkin", "mixed"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, fmt):
    a = generate("retry_storm", tmp_path / "a", traces=60, seed=4, format=fmt, compress=True)
    generate("retry_storm", tmp_path / "b", traces=60, seed=4, format=fmt, compress=True)
    generate("retry_storm", tmp_path / "c", traces=60, seed=5, format=fmt, compress=True)
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert da == db
    assert sorted(da) == sorted(a.files + ["truth.json"])
    assert any(da[k] != dc[k] for k in da if "traces" in k or "spans" in k)


def test_deterministic_across_many_small_chunks(tmp_path):
    generate("poison_pill", tmp_path / "a", traces=90, seed=1, chunk_traces=7, subtle=True)
    generate("poison_pill", tmp_path / "b", traces=90, seed=1, chunk_traces=7, subtle=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_otlp_lines_are_collector_file_exporter_requests(tmp_path):
    truth = generate("n_plus_one", tmp_path, traces=40, seed=2)
    lines = (tmp_path / "traces.otlp.jsonl").read_bytes().splitlines()
    assert len(lines) == 2                                              # 25 traces per line
    spans, roots = 0, 0
    for line in lines:
        req = orjson.loads(line)
        for rs in req["resourceSpans"]:
            attrs = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
            assert {"service.name", "service.version", "host.name", "deployment.environment"} <= set(attrs)
            for ss in rs["scopeSpans"]:
                assert ss["scope"]["name"]
                for s in ss["spans"]:
                    spans += 1
                    roots += "parentSpanId" not in s
                    assert len(s["traceId"]) == 32 and len(s["spanId"]) == 16
                    assert isinstance(s["startTimeUnixNano"], str) and isinstance(s["kind"], int)
                    assert isinstance(s["status"], dict)
                    for a in s["attributes"]:
                        if "intValue" in a["value"]:
                            assert isinstance(a["value"]["intValue"], str)
    assert spans == truth.counts["spans"] and roots == 40


def test_jaeger_and_zipkin_shapes(tmp_path):
    generate("clean", tmp_path / "j", traces=20, seed=2, format="jaeger")
    doc = json.loads((tmp_path / "j" / "jaeger" / "traces-00001.json").read_text())
    assert set(doc) == {"data", "total", "limit", "offset", "errors"} and len(doc["data"]) == 20
    trace = doc["data"][0]
    span = trace["spans"][1]
    assert span["references"][0]["refType"] == "CHILD_OF" and span["processID"] in trace["processes"]
    assert {"key", "type", "value"} == set(span["tags"][0]) and span["warnings"] is None
    generate("clean", tmp_path / "z", traces=20, seed=2, format="zipkin")
    spans = json.loads((tmp_path / "z" / "zipkin" / "spans-00001.json").read_text())
    assert isinstance(spans, list) and {"traceId", "id", "name", "timestamp", "duration", "localEndpoint", "tags"} <= set(spans[1])
    assert all(isinstance(v, str) for s in spans for v in s["tags"].values())
    assert {s["kind"] for s in spans if "kind" in s} <= {"SERVER", "CLIENT", "PRODUCER", "CONSUMER"}


def test_side_signals_written_in_every_format(tmp_path):
    truth = generate("retry_storm", tmp_path, traces=50, seed=3, format="zipkin", compress=True)
    with gzip.open(tmp_path / "logs.jsonl.gz") as fh:
        first = json.loads(fh.readline())
    assert {"ts", "level", "service", "msg"} <= set(first)
    metrics = (tmp_path / "metrics.prom").read_text()
    assert metrics.endswith("# EOF\n") and "# TYPE http_server_request_duration_seconds histogram" in metrics
    assert '# {trace_id="' in metrics and "db_client_connections_max" in metrics and "kafka_consumergroup_lag" in metrics
    deploys = [json.loads(x) for x in (tmp_path / "deploys.jsonl").read_text().splitlines()]
    assert {"time", "service", "version", "kind", "description"} <= set(deploys[0]) and deploys[0]["kind"] == "deploy"
    events = json.loads((tmp_path / "k8s-events.json").read_text())
    assert events["kind"] == "List" and {"BackOff", "ScalingReplicaSet"} <= {e["reason"] for e in events["items"]}
    assert Truth.read(tmp_path).counts == truth.counts


def test_params_override_and_subtle(tmp_path):
    t = generate("n_plus_one", tmp_path / "a", traces=30, items_mean=12, items_sd=0.5)
    assert t.params["items_mean"] == 12.0
    s = generate("n_plus_one", tmp_path / "b", traces=30, subtle=True)
    assert s.subtle and s.params["items_mean"] == SCENARIOS["n_plus_one"].subtle["items_mean"]


@pytest.mark.parametrize("kwargs, message", [
    ({"scenario": "nope"}, "unknown scenario 'nope'"),
    ({"format": "csv"}, "unknown trace format 'csv'"),
    ({"traces": 0}, "traces must be at least 1"),
    ({"bogus": 1}, "has no parameter(s) ['bogus']"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"scenario": "clean", **kwargs}
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        generate(args.pop("scenario"), tmp_path, **args)
