"""Change points in a regularly sampled series (e.g. requests or errors per minute)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .robust import MAD_TO_SD


def _best_split(seg: np.ndarray, min_size: int) -> tuple[int, float]:
    """Index and SSE reduction of the best single mean-shift split of ``seg`` (-1 if none)."""
    n = seg.size
    if n < 2 * min_size:
        return -1, 0.0
    csum = np.cumsum(seg)
    total = csum[-1]
    k = np.arange(min_size, n - min_size + 1)  # left part is seg[:k]
    left = csum[k - 1]
    # SSE reduction of splitting at k: k(n-k)/n · (mean_left - mean_right)²
    gain = (left / k - (total - left) / (n - k)) ** 2 * k * (n - k) / n
    best = int(np.argmax(gain))
    return int(k[best]), float(gain[best])


def change_points(series: np.ndarray, *, min_size: int = 3, penalty: float = 3.0,
                  max_points: int = 10) -> list[int]:
    """Indices where the mean of ``series`` shifts, by binary segmentation.

    The series is split recursively at the point that most reduces the sum of squared
    errors around segment means (the CUSUM statistic); a split is kept only when that reduction
    exceeds ``penalty · σ² · log(n)`` (a BIC-style penalty), with σ estimated robustly from
    first differences (``1.4826 · MAD(diff) / √2``), so noise alone rarely splits.

    Parameters
    ----------
    series:
        Values at regular steps (e.g. count per minute). NaN is treated as 0.
    min_size:
        Minimum segment length, in samples.
    penalty:
        Multiplier of the ``σ² · log(n)`` penalty; larger finds fewer change points.
    max_points:
        At most this many change points (the strongest splits first).

    Returns
    -------
    list of int
        Sorted indices ``i`` such that a new regime starts at ``series[i]``.

    >>> change_points(np.r_[np.full(30, 10.0), np.full(30, 50.0)] + np.tile([0.5, -0.5], 30))
    [30]
    >>> change_points(np.full(40, 7.0))
    []
    """
    x = np.nan_to_num(np.asarray(series, dtype=float))
    n = x.size
    if n < 2 * min_size:
        return []
    d = np.diff(x)
    sigma = MAD_TO_SD * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)
    if sigma == 0:
        sigma = np.std(d) / np.sqrt(2.0)
    threshold = penalty * max(sigma, 1e-12) ** 2 * np.log(n)
    return _segment(n, lambda a, b: _best_split(x[a:b], min_size), threshold, max_points)


def _segment(n: int, best_split: Callable[[int, int], tuple[int, float]], threshold: float,
             max_points: int) -> list[int]:
    """Binary segmentation of ``range(n)``: split the segment whose best split (``best_split(a,
    b)``: offset in the segment and gain, -1 for none) gains most, while that gain exceeds
    ``threshold``; the sorted split indices."""
    found: list[int] = []
    segments = [(0, n)]
    while segments and len(found) < max_points:
        scored = [(*best_split(a, b), a, b) for a, b in segments]
        k, gain, a, b = max(scored, key=lambda s: s[1])
        if k < 0 or gain <= threshold:
            break
        found.append(a + k)
        segments.remove((a, b))
        segments += [(a, a + k), (a + k, b)]
    return sorted(found)


def _binomial_ll(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log-likelihood of ``k`` events in ``n`` trials at their own rate (0 log 0 = 0)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, k / np.where(n > 0, n, 1), 0.0)
        a = np.where(k > 0, k * np.log(np.where(p > 0, p, 1)), 0.0)
        b = np.where(n - k > 0, (n - k) * np.log(np.where(p < 1, 1 - p, 1)), 0.0)
    return a + b


def rate_split_deviance(k: np.ndarray, n: np.ndarray, at: int) -> float:
    """Twice the log-likelihood ratio (deviance) of two rates, ``k[:at] / n[:at]`` and
    ``k[at:] / n[at:]``, against one rate for all: about chi-squared with one degree of freedom
    when the rate did not change (its square root is a z score)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    parts = np.array([[k[:at].sum(), n[:at].sum()], [k[at:].sum(), n[at:].sum()]])
    split = _binomial_ll(parts[:, 0], parts[:, 1]).sum()
    return float(2.0 * (split - _binomial_ll(parts[:, 0].sum(), parts[:, 1].sum())))


def rate_change_points(k: np.ndarray, n: np.ndarray, *, min_size: int = 3, penalty: float = 3.0,
                       max_points: int = 10) -> list[int]:
    """Indices where a rate shifts (``k`` events out of ``n`` per step), by binary segmentation
    on the binomial likelihood.

    For rare events (errors, warnings) the per-step share is mostly 0 and its noise grows with
    the rate, which a mean-shift test with one noise level for the series misreads; here each
    split is judged by its deviance (:func:`rate_split_deviance`), kept when it exceeds
    ``penalty · log(steps)``.

    Parameters
    ----------
    k, n:
        Events and trials per step (steps without trials count nothing).
    min_size, penalty, max_points:
        As :func:`change_points`.

    Returns
    -------
    list of int
        Sorted indices ``i`` such that a new rate starts at step ``i``.

    >>> rate_change_points(np.r_[np.zeros(10), np.full(10, 6.0)], np.full(20, 20.0))
    [10]
    >>> rate_change_points(np.tile([0, 1, 0, 0], 5), np.full(20, 20.0))
    []
    """
    k = np.nan_to_num(np.asarray(k, dtype=float))
    n = np.nan_to_num(np.asarray(n, dtype=float))
    size = k.size
    if size < 2 * min_size:
        return []
    return _segment(size, lambda a, b: _best_rate_split(k[a:b], n[a:b], min_size), penalty * np.log(size),
                    max_points)


def _best_rate_split(k: np.ndarray, n: np.ndarray, min_size: int) -> tuple[int, float]:
    """Index and deviance of the best single rate-shift split of a segment (-1 if none)."""
    size = k.size
    if size < 2 * min_size:
        return -1, 0.0
    at = np.arange(min_size, size - min_size + 1)
    ck, cn = np.cumsum(k), np.cumsum(n)
    k1, n1 = ck[at - 1], cn[at - 1]
    dev = 2.0 * (_binomial_ll(k1, n1) + _binomial_ll(ck[-1] - k1, cn[-1] - n1) - _binomial_ll(ck[-1], cn[-1]))
    best = int(np.argmax(dev))
    return int(at[best]), float(dev[best])
