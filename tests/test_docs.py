"""README documents every CLI command and every detector."""
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
