"""README documents every CLI command and every detector; docs/detectors.md every detector and threshold."""
from __future__ import annotations

from pathlib import Path

from forensics.cli import cli
from forensics.detectors import detectors

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_cli_command_is_documented():
    missing = [name for name in cli.commands if f"forensics {name}" not in README]
    assert not missing, f"README does not show: {missing}"


def test_every_detector_is_documented():
    missing = [name for name in detectors() if f"`{name}`" not in README]
    assert not missing, f"README does not describe detectors: {missing}"


DETECTOR_DOCS = (Path(__file__).resolve().parents[1] / "docs" / "detectors.md").read_text()


def _sections(text: str) -> dict[str, str]:
    """``## `name` `` sections of docs/detectors.md: name -> text up to the next section."""
    parts = text.split("\n## ")
    return {p.split("\n", 1)[0].strip().strip("`"): p for p in parts[1:]}


def test_every_detector_and_threshold_is_documented_in_docs_detectors():
    sections = _sections(DETECTOR_DOCS)
    missing = [name for name in detectors() if name not in sections]
    assert not missing, f"docs/detectors.md has no section for: {missing}"
    for name, spec in detectors().items():
        text = sections[name]
        undocumented = [f"| `{k}` | {v} |" for k, v in spec.thresholds().items() if f"| `{k}` | {v} |" not in text]
        assert not undocumented, f"docs/detectors.md, {name}: no table row (key, current default) {undocumented}"
        assert "**One trace.**" in text, f"docs/detectors.md, {name}: say how it behaves on one trace"
