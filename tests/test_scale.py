"""bench.bigdata (big OTLP files, and directories of Jaeger/Zipkin files, from a synth template)
and bench.scale (the memory harness).

The generator must give files the loader takes as real exports: copies of the template with
distinct trace ids, consistent parent links, times moved one template window per copy, and
nothing else changed; the harness must measure loads and detectors in fresh processes and
record failures instead of raising.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

import forensics
import forensics.synth as synth
from bench import bigdata, scale

_IDS_AND_TIMES = re.compile(rb'("(?:traceId|spanId|parentSpanId)":")[0-9a-f]+"|(UnixNano":")\d{19}"')


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tpl")
    synth.generate("clean", str(out), traces=200, seed=1, format="otlp")
    return out / "traces.otlp.jsonl"


def _masked(data: bytes) -> bytes:
    return _IDS_AND_TIMES.sub(lambda m: (m.group(1) or m.group(2)) + b"X", data)


def test_copies_differ_from_the_template_only_in_ids_and_times(template: Path, tmp_path: Path) -> None:
    tpl = bigdata.Template.from_file(template)
    raw = template.read_bytes()
    info = bigdata.write(tmp_path / "big.jsonl", tpl, spans=2 * tpl.spans + 1)
    data = (tmp_path / "big.jsonl").read_bytes()
    assert info["copies"] == 3 and info["uncompressed_bytes"] == len(data) == info["bytes"]
    assert info["spans"] == data.count(b'"spanId":"') >= 2 * tpl.spans + 1
    first_line = raw[: raw.index(b"\n") + 1]
    assert _masked(data) == _masked(raw + raw + first_line)
    assert data[: len(raw)] != raw  # copy 0 is rewritten too
    # copy 1 is copy 0 moved by one window
    t0 = bigdata.parse_dec(np.frombuffer(data, np.uint8), tpl.time_at)
    t1 = bigdata.parse_dec(np.frombuffer(data, np.uint8), tpl.time_at + len(raw))
    assert (t1 - t0 == tpl.window).all() and (t0 == tpl.times).all()


def test_a_generated_file_loads_as_distinct_traces_with_intact_parents(template: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    info = bigdata.write(src, template, size_bytes=int(2.5 * template.stat().st_size))
    with forensics.open_case(tmp_path / "c.duckdb") as case:
        report = forensics.load(case, src, progress=False)
        assert report.rows_rejected == 0 and report.by_table() == {"spans": info["spans"]}
        n, traces, keys, orphans = case.sql(
            "SELECT count(*), count(DISTINCT trace_id), count(DISTINCT (trace_id, span_id)), "
            "count(*) FILTER (WHERE parent_span_id IS NOT NULL AND parent_span_id NOT IN "
            "  (SELECT span_id FROM spans p WHERE p.trace_id = s.trace_id)) FROM spans s").rows()[0]
    assert n == keys == info["spans"] and traces == info["traces"] and orphans == 0
    template_traces = len(np.unique(bigdata.Template.from_file(template).trace_lo))
    assert 2 * template_traces < traces <= 3 * template_traces


def test_gzip_and_zstd_outputs_hold_the_same_bytes(template: Path, tmp_path: Path) -> None:
    plain = bigdata.write(tmp_path / "a.jsonl", template, spans=500)
    gz = bigdata.write(tmp_path / "a.jsonl.gz", template, spans=500)
    zst = bigdata.write(tmp_path / "a.jsonl.zst", template, spans=500)
    import zstandard

    data = (tmp_path / "a.jsonl").read_bytes()
    assert gz["compress"] == "gzip" and gzip.decompress((tmp_path / "a.jsonl.gz").read_bytes()) == data
    assert zst["compress"] == "zstd"
    with zstandard.ZstdDecompressor().stream_reader(open(tmp_path / "a.jsonl.zst", "rb")) as fh:
        assert fh.read() == data
    assert plain["spans"] == gz["spans"] >= 500 and gz["bytes"] < plain["bytes"]


_JZ_IDS_AND_TIMES = re.compile(rb'("(?:traceID|spanID|traceId|id|parentId)":")[0-9a-f]+"|("(?:startTime|timestamp)":)\d{16}')


_TRACE_ID = re.compile(rb'"trace[Ii][Dd]":"([0-9a-f]{32})"')


@pytest.mark.parametrize("layout", ["jaeger", "zipkin"])
def test_directory_copies_load_as_distinct_traces_shifted_in_time(layout: str, tmp_path: Path) -> None:
    synth.generate("clean", str(tmp_path / "tpl"), traces=60, seed=3, format=layout)
    templates = sorted((tmp_path / "tpl" / layout).glob("*.json"))
    raw = b"".join(p.read_bytes() for p in templates)
    per_copy = sum(bigdata.Template.from_file(p, layout).spans for p in templates)
    info = bigdata.write_dir(tmp_path / "out", templates, spans=2 * per_copy + 1, layout=layout)
    written = sorted((tmp_path / "out").glob("*.json"))
    assert info["copies"] == 3 and info["files"] == len(written) == 2 * len(templates) + 1
    assert info["spans"] == per_copy * 2 + bigdata.Template.from_file(templates[0], layout).spans
    masked = _JZ_IDS_AND_TIMES.sub(lambda m: (m.group(1) or m.group(2)) + b"X", b"".join(p.read_bytes() for p in written))
    assert masked == _JZ_IDS_AND_TIMES.sub(lambda m: (m.group(1) or m.group(2)) + b"X", raw + raw + templates[0].read_bytes())
    with forensics.open_case(tmp_path / "c.duckdb") as case:
        report = forensics.load(case, tmp_path / "out", progress=False)
        assert report.rows_rejected == 0 and report.by_table() == {"spans": info["spans"]}
        n, traces, keys, orphans, first, last = case.sql(
            "SELECT count(*), count(DISTINCT trace_id), count(DISTINCT (trace_id, span_id)), "
            "count(*) FILTER (WHERE parent_span_id IS NOT NULL AND parent_span_id NOT IN "
            "  (SELECT span_id FROM spans p WHERE p.trace_id = s.trace_id)), "
            "min(start_time) FILTER (WHERE source_file LIKE '%c0000-%'), "
            "min(start_time) FILTER (WHERE source_file LIKE '%c0001-%') FROM spans s").rows()[0]
    assert n == keys == info["spans"] and orphans == 0
    assert traces > 2 * len(set(_TRACE_ID.findall(raw)))
    window_s = (last - first).total_seconds()
    assert window_s >= 1  # copy 1 follows copy 0 by the template's time span + 1 s
    # the command line writes the same files
    assert bigdata.main([str(tmp_path / "cli"), "--layout", layout, "--spans", str(2 * per_copy + 1),
                         "--template", str(tmp_path / "tpl" / layout)]) == 0
    assert [p.read_bytes() for p in sorted((tmp_path / "cli").glob("*.json"))] == [p.read_bytes() for p in written]


def test_hex_and_decimal_codecs_round_trip() -> None:
    values = np.array([0, 1, 0xDEADBEEF, 2**64 - 1], dtype=np.uint64)
    digits = bigdata.hex64(values)
    assert [bytes(r) for r in digits] == [f"{int(v):016x}".encode() for v in values]
    buf = np.frombuffer(b"".join(bytes(r) for r in digits), np.uint8)
    assert (bigdata.parse_hex64(buf, np.arange(4) * 16) == values).all()
    times = np.array([10**18, 1771407000009295027, 2**63 - 1], dtype=np.int64)
    text = b"".join(bytes(r) for r in bigdata.dec(times))
    assert text == b"".join(str(int(t)).encode() for t in times)
    assert (bigdata.parse_dec(np.frombuffer(text, np.uint8), np.arange(3) * 19) == times).all()
    micros = np.array([10**15, 1771407000009295, 10**16 - 1], dtype=np.int64)
    text = b"".join(bytes(r) for r in bigdata.dec(micros, 16))
    assert text == b"".join(str(int(t)).encode() for t in micros)
    assert (bigdata.parse_dec(np.frombuffer(text, np.uint8), np.arange(3) * 16, 16) == micros).all()
    masks = {int(bigdata.splitmix64(k)) for k in range(1000)}
    assert len(masks) == 1000


def test_bad_templates_and_arguments_are_refused(template: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text('{"level":"info","msg":"no spans here"}\n')
    with pytest.raises(ValueError, match="no otlp spans"):
        bigdata.Template.from_file(logs)
    with pytest.raises(ValueError, match="exactly one"):
        bigdata.write(tmp_path / "x.jsonl", template, size_bytes=10, spans=10)
    with pytest.raises(ValueError, match="exactly one"):
        bigdata.write(tmp_path / "x.jsonl", template)


def test_rss_slope() -> None:
    flat = [(50_000_000, 500.0), (200_000_000, 505.0), (800_000_000, 498.0)]
    growing = [(1_000_000_000, 1000.0), (2_000_000_000, 2500.0)]
    assert abs(scale.rss_slope_mb_per_gb(flat)) < 15
    assert scale.rss_slope_mb_per_gb(growing) == pytest.approx(1500.0)
    assert scale.rss_slope_mb_per_gb(flat[:1]) == 0.0


@pytest.mark.slow
def test_big_case_and_detectors_under_a_memory_limit(template: Path, tmp_path: Path) -> None:
    source = tmp_path / "src.duckdb"
    with forensics.open_case(source) as case:
        forensics.load(case, template, template.parent / "deploys.jsonl", progress=False)
        spans, traces, deploys = case.sql("SELECT (SELECT count(*) FROM spans), (SELECT count(DISTINCT trace_id) "
                                          "FROM spans), (SELECT count(*) FROM events)").rows()[0]
    big = tmp_path / "big.duckdb"
    built = scale.build_big_case(big, 3 * spans, source=source, memory_limit="512MB", threads=1)
    assert built["copies"] == 3 and built["spans"] == 3 * spans
    with forensics.open_case(big, read_only=True) as case:
        assert case.sql("SELECT count(DISTINCT trace_id) FROM spans").rows() == [(3 * traces,)]
        assert case.tables()["events"] == deploys
    with pytest.raises(FileExistsError):
        scale.build_big_case(big, spans, source=source)
    one = scale.measure_detect(big, "n_plus_one", memory_limit="256MB", threads=1)
    assert "error" not in one, one
    assert one["findings"] >= 0 and one["peak_rss_mb"] > 50 and one["cpu_seconds"] > 0
    bad = scale.child_detect(str(big), "no_such_detector", "256MB", 1)  # in this process: failures are recorded
    assert "unknown detector" in bad["error"] and "peak_rss_mb" in bad and "findings" not in bad
