"""Detectors: one module per failure mode, each ``detect_<name>(case, *, thresholds) -> Findings``."""
from .registry import DETECTORS, DetectorSpec, detect, detector, detectors

__all__ = ["DETECTORS", "DetectorSpec", "detect", "detector", "detectors"]

from .._callable import make_module_callable  # noqa: E402

make_module_callable(__name__, detectors)
