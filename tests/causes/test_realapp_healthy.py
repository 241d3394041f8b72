"""rank_causes on healthy captures of the real OpenTelemetry-instrumented app (tests/data/realapp).

No fault was injected: on a busy 2-core machine with a CPU hog (healthy_noisy), and across a
no-op redeploy while two CPU hogs slow every service down alike (healthy_noop_redeploy), no
service may come out as a strong candidate: a shift every service went through is not a cause.
"""
from __future__ import annotations

import pytest

import forensics
from forensics.causes import rank_causes

from ..realapp.helpers import loaded


def _case(name: str) -> forensics.Case:
    return loaded(name, "otlp")[0]  # loaded once per test process, shared with tests/realapp


@pytest.mark.parametrize("name", ["healthy_noisy", "healthy_noop_redeploy"])
def test_no_strong_candidate_on_a_healthy_capture(name):
    case = _case(name)
    lo, hi = case.sql("SELECT min(start_time), max(start_time) FROM spans").rows()[0]
    for window in (None, (lo + (hi - lo) / 2, None)):
        causes = rank_causes(case, window=window)
        assert causes.top is None, causes
        assert not any(r["strong"] for r in causes)
        if causes.periods is not None:
            assert causes.note.startswith("no strong candidate"), causes.note


def test_the_noop_redeploy_is_seen_but_not_blamed():
    causes = rank_causes(_case("healthy_noop_redeploy"))
    assert causes.periods.how == "onset"  # every service slowed down at the deploy
    catalog = next(r for r in causes if r["service"] == "catalog-service")
    assert any(s["family"] == "events" and "1.7.10" in s["key"] for s in catalog["evidence"]["signals"])
    assert not catalog["strong"]
