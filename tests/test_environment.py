"""environment.yml must name exactly the dependencies of pyproject.toml (runtime + dev)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"]} | {_norm(r) for r in project["optional-dependencies"]["dev"]}
    listed = set()
    in_pip = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped == "- pip:":
            in_pip = True
            continue
        if in_pip and stripped.startswith("- ") and not stripped.startswith("- -e"):
            listed.add(_norm(stripped[2:]))
    assert listed == wanted, f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"


def test_environment_yml_installs_the_project_with_dev_extra() -> None:
    text = (ROOT / "environment.yml").read_text()
    assert "- -e .[dev]" in text
    assert "python=3.11" in text
