"""Modality of a latency distribution: Hartigan's dip test and a two-component mixture.

Both work on *log* latency (``numpy.log(duration_ms)``): request latencies are roughly
log-normal, so a unimodal service looks like one Gaussian in log space and a service with a
timeout or retry mode looks like two.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def dip_test(values: np.ndarray) -> tuple[float, float]:
    """Hartigan's dip statistic and its p-value (``diptest`` package, tabulated p-values).

    Parameters
    ----------
    values:
        Samples (any unit; use log latency for latency). NaN and infinite values are dropped.

    Returns
    -------
    (dip, p):
        ``dip`` in [0, 0.25] (0 for a perfectly unimodal empirical distribution) and the p-value
        of the null hypothesis "unimodal". Fewer than 4 finite samples give ``(0.0, 1.0)``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> dip_test(rng.normal(size=500))[1] > 0.05
    True
    >>> dip_test(np.r_[rng.normal(size=500), rng.normal(6, 1, size=500)])[1] < 0.01
    True
    """
    import diptest

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 4 or np.ptp(x) == 0:
        return 0.0, 1.0
    dip, p = diptest.diptest(x)
    return float(dip), float(p)


@dataclass(frozen=True)
class Mixture:
    """Two-component Gaussian mixture fitted to log values, compared with one component.

    Components are ordered: ``low`` is the one with the smaller mean. Means and standard
    deviations are in the units of the fitted values (natural log of ms for latency), weights
    are shares in [0, 1].

    Attributes
    ----------
    means, sds, weights:
        ``(low, high)`` component parameters.
    bic_one, bic_two:
        Bayesian information criterion of the one- and two-component fits (lower is better).
    split:
        The value between the two means where the high component becomes the more likely one
        (posterior 0.5); samples ``>= split`` belong to the high mode.
    n:
        Number of finite samples fitted.
    """

    means: tuple[float, float]
    sds: tuple[float, float]
    weights: tuple[float, float]
    bic_one: float
    bic_two: float
    split: float
    n: int

    @property
    def bic_delta(self) -> float:
        """``bic_one - bic_two``: positive when two components explain the data better."""
        return self.bic_one - self.bic_two

    @property
    def separation(self) -> float:
        """Ashman's D, ``sqrt(2)·|m1 - m2| / sqrt(s1² + s2²)``; D > 2 means cleanly separated modes."""
        s = np.hypot(self.sds[0], self.sds[1])
        return float(np.sqrt(2.0) * abs(self.means[1] - self.means[0]) / s) if s > 0 else float("inf")

    @property
    def minor_share(self) -> float:
        """Weight of the smaller component."""
        return float(min(self.weights))


def two_mode_mixture(log_values: np.ndarray, seed: int = 0) -> Mixture | None:
    """Fit one and two Gaussian components (scikit-learn, fixed ``seed``) and compare by BIC.

    Parameters
    ----------
    log_values:
        Samples, usually ``numpy.log(duration_ms)``. Non-finite values are dropped.
    seed:
        ``random_state`` of the k-means initialisation, so results are reproducible.

    Returns
    -------
    Mixture or None
        None when there are fewer than 10 finite samples or they are all equal.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> m = two_mode_mixture(np.r_[rng.normal(3, .2, 850), rng.normal(6.9, .02, 150)])
    >>> round(float(np.exp(m.means[1]))), round(m.weights[1], 2), m.bic_delta > 10
    (993, 0.15, True)
    """
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    x = np.asarray(log_values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 10 or np.ptp(x) == 0:
        return None
    col = x.reshape(-1, 1)
    with threadpool_limits(1):  # one feature: BLAS threads only add contention
        one = GaussianMixture(1, random_state=seed).fit(col)
        two = GaussianMixture(2, random_state=seed, n_init=2, reg_covar=1e-6).fit(col)
    order = np.argsort(two.means_.ravel())
    means = two.means_.ravel()[order]
    sds = np.sqrt(two.covariances_.ravel()[order])
    weights = two.weights_[order]
    grid = np.linspace(means[0], means[1], 512).reshape(-1, 1)
    high = two.predict_proba(grid)[:, order[1]]
    above = np.nonzero(high >= 0.5)[0]
    split = float(grid[above[0], 0]) if above.size else float(means[1])
    return Mixture(means=(float(means[0]), float(means[1])), sds=(float(sds[0]), float(sds[1])),
                   weights=(float(weights[0]), float(weights[1])), bic_one=float(one.bic(col)),
                   bic_two=float(two.bic(col)), split=split, n=int(x.size))
