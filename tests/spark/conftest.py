"""Spark local-mode fixtures: one SparkSession per test session, a synth case and its lake."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess

import pytest


def _java_ok() -> bool:
    java = shutil.which("java")
    if not java:
        return False
    try:
        return subprocess.run([java, "-version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


MISSING = [m for m in ("pyspark", "sqlglot") if importlib.util.find_spec(m) is None]
SKIP_REASON = (f"needs {', '.join(MISSING)} (pip install 'forensics[spark]')" if MISSING
               else None if _java_ok() else "needs a Java runtime (java on PATH) for Spark local mode")


@pytest.fixture(scope="session")
def spark():
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from forensics.engines.spark import local_session

    session = local_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def incident(tmp_path_factory, scenario: str):
    """(DuckDB case, lake dir) of a small synth incident, exported with forensics.export."""
    import forensics
    from forensics.export import export
    from forensics.synth import generate

    base = tmp_path_factory.mktemp(scenario)
    generate(scenario, base / "raw", traces=300, seed=1)
    case = forensics.open_case()
    case.load(base / "raw")
    export(case, base / "lake")
    return case, base / "lake"
