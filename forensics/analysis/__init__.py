"""Trace-first analysis: compare a selection with a baseline, diff groups of traces, critical paths."""
from .compare import compare

__all__ = ["compare"]
