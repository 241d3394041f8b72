"""n_plus_one, retry_storm and version_regression on the synth scenarios: they find the truth.

Each scenario is generated small (a few hundred traces), its trace and deploy files loaded
through the real loaders (OTLP JSON, Zipkin, Jaeger), and the findings compared with
``truth.json``. Generation and loading take seconds, hence ``slow``.
"""
from __future__ import annotations

import os

import pytest

import forensics
from forensics.detectors.n_plus_one import detect_n_plus_one
from forensics.detectors.retry_storm import detect_retry_storm
from forensics.detectors.version_regression import detect_version_regression
from forensics.synth import generate

pytestmark = pytest.mark.slow

DETECTORS = (detect_n_plus_one, detect_retry_storm, detect_version_regression)


def _scenario(tmp_path_factory, name: str, traces: int, fmt: str = "otlp", subtle: bool = False):
    out = tmp_path_factory.mktemp(f"{name}_{fmt}")
    truth = generate(name, out, traces=traces, seed=3, format=fmt, subtle=subtle)
    case = forensics.open_case()
    case.load(*[os.path.join(out, f) for f in truth.files if not f.startswith(("metrics", "logs", "k8s"))], strict=True)
    return case, truth


def _expected(truth, detector: str, primary: bool = True) -> dict:
    return next(e for e in truth.expected if e["detector"] == detector and e["primary"] is primary)


def _key(f: dict) -> tuple:
    return (f["service"], f["operation"], f["target"], f["target_operation"])


@pytest.fixture(scope="module")
def n_plus_one(tmp_path_factory):
    return _scenario(tmp_path_factory, "n_plus_one", 300)


def test_n_plus_one_scenario(n_plus_one):
    case, truth = n_plus_one
    exp = _expected(truth, "n_plus_one")
    found = detect_n_plus_one(case).at_least("medium")
    assert [_key(f) + (f["version"],) for f in found] == [
        (exp["service"], exp["operation"], exp["target"], exp["target_operation"], exp["version"])]
    f, nums = found[0], exp["numbers"]
    assert f["severity"] == "critical"
    assert f["evidence"]["calls_per_request"]["p50"] == pytest.approx(nums["calls_per_request_after"], rel=0.2)
    assert f["evidence"]["baseline_version"] == nums.get("baseline_version", "1.7.9")
    base = next(v for v in f["evidence"]["by_version"] if v["version"] == "1.7.9")
    assert base["target_calls_p50"] == nums["calls_per_request_before"]
    # the secondary truth: the same deploy is a latency regression of GET /search
    reg = _expected(truth, "version_regression", primary=False)
    hits = [r for r in detect_version_regression(case).at_least("medium")
            if (r["service"], r["operation"], r["version"]) == (reg["service"], reg["operation"], reg["version"])]
    assert hits and hits[0]["evidence"]["baseline_version"] == reg["numbers"]["baseline_version"]
    assert hits[0]["target"] == exp["target"]  # the changed call pattern points at inventory-service
    assert len(detect_retry_storm(case).at_least("medium")) == 0


@pytest.mark.parametrize("fmt", ["zipkin", "jaeger"])
def test_subtle_n_plus_one_in_zipkin_and_jaeger(tmp_path_factory, fmt):
    case, truth = _scenario(tmp_path_factory, "n_plus_one", 150, fmt=fmt, subtle=True)
    exp = _expected(truth, "n_plus_one")
    found = detect_n_plus_one(case).at_least("medium")
    assert [_key(f) for f in found] == [(exp["service"], exp["operation"], exp["target"], exp["target_operation"])]
    assert found[0]["version"] == exp["version"]
    assert found[0]["evidence"]["calls_per_request"]["p50"] == pytest.approx(
        exp["numbers"]["calls_per_request_after"], abs=2)


def test_retry_storm_scenario(tmp_path_factory):
    case, truth = _scenario(tmp_path_factory, "retry_storm", 400)
    exp = _expected(truth, "retry_storm")
    found = detect_retry_storm(case).at_least("medium")
    match = [f for f in found if _key(f) == (exp["service"], exp["operation"], exp["target"], exp["target_operation"])]
    assert match, [f["summary"] for f in found]
    ev = match[0]["evidence"]
    assert ev["backoff"] is False and ev["retry_attributes"] is True
    assert ev["attempts_per_retried_request"]["max"] <= exp["numbers"]["max_attempts"]
    assert match[0]["start_time"].isoformat() >= exp["start_time"][:16]
    assert match[0]["end_time"].isoformat()[:16] <= exp["end_time"][:16]
    expected_keys = {(e["service"], e["operation"], e["target"], e["target_operation"]) for e in truth.expected}
    assert {_key(f) for f in found} <= expected_keys
    assert len(detect_n_plus_one(case).at_least("medium")) == 0  # retries are not an N+1


def test_version_regression_scenario(tmp_path_factory):
    case, truth = _scenario(tmp_path_factory, "version_regression", 600)
    exp = _expected(truth, "version_regression")
    found = detect_version_regression(case).at_least("medium")
    assert found and {(f["service"], f["version"]) for f in found} == {(exp["service"], exp["version"])}
    assert {f["evidence"]["baseline_version"] for f in found} == {exp["numbers"]["baseline_version"]}
    assert exp["numbers"]["new_error_count_canary"] >= 2  # seed 3, 600 traces: 6 NullPointerExceptions
    kinds = {k["kind"]: k["count"] for f in found for k in f["evidence"]["new_error_types"]}
    assert kinds[exp["numbers"]["new_error"]] == exp["numbers"]["new_error_count_canary"]


def test_clean_scenario_has_nothing_above_low(tmp_path_factory):
    case, _ = _scenario(tmp_path_factory, "clean", 400)
    for detect in DETECTORS:
        assert len(detect(case).at_least("medium")) == 0, detect.__name__
