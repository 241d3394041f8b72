"""Grouping accuracy of the log templates on the labelled corpus in tests/data/log_templates/.

``python -m bench.templates`` loads each system's messages as ``logs`` rows of a case, mines
them as a load does (:func:`forensics.mine_templates`) and prints, per system, the number of
true events, of templates found, and the grouping accuracy: the share of messages whose template
groups exactly the messages of their true event (the measure of the Loghub benchmark, Zhu et al.,
"Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019). docs/templates.md quotes it.
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "log_templates"


def grouping_accuracy(truth: list[str], found: list[str]) -> float:
    """Share of items whose found group holds exactly the items of their true group."""
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_found: dict[str, set[int]] = defaultdict(set)
    for i, (t, f) in enumerate(zip(truth, found)):
        by_truth[t].add(i)
        by_found[f].add(i)
    return sum(1 for t, f in zip(truth, found) if by_truth[t] == by_found[f]) / len(truth) if truth else 1.0


def read_corpus(system: str) -> tuple[list[str], list[str]]:
    """(true event ids, messages) of one system's labelled file."""
    with open(CORPUS / f"{system}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["event"] for r in rows], [r["message"] for r in rows]


def mined(messages: list[str]) -> list[str]:
    """The template ids a case gives ``messages`` loaded as logs (one second apart, in order)."""
    import forensics
    from forensics import schema

    case = forensics.open_case()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cols = {"time": [start + timedelta(seconds=i) for i in range(len(messages))], "body": messages,
            "source_file": ["corpus"] * len(messages), "source_line": list(range(1, len(messages) + 1))}
    sch = schema.arrow_schema("logs")
    table = pa.table({f.name: pa.array(cols.get(f.name, [None] * len(messages)), f.type) for f in sch}, schema=sch)
    case.con.register("_corpus", table)
    case.execute("INSERT INTO logs BY NAME SELECT * FROM _corpus")
    forensics.mine_templates(case)
    return [r[0] for r in case.sql("SELECT template_id FROM logs ORDER BY source_line").rows()]


def systems() -> list[str]:
    return sorted(p.stem for p in CORPUS.glob("*.csv"))


def main(argv: list[str]) -> None:
    print("| system | messages | events | templates | grouping accuracy |")
    print("|---|---|---|---|---|")
    total = correct = 0.0
    for system in argv or systems():
        truth, messages = read_corpus(system)
        found = mined(messages)
        ga = grouping_accuracy(truth, found)
        total += len(truth)
        correct += ga * len(truth)
        print(f"| {system} | {len(truth)} | {len(set(truth))} | {len(set(found))} | {ga:.3f} |")
    print(f"| all | {int(total)} | | | {correct / total:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
