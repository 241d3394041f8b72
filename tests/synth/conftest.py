"""Small synthetic incidents shared by the synth tests (generated once per session)."""
from __future__ import annotations

import glob
import os

import pytest

import forensics
from forensics.synth import generate

TRACES = 600


@pytest.fixture(scope="session")
def incident(tmp_path_factory):
    """incident(scenario, subtle=False, format="otlp", traces=TRACES) -> (out_dir, truth), memoized."""
    cache: dict[tuple, tuple[str, object]] = {}

    def make(scenario: str, *, subtle: bool = False, format: str = "otlp", traces: int = TRACES, seed: int = 3):
        key = (scenario, subtle, format, traces, seed)
        if key not in cache:
            out = str(tmp_path_factory.mktemp(f"{scenario}_{format}_{int(subtle)}"))
            cache[key] = (out, generate(scenario, out, traces=traces, seed=seed, format=format, subtle=subtle))
        return cache[key]

    return make


def trace_files(out_dir: str) -> list[str]:
    """The trace files of an incident directory (any format)."""
    pats = ("traces.otlp.jsonl*", "jaeger/*.json*", "zipkin/*.json*")
    return sorted(f for p in pats for f in glob.glob(os.path.join(out_dir, p)))


@pytest.fixture(scope="session")
def loaded(incident):
    """loaded(scenario, subtle=False) -> (case with traces and logs, truth), memoized."""
    cache: dict[tuple, tuple] = {}

    def make(scenario: str, *, subtle: bool = False, traces: int = 400):
        key = (scenario, subtle, traces)
        if key not in cache:
            out, truth = incident(scenario, subtle=subtle, traces=traces)
            case = forensics.open_case()
            report = forensics.load(case, *trace_files(out), os.path.join(out, "logs.jsonl"), progress=False)
            assert report.rows_rejected == 0, str(report)
            cache[key] = (case, truth)
        return cache[key]

    return make
