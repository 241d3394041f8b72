"""Time the HTML report of a large case: ``python -m bench.report [--traces N] [--out DIR]``.

Generates the flagship incident with ``--traces`` traces (27,000 give ~1M spans), loads it into a
case file (once; reused when present), runs the detectors, then times, in this process:
``forensics.incidents`` and ``forensics.report`` (the report groups again, as the CLI does), and
prints wall and CPU seconds of each, the report's size, the number of spans and the host's load.
Writes ``bench/results/report-<UTC>.json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import forensics

from . import host, timed, write_result

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
    result: dict = {"traces": args.traces, **host()}
    with forensics.open_case(case_path, read_only=True) as case:
        result["spans"] = case.sql("SELECT count(*) FROM spans").scalar()
        with timed(result, "detect"):
            findings = forensics.detect(case)
        with timed(result, "incidents"):
            incidents = forensics.incidents(case, findings=findings)
        result["incidents"] = len(incidents)
        with timed(result, "report"):
            out = forensics.report(case, args.out / "report.html", findings=findings)
        result["report_bytes"] = out.stat().st_size
    write_result("report", result)
    return result


if __name__ == "__main__":
    main()
