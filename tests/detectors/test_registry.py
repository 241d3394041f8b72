"""forensics.detect and `forensics detect`: one detector's crash does not hide the others'
findings; thresholds from --set / --config / options, typed by the signature and echoed."""
from __future__ import annotations

import json
import warnings

import duckdb
import pytest

import forensics
from forensics.cli import main
from forensics.detectors import DETECTORS, DetectorSpec, detectors
from forensics.detectors.options import coerce, from_assignments, from_toml, merge
from forensics.errors import DetectorFailedWarning, UsageError
from forensics.synth.builder import SpanBuilder

from conftest import BASE, build_flagship


@pytest.fixture
def flagship_file(tmp_path):
    """The flagship incident (v1.8.0's N+1) in a case file."""
    b = SpanBuilder(BASE, seed=1, source_file="traces.json")
    build_flagship(b, requests_per_version=30, items=12)
    path = tmp_path / "flagship.duckdb"
    with forensics.open_case(path) as case:
        b.insert(case)
    return str(path)


@pytest.fixture
def crashing_critical_path(monkeypatch):
    """critical_path raising what DuckDB raised on the duplicated Jaeger downloads of #16."""
    detectors()

    def boom(case, **kwargs):
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 16.0 GiB")

    monkeypatch.setitem(DETECTORS, "critical_path", DetectorSpec("critical_path", boom, "boom"))


def test_a_crashing_detector_does_not_hide_the_others(flagship_file, crashing_critical_path):
    with forensics.open_case(flagship_file, read_only=True) as case:
        with pytest.warns(DetectorFailedWarning, match="critical_path.*OutOfMemoryException"):
            found = forensics.detect(case)
    assert "n_plus_one" in {f["detector"] for f in found}
    assert [(f.detector, f.error) for f in found.failures] == [("critical_path", "OutOfMemoryException")]
    assert "16.0 GiB" in found.failures[0].message and "Traceback" in found.failures[0].traceback
    assert found.at_least("high").failures == found.failures  # filters keep the record of failures
    assert "[failed] detector 'critical_path' failed" in repr(found)


def test_cli_reports_findings_names_the_failed_detector_and_exits_1(flagship_file, crashing_critical_path, capsys):
    assert main(["detect", flagship_file, "--format", "json"]) == 1
    out, err = capsys.readouterr()
    findings = json.loads(out)  # stdout is still one valid JSON array
    assert "n_plus_one" in {f["detector"] for f in findings}
    assert "detector 'critical_path' failed: OutOfMemoryException" in err
    assert err.count("\n") == 1


def test_cli_exit_0_without_failures(flagship_file, capsys):
    assert main(["detect", flagship_file, "--only", "n_plus_one", "--format", "json"]) == 0
    assert capsys.readouterr().err == ""


def test_set_is_typed_by_the_signature_and_echoed_in_evidence(flagship_file, capsys):
    assert main(["detect", flagship_file, "--only", "n_plus_one", "--format", "json",
                 "--set", "n_plus_one.min_calls=20"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # 12 calls per request: below 20
    assert main(["detect", flagship_file, "--only", "n_plus_one", "--format", "json",
                 "--set", "n_plus_one.min_calls=12"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found and all(f["evidence"]["overrides"] == {"min_calls": 12} for f in found)
    assert all(f["evidence"]["overrides_from"] == {"min_calls": "--set"} for f in found)
    assert all(f["evidence"]["thresholds"]["min_calls"] == 12 for f in found)


def test_config_file_and_set_wins(flagship_file, tmp_path, capsys):
    cfg = tmp_path / "thresholds.toml"
    cfg.write_text("[n_plus_one]\nmin_calls = 20\n\n[bimodal_latency]\nmax_dip_p = 0.001\n")
    assert main(["detect", flagship_file, "--only", "n_plus_one", "--format", "json", "--config", str(cfg)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["detect", flagship_file, "--only", "n_plus_one", "--format", "json", "--config", str(cfg),
                 "--set", "n_plus_one.min_calls=5"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found and found[0]["evidence"]["overrides"] == {"min_calls": 5}


@pytest.mark.parametrize("args, message", [
    (["--set", "n_plus_one.min_callz=3"], "has no option 'min_callz'; options: "),
    (["--set", "n_plus_one.min_calls=3.5"], "n_plus_one.min_calls expects int (default 5), got '3.5'"),
    (["--set", "n_plus_one.min_calls=lots"], "expects int"),
    (["--set", "nope.min_calls=3"], "unknown detector 'nope'"),
    (["--set", "min_calls=3"], "expected DETECTOR.KEY=VALUE"),
    (["--set", "bimodal_latency.max_dip_p=x"], "expects float"),
])
def test_bad_set_is_a_usage_error(flagship_file, capsys, args, message):
    assert main(["detect", flagship_file, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("text, message", [
    ("[n_plus_one]\nmin_calls = \n", "not valid TOML"),
    ("[n_plus_one]\nmin_calls = 'three'\n", "[n_plus_one]: n_plus_one.min_calls expects int"),
    ("n_plus_one = 3\n", "'n_plus_one' must be a table"),
    ("[n_plus_two]\nmin_calls = 3\n", "unknown detector 'n_plus_two'"),
])
def test_bad_config_is_a_usage_error_naming_the_file(flagship_file, tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert main(["detect", flagship_file, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and message in err
    assert main(["detect", flagship_file, "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the config file" in capsys.readouterr().err


def test_coercion_follows_each_default_type():
    specs = detectors()
    assert coerce(specs["n_plus_one"], "min_calls", "7") == 7
    assert coerce(specs["n_plus_one"], "min_calls", 7.0) == 7
    assert coerce(specs["bimodal_latency"], "max_dip_p", "1e-3") == 0.001
    assert coerce(specs["bimodal_latency"], "max_dip_p", 1) == 1.0
    with pytest.raises(UsageError, match="expects int"):
        coerce(specs["n_plus_one"], "min_calls", True)
    with pytest.raises(UsageError, match="expects float"):
        coerce(specs["bimodal_latency"], "max_dip_p", "nan")
    opts, origins = merge(("a.toml", {"n_plus_one": {"min_calls": 3, "min_total_ms": 1.0}}),
                          ("--set", from_assignments(specs, ["n_plus_one.min_calls=4"])))
    assert opts == {"n_plus_one": {"min_calls": 4, "min_total_ms": 1.0}}
    assert origins == {"n_plus_one": {"min_calls": "--set", "min_total_ms": "a.toml"}}


def test_library_options_are_checked_before_any_detector_runs(flagship_file):
    with forensics.open_case(flagship_file, read_only=True) as case:
        with pytest.raises(UsageError, match="has no option 'nope'"):
            forensics.detect(case, options={"n_plus_one": {"nope": 1}})
        with pytest.raises(UsageError, match="unknown detector 'nope'"):
            forensics.detect(case, options={"nope": {"x": 1}})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing fails here
            found = forensics.detect(case, only="n_plus_one", options={"n_plus_one": {"min_calls": "12"}})
    assert found and found[0]["evidence"]["overrides_from"] == {"min_calls": "options"}
    assert not found.failures


def test_toml_file_reading(tmp_path):
    specs = detectors()
    p = tmp_path / "t.toml"
    p.write_text('[clock_skew]\ntolerance_ms = 2\n[version_regression]\nalpha = 0.001\n')
    assert from_toml(specs, p) == {"clock_skew": {"tolerance_ms": 2.0}, "version_regression": {"alpha": 0.001}}
