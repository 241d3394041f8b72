"""Session-wide test hooks.

``pytest_terminal_summary`` prints the malformed-input corpus line
``corpus: N cases, crashes = C, records lost = L`` computed from the outcomes that
tests/test_corpus.py attaches to each test report (``user_properties``), so it is right under
pytest-xdist too (reports travel from the workers to the controller).
"""
from __future__ import annotations

from typing import Any

import pytest

_corpus: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in getattr(report, "user_properties", ()):
        if key == "corpus" and isinstance(value, dict):
            prev = _corpus.get(value["name"], {"crash": 0, "lost": 0})
            _corpus[value["name"]] = {"crash": max(prev["crash"], value["crash"]), "lost": max(prev["lost"], value["lost"])}


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
