"""Time the explorer's recomputation: ``python -m bench.explore [--case PATH] [--rounds N]``.

Loads the flagship sample (``sample_data/catalog_n_plus_one``, the demo case) into a case file
once (or opens ``--case``), runs the detectors once, builds :func:`forensics.explore`, then
changes its filters as a user does, each change timed as the wall time of setting the widget
(observers run synchronously, as in a kernel): every service, every version of the service the
explorer opened on, a few operations, the time window narrowed and widened, and a click on a
trace (its waterfall). ``--rounds`` repeats the sequence: the first round computes every
selection (``first``), the others find them kept (``again``). Prints per kind the median and
worst wall seconds and the median CPU seconds of each; writes ``bench/results/explore-<UTC>.json``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import forensics

from . import cpu_s, host, timed, write_result

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT.parent / "sample_data" / "catalog_n_plus_one"


def _timed(samples: dict[str, list[tuple[float, float]]], kind: str, action) -> None:
    t0, c0 = time.perf_counter(), cpu_s()
    action()
    samples.setdefault(kind, []).append((time.perf_counter() - t0, cpu_s() - c0))


def _set(widget, value) -> None:
    widget.value = value


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", type=Path, default=ROOT / "data" / "explore" / "catalog_n_plus_one.duckdb")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.case.exists():
        args.case.parent.mkdir(parents=True, exist_ok=True)
        with forensics.open_case(args.case) as case:
            forensics.load(case, SAMPLE, progress=False)
    result: dict = {"case": str(args.case), **host()}
    with forensics.open_case(args.case, read_only=True) as case:
        result["spans"] = case.sql("SELECT count(*) FROM spans").scalar()
        with timed(result, "detect"):
            findings = forensics.detect(case, progress=False)
        with timed(result, "open"):
            ex = forensics.explore(case, findings=findings)
        first = ex.service.value
        samples: dict[str, list[tuple[float, float]]] = {}
        for round_ in range(args.rounds):
            tag = "first" if round_ == 0 else "again"
            for service in [s for s in ex.service.options if s != first] + [first]:
                _timed(samples, f"service ({tag})", lambda s=service: _set(ex.service, s))
            for version in [v for v in ex.version.options][1:] + [ex.version.options[0]]:
                _timed(samples, f"version ({tag})", lambda v=version: _set(ex.version, v))
            for op in list(ex.operation.options)[1:4] + [ex.operation.options[0]]:
                _timed(samples, f"operation ({tag})", lambda o=op: _set(ex.operation, o))
            n = len(ex.window.options)
            for index in ((n // 3, 2 * n // 3), (0, n // 2), (0, n - 1)):
                _timed(samples, f"time window ({tag})", lambda i=index: setattr(ex.window, "index", i))
            for trace in [o[1] for o in ex.traces.options[1:4]]:
                _timed(samples, f"trace click ({tag})", lambda t=trace: _set(ex.traces, t))
    result["changes"] = {kind: {"n": len(v), "median_s": round(statistics.median(w for w, _ in v), 3),
                                "max_s": round(max(w for w, _ in v), 3),
                                "median_cpu_s": round(statistics.median(c for _, c in v), 3)}
                         for kind, v in samples.items()}
    write_result("explore", result)
    return result


if __name__ == "__main__":
    main()
