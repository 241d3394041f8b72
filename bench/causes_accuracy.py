"""Accuracy of `forensics.rank_causes` on labelled fault injections: top-1 and top-3 per fault type.

    python -m bench.causes_accuracy [DIR] [--mode given|found|both] [--json OUT]

DIR (default ``tests/data/realapp``) is searched for ``truth.json`` files of issue #20 (written
by ``python -m realapp faults``: the injected ``service``, the ``fault``, the ``baseline`` and
``faulty`` windows). Each case is loaded into its own in-memory case and ranked twice: with the
labelled windows (``given``) and with the onset found from the data (``found``). Prints one
Markdown table per mode (the one docs/root-cause.md and README quote) and writes the per-case
results to ``bench/results/causes-accuracy-<time>.json``; ``--expected`` writes the per-case
ranks that tests/realapp/test_faults.py holds the ranking to (tests/realapp/fault_ranks.json; the
published tables are computed from it by :func:`tables`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def labelled_cases(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(case directory, truth) for every issue-20 truth.json under ``root``, sorted by path."""
    for path in sorted(root.rglob("truth.json")):
        truth = json.loads(path.read_text())
        if truth.get("issue") == 20 and truth.get("service") and truth.get("fault"):
            truth.setdefault("case", path.parent.name)
            yield path.parent, truth


def rank_loaded(case: Any, truth: dict[str, Any], mode: str) -> dict[str, Any]:
    """Rank a loaded labelled case with the labelled windows (``given``) or the onset found
    from the data (``found``): the truth service's ``rank`` (None: not ranked), its signal
    groups and strength, the top five and the periods (tests/realapp/test_faults.py uses it too)."""
    import forensics

    if mode == "given":
        window = (truth["faulty"]["start"], truth["faulty"]["end"])
        baseline = (truth["baseline"]["start"], truth["baseline"]["end"])
        causes = forensics.rank_causes(case, window=window, baseline=baseline)
    else:
        causes = forensics.rank_causes(case)
    names = [r["service"] for r in causes]
    at = names.index(truth["service"]) if truth["service"] in names else None
    return {"case": truth["case"], "fault": truth["fault"], "service": truth["service"],
            "mode": mode, "rank": None if at is None else at + 1,
            "signals": None if at is None else causes[at]["signals"], "strong": at is not None and causes[at]["strong"],
            "ranking": [(r["service"], round(r["score"], 1), r["strong"]) for r in causes.records()[:5]],
            "periods": causes.periods.describe() if causes.periods else None, "note": causes.note}


def expected_ranks(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The per-case ranks of both modes, as tests/realapp/fault_ranks.json keeps them."""
    out: dict[str, Any] = {}
    for mode, rs in results.items():
        for r in rs:
            out.setdefault(r["case"], {"fault": r["fault"], "service": r["service"]})[mode] = r["rank"]
    return dict(sorted(out.items()))


def tables(expected: dict[str, Any]) -> dict[str, str]:
    """Per mode, the Markdown :func:`table` of the per-case ranks in ``expected``."""
    modes = sorted({m for v in expected.values() for m in ("given", "found") if m in v})
    return {m: table([{"fault": v["fault"], "rank": v[m]} for v in expected.values() if m in v]) for m in modes}


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: per fault type, cases, top-1 and top-3 (count and %), and the total."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by[r["fault"]].append(r)
    lines = ["| fault | cases | top-1 | top-3 |", "|---|---|---|---|"]

    def row(name: str, rs: list[dict[str, Any]]) -> str:
        n = len(rs)
        t1 = sum(1 for r in rs if r["rank"] == 1)
        t3 = sum(1 for r in rs if r["rank"] is not None and r["rank"] <= 3)
        return f"| {name} | {n} | {t1}/{n} ({100 * t1 / n:.0f}%) | {t3}/{n} ({100 * t3 / n:.0f}%) |"

    for fault in sorted(by):
        lines.append(row(fault, by[fault]))
    lines.append(row("**all**", results))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.causes_accuracy", description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=str(ROOT / "tests" / "data" / "realapp"))
    ap.add_argument("--mode", choices=["given", "found", "both"], default="both")
    ap.add_argument("--json", help="write the per-case results here too")
    ap.add_argument("--expected", help="write the per-case ranks of both modes here (tests/realapp/fault_ranks.json: "
                                       "the ranks tests/realapp/test_faults.py holds the ranking to)")
    args = ap.parse_args(argv)
    cases = list(labelled_cases(Path(args.dir)))
    if not cases:
        print(f"no labelled fault injections (truth.json with issue 20) under {args.dir}", file=sys.stderr)
        return 2
    modes = ["given", "found"] if args.mode == "both" else [args.mode]
    out: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime()), "dir": args.dir, "modes": {}}
    import forensics

    out["modes"] = {mode: [] for mode in modes}
    for case_dir, truth in cases:
        case = forensics.open_case()  # loaded once, ranked in each mode
        forensics.load(case, str(case_dir), progress=False)
        for mode in modes:
            r = rank_loaded(case, truth, mode)
            out["modes"][mode].append(r)
            print(f"{mode:5} {r['case']:45} rank {r['rank']}  {r['ranking'][:3]}", file=sys.stderr, flush=True)
        case.close()
    for mode, results in out["modes"].items():
        print(f"\n{mode} windows ({len(results)} cases)\n\n{table(results)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=2) + "\n"
    (RESULTS / f"causes-accuracy-{out['when']}.json").write_text(text)
    if args.json:
        Path(args.json).write_text(text)
    if args.expected:
        Path(args.expected).write_text(json.dumps(expected_ranks(out["modes"]), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
