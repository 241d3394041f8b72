"""forensics: post-incident forensics for distributed systems.

Load traces, logs, metrics and events into one DuckDB case, query it with SQL, detect the
common failure modes with evidence, and share a self-contained report.

>>> import forensics
>>> case = forensics.open_case()
>>> case.sql("select count(*) from spans").scalar()
0
"""
from __future__ import annotations

from ._version import __version__

from .case import Case, as_case, open_case
from . import detectors
from .analysis import adjust_clock_skew, compare, critical_path, trace_diff
from .causes import Causes, rank_causes
from .custody import verify
from .detectors import detect
from .errors import ForensicsError, LoadError, UsageError
from .findings import Findings
from .loaders import LoadReport, formats, load
from .result import Result
from .templates import mine_templates

#: loaded on first use; report, explore and export are callable modules (see forensics._callable)
_LAZY = ("viz", "explore", "report", "synth", "export")


def incidents(case: "Case", **kwargs):
    """Group findings into incidents: cause, symptoms, trigger, onset, end, blast radius
    (:func:`forensics.incident.incidents`; keyword arguments as there)."""
    from .incident import incidents as _incidents

    return _incidents(case, **kwargs)


def __getattr__(name: str):
    """Heavy parts (plotly, ipywidgets, scikit-learn) load on first use, keeping ``import forensics`` fast."""
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"forensics.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'forensics' has no attribute {name!r}")


__all__ = [
    "Case",
    "Causes",
    "Findings",
    "ForensicsError",
    "LoadError",
    "LoadReport",
    "Result",
    "UsageError",
    "adjust_clock_skew",
    "as_case",
    "compare",
    "critical_path",
    "detect",
    "detectors",
    "explore",
    "export",
    "formats",
    "incidents",
    "load",
    "mine_templates",
    "open_case",
    "rank_causes",
    "report",
    "synth",
    "trace_diff",
    "verify",
    "viz",
    "__version__",
]
