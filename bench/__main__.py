"""`make bench`: ingest and detector benchmarks as ratios measured in the same run.

    python -m bench [--spans 1000000,10000000] [--formats otlp,jaeger,zipkin] [--naive-max 1000000]
                    [--large-formats otlp] [--no-detectors]

Every task reports wall seconds, CPU seconds (user+sys, all threads: the machine may be shared)
and peak RSS; imports happen before the clock starts (``import_seconds``).

Data comes from forensics.synth (scenario `clean`, ~10 spans per trace) and is cached under
bench/data/. Each measurement runs in its own process (peak RSS is that task's). Results go to
bench/results/latest.json (and a timestamped copy); README quotes them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
PATTERNS = {"otlp": "traces.otlp.jsonl", "jaeger": "jaeger/*.json", "zipkin": "zipkin/*.json"}
SPANS_PER_TRACE = 9.75  # measured on the `clean` scenario
#: larger datasets are copies of this synth one (bench.bigdata)
SYNTH_MAX_SPANS = 1_000_000
#: bytes per span on disk, measured on the synth `clean` exports (rounded up)
EXPORT_BYTES_PER_SPAN = {"otlp": 900, "jaeger": 1400, "zipkin": 1000}
#: the largest case a task writes (pyarrow flatten + DuckDB store keeps raw attribute lists)
CASE_BYTES_PER_SPAN = 300


def _run(args: list[str], timeout: float = 3600) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.tasks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _runs(sizes: list[int], formats: list[str], large: list[str]) -> Iterator[tuple[int, str]]:
    """(spans, format) of every dataset a run measures: ``large`` formats only above the smallest size."""
    for n in sizes:
        for fmt in formats:
            if n == min(sizes) or fmt in large:
                yield n, fmt


def _made_marker(fmt: str, spans: int) -> Path:
    """The file that exists once the dataset of ``spans`` spans in ``fmt`` is complete: a synth
    export's truth.json, or the info.json of copies (above :data:`SYNTH_MAX_SPANS`)."""
    if spans > SYNTH_MAX_SPANS:
        return DATA / f"copies-{fmt}-{spans}" / "info.json"
    return DATA / f"clean-{fmt}-{max(1, int(spans / SPANS_PER_TRACE))}" / "truth.json"


def dataset(fmt: str, spans: int) -> tuple[str, int, int]:
    """(glob of trace files, total bytes, spans) for ``spans`` spans in ``fmt``, generated once."""
    import forensics.synth as synth

    if spans > SYNTH_MAX_SPANS:
        return _copied_dataset(fmt, spans)
    truth_path = _made_marker(fmt, spans)
    out = truth_path.parent
    if not truth_path.exists():
        if out.exists():
            shutil.rmtree(out)
        t0 = time.perf_counter()
        traces = max(1, int(spans / SPANS_PER_TRACE))
        synth.generate("clean", str(out), traces=traces, seed=42, format=fmt)
        print(f"  generated {fmt} {traces} traces in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    truth = json.loads(truth_path.read_text())
    pattern = str(out / PATTERNS[fmt])
    size = sum(os.path.getsize(p) for p in glob.glob(pattern))
    return pattern, size, truth["counts"]["spans"]


def _copied_dataset(fmt: str, spans: int) -> tuple[str, int, int]:
    """Data above :data:`SYNTH_MAX_SPANS`: copies of the synth 1M-span export with new ids and
    times (``bench.bigdata``; synth itself makes ~20k spans/s, bigdata ~1M/s). OTLP: one file cut
    at a line; Jaeger and Zipkin: copies of every file, cut at a file."""
    from bench.bigdata import write, write_dir

    template, _, _ = dataset(fmt, SYNTH_MAX_SPANS)
    info_path = _made_marker(fmt, spans)
    out = info_path.parent
    if not info_path.exists():
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if fmt == "otlp":
            info = write(out / "traces.otlp.jsonl", template, spans=spans)
        else:
            info = write_dir(out / fmt, sorted(glob.glob(template)), spans=spans, layout=fmt)
        info_path.write_text(json.dumps(info))
        print(f"  copied {fmt} {spans} spans in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    info = json.loads(info_path.read_text())
    pattern = str(out / PATTERNS[fmt])
    return pattern, sum(os.path.getsize(p) for p in glob.glob(pattern)), int(info["spans"])


def required_bytes(sizes: list[int], formats: list[str], large: list[str]) -> int:
    """Disk space a run still needs: the datasets not generated yet (a copied dataset also needs
    its 1M synth template) plus the largest case written while it runs (one at a time)."""
    need: dict[Path, int] = {}
    for n, fmt in _runs(sizes, formats, large):
        for spans in [n] + ([SYNTH_MAX_SPANS] if n > SYNTH_MAX_SPANS else []):
            done = _made_marker(fmt, spans)
            if not done.exists():
                need[done] = spans * EXPORT_BYTES_PER_SPAN[fmt]
    return sum(need.values()) + max(sizes) * CASE_BYTES_PER_SPAN


def check_space(sizes: list[int], formats: list[str], large: list[str], where: Path = DATA) -> None:
    """Refuse to start a run that would fill the disk halfway (SystemExit naming what is missing)."""
    where.mkdir(parents=True, exist_ok=True)
    need = required_bytes(sizes, formats, large)
    free = shutil.disk_usage(where).free
    if need > free:
        raise SystemExit(f"bench: needs ~{need / 1e9:.1f} GB of disk under {where} and in the temporary directory, "
                         f"{free / 1e9:.1f} GB are free; free some space, run fewer sizes (e.g. --spans 1000000), "
                         "or pass --skip-space-check")


def machine() -> dict:
    import duckdb
    import pyarrow

    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__, "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", default="1000000", help="comma-separated span counts (default 1000000)")
    ap.add_argument("--formats", default="otlp,jaeger,zipkin")
    ap.add_argument("--naive-max", type=int, default=2_000_000, help="skip json_normalize above this many spans")
    ap.add_argument("--no-detectors", action="store_true")
    ap.add_argument("--skip-space-check", action="store_true", help="start even if the disk looks too small")
    ap.add_argument("--large-formats", default=None,
                    help="comma-separated formats run at sizes above the smallest (default: all of --formats)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.spans.split(",")]
    formats = args.formats.split(",")
    large = formats if args.large_formats is None else args.large_formats.split(",")
    if not args.skip_space_check:
        check_space(sizes, formats, large)
    from forensics.detectors import detectors

    results: dict = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "ingest": [], "detectors": []}
    tmp = Path(tempfile.mkdtemp(prefix="forensics-bench-"))
    try:
        for n, fmt in _runs(sizes, formats, large):
            pattern, size, spans = dataset(fmt, n)
            case_path = tmp / f"{fmt}-{n}.duckdb"
            row = {"format": fmt, "spans": spans, "bytes": size}
            for tool in ("floor", "pyarrow", "pyarrow_store", "duckdb", "pandas", "forensics"):
                if tool == "pandas" and spans > args.naive_max:
                    row[tool] = {"skipped": f"more than --naive-max={args.naive_max} spans"}
                    continue
                if tool.startswith("pyarrow") and fmt != "otlp":
                    row[tool] = {"skipped": "pyarrow's JSON reader takes JSON lines only"}
                    continue
                extra = [str(case_path)] if tool in ("forensics", "pyarrow_store") else []
                if case_path.exists():
                    case_path.unlink()
                row[tool] = _run([tool, fmt, pattern, *extra])
                print(f"  {n:>10} {fmt:<7} {tool:<10} {row[tool]}", file=sys.stderr)
            results["ingest"].append(row)
            if fmt == "otlp" and not args.no_detectors and "seconds" in row["forensics"]:
                det = {"spans": spans}
                for name in sorted(detectors()):
                    det[name] = _run([f"detect:{name}", str(case_path)])
                    print(f"  {n:>10} detect {name:<20} {det[name]}", file=sys.stderr)
                det["detect_cli"] = _run(["detect_cli", str(case_path)])
                # last: it adds rows to the case (1% of the spans loaded again, as overlapping
                # exports do; #16: 44 repeated spans once ran critical_path out of memory)
                det["critical_path_1pct_duplicated"] = _run(["detect_dup:critical_path", str(case_path)])
                print(f"  {n:>10} detect critical_path with 1% duplicated rows "
                      f"{det['critical_path_1pct_duplicated']}", file=sys.stderr)
                results["detectors"].append(det)
            if case_path.exists():
                case_path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{results['started'].replace(':', '')}.json").write_text(text)
    print(render(results))
    return 0


def _ratio(base: dict, ours: dict) -> str:
    """Wall-clock ratio, and CPU-time ratio in parentheses when both were measured."""
    if "seconds" not in base or "seconds" not in ours:
        return "-"
    cpu = (f" ({base['cpu_seconds'] / ours['cpu_seconds']:.2f}x cpu)"
           if base.get("cpu_seconds") and ours.get("cpu_seconds") else "")
    return f"{base['seconds'] / ours['seconds']:.2f}x{cpu}"


def render(results: dict) -> str:
    """The ratio table README quotes (ratios > 1: forensics is faster than that baseline)."""
    m = results["machine"]
    lines = [f"machine: {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB), Python {m['python']}, DuckDB {m['duckdb']}", "",
             "| format | spans | MB | forensics s | CPU s | spans/s | MB/s | peak RSS MB | vs orjson floor | vs pyarrow open_json+flatten | vs same + DuckDB store | vs DuckDB read_json+UNNEST | vs json_normalize |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in results["ingest"]:
        ours = row["forensics"]
        mb = row["bytes"] / 1e6
        if "seconds" not in ours:
            lines.append(f"| {row['format']} | {row['spans']:,} | {mb:,.0f} | failed: {ours.get('error')} | | | | | | | | | |")
            continue
        lines.append(
            f"| {row['format']} | {row['spans']:,} | {mb:,.0f} | {ours['seconds']:.1f} | {ours.get('cpu_seconds', float('nan')):.1f} | "
            f"{row['spans'] / ours['seconds']:,.0f} | "
            f"{mb / ours['seconds']:,.0f} | {ours['peak_rss_mb']:,.0f} | {_ratio(row['floor'], ours)} | "
            f"{_ratio(row.get('pyarrow', {}), ours)} | {_ratio(row.get('pyarrow_store', {}), ours)} | {_ratio(row['duckdb'], ours)} | {_ratio(row['pandas'], ours) if 'seconds' in row['pandas'] else 'skipped'} |")
    lines += ["", "Baseline seconds / peak RSS MB: " + "; ".join(
        f"{r['format']} {r['spans']:,}: " + ", ".join(
            f"{t} {r[t]['seconds']:.1f}s ({r[t].get('cpu_seconds', float('nan')):.1f} cpu)/{r[t]['peak_rss_mb']:,.0f}MB" for t in ("floor", "pyarrow", "pyarrow_store", "duckdb", "pandas") if "seconds" in r.get(t, {}))
        for r in results["ingest"])]
    per_span = {(r["format"], r["spans"]): r["forensics"]["seconds"] / r["spans"]
                for r in results["ingest"] if "seconds" in r["forensics"]}
    versus = [f"{fmt} {n:,} spans: {t / otlp:.2f}x OTLP's" for (fmt, n), t in per_span.items() if fmt != "otlp"
              for (other, m), otlp in per_span.items() if other == "otlp" and m == n]
    if versus:
        lines += ["", "forensics seconds per span, Jaeger/Zipkin vs OTLP (target <= 2x): " + "; ".join(versus)]
    for det in results["detectors"]:
        lines += ["", f"Detectors over {det['spans']:,} spans (seconds, each in its own process incl. start-up):", "",
                  "| detector | seconds | peak RSS MB |", "|---|---|---|"]
        for name, r in det.items():
            if name == "spans":
                continue
            lines.append(f"| {name} | {r.get('seconds', float('nan')):.1f} | {r.get('peak_rss_mb', float('nan')):,.0f} |"
                         if "seconds" in r else f"| {name} | failed: {r.get('error')} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
