"""Trace-first analysis: compare a selection with a baseline, diff groups of traces, critical
paths and clock-skew correction. Detectors build on these; they are also public tools."""
from .clock_skew import adjust_clock_skew
from .compare import compare
from .critical_path import critical_path, critical_path_by_operation
from .trace_diff import trace_diff

__all__ = ["adjust_clock_skew", "compare", "critical_path", "critical_path_by_operation", "trace_diff"]
