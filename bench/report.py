"""Time the HTML report of a large case: ``python -m bench.report [--traces N] [--out DIR]``.

Generates the flagship incident with ``--traces`` traces (27,000 give ~1M spans), loads it into a
case file (once; reused when present), runs the detectors, then times, in this process:
``forensics.incidents`` and ``forensics.report`` (the report groups again, as the CLI does), and
prints seconds, the report's size and the number of spans. Writes ``bench/results/report-<UTC>.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import forensics

from . import write_result

ROOT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=27_000)
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "report")
    args = ap.parse_args(argv)
    src = args.out / f"n_plus_one-{args.traces}"
    case_path = args.out / f"n_plus_one-{args.traces}.duckdb"
    if not case_path.exists():
        forensics.synth.generate("n_plus_one", src, traces=args.traces, seed=7)
        with forensics.open_case(case_path) as case:
            forensics.load(case, src, progress=False)
    result: dict = {"traces": args.traces}
    with forensics.open_case(case_path, read_only=True) as case:
        result["spans"] = case.sql("SELECT count(*) FROM spans").scalar()
        t0 = time.perf_counter()
        findings = forensics.detect(case)
        result["detect_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        incidents = forensics.incidents(case, findings=findings)
        result["incidents_s"] = round(time.perf_counter() - t0, 2)
        result["incidents"] = len(incidents)
        t0 = time.perf_counter()
        out = forensics.report(case, args.out / "report.html", findings=findings)
        result["report_s"] = round(time.perf_counter() - t0, 2)
        result["report_bytes"] = out.stat().st_size
    write_result("report", result)
    return result


if __name__ == "__main__":
    main()
