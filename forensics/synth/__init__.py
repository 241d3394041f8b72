"""Synthetic incidents with known ground truth, for sample_data/, tests, notebooks and benchmarks.

>>> import tempfile, forensics.synth as synth
>>> truth = synth.generate("n_plus_one", tempfile.mkdtemp(), traces=300, seed=1)
>>> truth.expected[0]["detector"], truth.expected[0]["target"]
('n_plus_one', 'inventory-service')
"""
from .api import Truth, generate
from .builder import SpanBuilder, SpanRef
from .scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Scenario", "SpanBuilder", "SpanRef", "Truth", "generate"]
