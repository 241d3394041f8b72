"""Session-wide test hooks.

``pytest_terminal_summary`` prints the malformed-input corpus line
``corpus: N cases, crashes = C, records lost = L`` computed from the outcomes that
tests/test_corpus.py attaches to each test report (``user_properties``), so it is right under
pytest-xdist too (reports travel from the workers to the controller).
"""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

# Every property-based test is reproducible: CI and developers see the same examples.
settings.register_profile("forensics", derandomize=True, database=None, deadline=None)
settings.load_profile("forensics")

_corpus: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in getattr(report, "user_properties", ()):
        if key == "corpus" and isinstance(value, dict):
            prev = _corpus.get(value["name"], {})
            _corpus[value["name"]] = {k: max(prev.get(k, 0), value.get(k, 0)) for k in ("crash", "lost", "refused")}


def corpus_summary() -> str | None:
    """The summary line, or None when no corpus case ran."""
    if not _corpus:
        return None
    crashes = sum(v["crash"] for v in _corpus.values())
    lost = sum(v["lost"] for v in _corpus.values())
    return f"corpus: {len(_corpus)} cases, crashes = {crashes}, records lost = {lost}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    line = corpus_summary()
    if line:
        terminalreporter.write_sep("-", "malformed-input corpus")
        terminalreporter.write_line(line)
        refused = sorted(name for name, v in _corpus.items() if v["refused"])
        if refused:  # whole files a loader refused with a clear LoadError (forced format does not fit)
            terminalreporter.write_line(f"corpus: {len(refused)} files refused as a whole: {', '.join(refused)}")
