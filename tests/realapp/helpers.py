"""Loading the realapp captures (tests/data/realapp) for the tests that check their truth.json."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

import forensics

DATA = Path(__file__).resolve().parents[1] / "data" / "realapp"


def truth(scenario: str) -> dict[str, Any]:
    return json.loads((DATA / scenario / "truth.json").read_text())


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in DATA.glob("*/truth.json"))


def variants() -> list[tuple[str, str]]:
    return [(s, v) for s in scenarios() for v in truth(s)["variants"]]


@lru_cache(maxsize=None)
def loaded(scenario: str, variant: str) -> tuple[Any, Any]:
    """(case, load report) of one variant, loaded once per test session (read-only use)."""
    case = forensics.open_case()
    report = forensics.load(case, DATA / scenario / variant)
    return case, report


def df(scenario: str, variant: str, query: str, params: list | None = None) -> pd.DataFrame:
    case, _ = loaded(scenario, variant)
    return case.sql(query, params).to_pandas()


def spans(scenario: str, variant: str) -> pd.DataFrame:
    return df(scenario, variant, "SELECT trace_id, span_id, parent_span_id, service, name, kind, status, "
                                 "start_time, end_time, duration_ms, http_status_code, http_url, db_statement, "
                                 "scope_name, service_version, host_name, attributes FROM spans")


def max_overlap(starts: pd.Series, ends: pd.Series) -> int:
    """The largest number of intervals open at one instant (an end before a start at a tie)."""
    ev = pd.DataFrame({"t": list(starts) + list(ends), "d": [1] * len(starts) + [-1] * len(ends)})
    ev = ev.sort_values(["t", "d"])
    return int(ev["d"].cumsum().max())


def with_copies(scenario: str, variant: str) -> Any:
    """A new case of one variant in which the spans of the ``duplicated_traces`` of its truth are
    held twice: a load keeps repeated records once, but a case written before it did, or rows
    inserted by hand, hold copies, and every detector must still see each span once."""
    case = forensics.open_case()
    forensics.load(case, DATA / scenario / variant, progress=False)
    traces = truth(scenario)["facts"]["duplicated_traces"]
    case.execute("INSERT INTO spans SELECT * FROM spans WHERE list_contains(?, trace_id)", [traces])
    return case
