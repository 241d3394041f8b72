"""Root-cause ranking at scale: `forensics.rank_causes` over a case of N spans.

    python -m bench.causes [--spans 10000000] [--source sample_data/catalog_n_plus_one] [--keep]

The case is the source incident (the flagship sample by default: 44k spans, logs, metrics,
deploys and Kubernetes events) loaded once, then its spans and logs copied until the case holds
N spans: each copy gets new trace and span ids (md5 of the old id and the copy number) and keeps
its times, so the incident's onset, its traffic shape and its cause stay where they were, only
denser. The ranking then runs in its own process (onset found from the data, as a user would
run it), timed with its CPU seconds and peak RSS, with the machine's load average (1, 5 and 15
minutes) before and after it (other work on the machine slows it); the result goes to
``bench/results/causes-<time>.json``. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"


def build(case_path: Path, source: Path, spans: int) -> int:
    """Write the case (loaded source + copies) and return its span count."""
    import forensics

    if case_path.exists():
        case_path.unlink()
    with forensics.open_case(case_path) as case:
        forensics.load(case, str(source), progress=False)
        base = case.sql("SELECT count(*) FROM spans").scalar()
        case.execute("CREATE TEMP TABLE src_spans AS SELECT * FROM spans")
        case.execute("CREATE TEMP TABLE src_logs AS SELECT * FROM logs WHERE trace_id IS NOT NULL")
        k = 0
        while base * (k + 1) < spans:
            k += 1
            case.execute("""
INSERT INTO spans SELECT * REPLACE (md5(trace_id || $k) AS trace_id, left(md5(span_id || $k), 16) AS span_id,
  left(md5(parent_span_id || $k), 16) AS parent_span_id)
FROM src_spans LIMIT $n""", {"k": str(k), "n": spans - base * k})
            case.execute("""
INSERT INTO logs SELECT * REPLACE (md5(trace_id || $k) AS trace_id, left(md5(span_id || $k), 16) AS span_id)
FROM src_logs""", {"k": str(k)})
        return case.sql("SELECT count(*) FROM spans").scalar()


def rank(case_path: str) -> None:
    """(Child process) rank_causes over the case; prints one JSON line."""
    import forensics

    t0 = time.perf_counter()
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    with forensics.open_case(case_path, read_only=True) as case:
        causes = forensics.rank_causes(case)
        seconds, cpu = time.perf_counter() - t0, sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
        spans = case.sql("SELECT count(*) FROM spans").scalar()
    print(json.dumps({"spans": spans,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "top": causes[0]["service"] if len(causes) else None, "strong": bool(causes.top),
        "periods": causes.periods.to_dict() if causes.periods else None}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.causes", description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--source", default=str(ROOT / "sample_data" / "catalog_n_plus_one"))
    ap.add_argument("--keep", action="store_true", help="keep the case file under bench/data for another run")
    ap.add_argument("--rank", help=argparse.SUPPRESS)  # child process
    args = ap.parse_args(argv)
    if args.rank:
        rank(args.rank)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    case_path = DATA / f"causes-{args.spans}.duckdb"
    t0 = time.perf_counter()
    n = build(case_path, Path(args.source), args.spans) if not (args.keep and case_path.exists()) else None
    built_s = time.perf_counter() - t0
    load_before = os.getloadavg()
    proc = subprocess.run([sys.executable, "-m", "bench.causes", "--rank", str(case_path)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update({"load_average": {"before": [round(x, 2) for x in load_before],
                                    "after": [round(x, 2) for x in os.getloadavg()]},
                   "source": os.path.relpath(args.source, ROOT), "build_seconds": round(built_s, 1) if n else None,
                   "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                   "when": time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())})
    out = RESULTS / f"causes-{result['when']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        case_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
