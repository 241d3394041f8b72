"""Robust location/scale scores."""
from __future__ import annotations

import numpy as np

#: MAD of a standard normal: scales the median absolute deviation to a standard deviation.
MAD_TO_SD = 1.4826


def robust_z(values: np.ndarray) -> np.ndarray:
    """Robust z-scores ``(x - median) / (1.4826 · MAD)`` (unitless).

    Outliers barely move the median and the MAD, so one huge value does not hide itself the
    way it does with a mean/standard-deviation z-score. NaN inputs stay NaN. When the MAD is 0
    (more than half of the values are equal) the mean absolute deviation is used instead
    (scaled by 1.2533, its normal-consistency constant); when that is 0 too, every score is 0.

    >>> robust_z(np.array([10., 11., 9., 10., 100.])).round(1).tolist()
    [0.0, 0.7, -0.7, 0.0, 60.7]
    """
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return np.full(x.shape, np.nan)
    med = np.median(finite)
    scale = MAD_TO_SD * np.median(np.abs(finite - med))
    if scale == 0:
        scale = 1.2533 * np.mean(np.abs(finite - med))
    if scale == 0:
        return np.where(np.isfinite(x), 0.0, np.nan)
    return (x - med) / scale
