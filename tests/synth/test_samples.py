"""The committed sample_data/ incidents: present, small, described, and what the generator writes today."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from forensics.synth import Truth
from forensics.synth.make_samples import ROOT, SAMPLES, make


def _files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_samples_are_committed_described_and_small():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 10e6
    readme = (ROOT / "README.md").read_text()
    for sample in SAMPLES:
        truth = Truth.read(ROOT / sample.directory)
        assert truth.scenario == sample.scenario and truth.expected
        assert sorted(truth.files) == sorted(k for k in _files(ROOT / sample.directory) if k != "truth.json")
        assert f"`{sample.directory}/`" in readme
    flagship = Truth.read(ROOT / "catalog_n_plus_one").expected[0]
    assert flagship["detector"] == "n_plus_one" and flagship["numbers"]["calls_per_request_after"] == 50


@pytest.mark.slow
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.directory for s in SAMPLES])
def test_regenerating_gives_the_committed_bytes(tmp_path, sample):
    make(sample, tmp_path)
    assert _files(tmp_path / sample.directory) == _files(ROOT / sample.directory), \
        "sample_data is stale: run `python -m forensics.synth.make_samples` and commit the result"
