"""bench (`make bench`): the disk-space check that keeps a run from filling the disk halfway."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bench.__main__ as bench


@pytest.fixture()
def empty_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(bench, "DATA", tmp_path)
    return tmp_path


def test_required_bytes_counts_missing_datasets_templates_and_the_largest_case(empty_data: Path) -> None:
    one = bench.required_bytes([1_000_000], ["otlp"], ["otlp"])
    assert one == 1_000_000 * (bench.EXPORT_BYTES_PER_SPAN["otlp"] + bench.CASE_BYTES_PER_SPAN)
    # 10M of OTLP: the copies, their 1M template, and a 10M case; Jaeger only at 1M (not large)
    both = bench.required_bytes([1_000_000, 10_000_000], ["otlp", "jaeger"], ["otlp"])
    assert both == (11_000_000 * bench.EXPORT_BYTES_PER_SPAN["otlp"] + 1_000_000 * bench.EXPORT_BYTES_PER_SPAN["jaeger"]
                    + 10_000_000 * bench.CASE_BYTES_PER_SPAN)
    # datasets already generated cost nothing more
    done = empty_data / f"clean-otlp-{int(1_000_000 / bench.SPANS_PER_TRACE)}"
    done.mkdir()
    (done / "truth.json").write_text("{}")
    (empty_data / "copies-otlp-10000000").mkdir()
    (empty_data / "copies-otlp-10000000" / "info.json").write_text("{}")
    assert bench.required_bytes([1_000_000, 10_000_000], ["otlp"], ["otlp"]) == 10_000_000 * bench.CASE_BYTES_PER_SPAN


def test_a_run_that_does_not_fit_is_refused_before_it_starts(empty_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 90, 10 * 2**30))
    bench.check_space([1_000_000], ["otlp"], ["otlp"])  # ~1.2 GB: fits in 10 GiB
    with pytest.raises(SystemExit, match=r"needs ~\d+\.\d GB .* 10\.7 GB are free.*--spans 1000000"):
        bench.check_space([1_000_000, 10_000_000], ["otlp", "jaeger", "zipkin"], ["otlp", "jaeger", "zipkin"])
    with pytest.raises(SystemExit, match="--skip-space-check"):
        bench.main(["--spans", "100000000", "--formats", "otlp"])
